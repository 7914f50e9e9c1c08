"""Data samplers (sequence-aware group-in-batch sampling)."""
