"""Metrics (HOTA, center-distance AP) and result writers.

``functional``, ``writers`` and ``tables`` need numpy and scipy only, so that a scorer such
as ``tools/aicity_eval.py`` starts without torch; ``metrics`` (mmengine ``BaseMetric``
classes) is not imported here: the METRICS registry imports it by its location.
"""
