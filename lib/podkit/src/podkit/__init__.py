"""Shared plumbing of the login pod's services (not a framework: each module does one job)."""

__version__ = "0.1.0"
