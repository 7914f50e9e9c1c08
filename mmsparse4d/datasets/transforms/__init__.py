"""Data pipeline transforms."""
