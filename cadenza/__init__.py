"""Cadenza: what every component agrees on (content layout, settings, errors, logging)."""

__version__ = "0.1.0"
