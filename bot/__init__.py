"""Helpline: the dialogue manager and the runtime around it."""

__version__ = "0.1.0"
