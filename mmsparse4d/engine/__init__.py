"""Training and testing plumbing shared by tools/: command-line handling, hooks."""

from . import hooks, loops, optimizers

__all__ = ['hooks', 'loops', 'optimizers']
