"""Small shared helpers that are not registered components."""
