"""The Pulumi program: build the Shipway platform from the blueprint this stack's config names."""

from shipway.platform.program import stack_program

stack_program()
