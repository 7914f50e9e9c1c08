"""Training and testing plumbing shared by tools/: command-line handling, hooks."""

from . import hooks, optimizers

__all__ = ['hooks', 'optimizers']
