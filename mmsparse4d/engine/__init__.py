"""Training and testing plumbing shared by tools/: command-line handling, hooks, loops and
the optimizer wrapper's constructor.

The subpackages are imported where used, not here: the registries import them on first
lookup (``mmsparse4d.registry``), so the command-line tools refuse bad input before the
model zoo is imported (about 4 s on a 2-core machine).
"""
