"""mmengine Metric classes."""

from .aicity_hota_metric import AICityHOTAMetric
from .detection_ap_metric import DetectionAPMetric

__all__ = ['AICityHOTAMetric', 'DetectionAPMetric']
