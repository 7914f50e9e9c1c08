"""Datasets, raw-scene readers and converters.

Importing the package imports none of its modules: the raw-scene readers (``aicity``)
need numpy only, so that a scorer such as ``tools/aicity_eval.py`` starts without torch
or mmdet3d (which took 4 s). ``OVPKLDataset`` loads on first use (``from
mmsparse4d.datasets import OVPKLDataset`` works as before); the collate function is
``mmsparse4d.datasets.multiview_collate.multiview_collate``, registered as
``mmsparse4d.multiview_collate``. The registries import the modules that register by
their locations.
"""

import importlib

__all__ = ['OVPKLDataset']


def __getattr__(name: str):
    if name == 'OVPKLDataset':
        return importlib.import_module('.ovpkl_dataset', __name__).OVPKLDataset
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
