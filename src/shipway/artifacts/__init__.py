"""Model artifacts in an OCI registry: layout, push, pull, auth and digest checks.

Import `shipway.artifacts.push` or `.pull` for transfers; this package and
`layout` stay free of oras and requests so that start-up and rendering stay fast.
"""
