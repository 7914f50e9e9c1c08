"""Training and testing plumbing shared by tools/: command-line handling, hooks."""

from . import hooks

__all__ = ['hooks']
