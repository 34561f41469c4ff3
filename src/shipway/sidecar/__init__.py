"""The model observability sidecar: a reverse proxy that measures traffic, drift and online accuracy."""
