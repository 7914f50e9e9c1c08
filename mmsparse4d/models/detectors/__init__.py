"""Detectors (Sparse4D)."""
