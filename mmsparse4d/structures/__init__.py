"""Box codec (11-d anchor <-> 10-d box), index constants, camera utilities."""
