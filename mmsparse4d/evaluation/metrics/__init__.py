"""mmengine Metric classes."""
