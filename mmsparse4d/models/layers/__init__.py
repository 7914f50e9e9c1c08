"""Building blocks of the head, one registered concept per file."""
