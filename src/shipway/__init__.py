"""Shipway: an AI delivery platform from one typed blueprint."""

__version__ = "0.1.0"
