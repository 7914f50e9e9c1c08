"""Inference (stateful tracker over a stream) and export helpers."""
