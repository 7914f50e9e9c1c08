"""Stacking multi-camera samples in the data workers (``multiview_collate``)."""

import torch

from mmsparse4d.datasets.multiview_collate import multiview_collate
from mmsparse4d.models.data_preprocessors import Sparse4DDataPreprocessor
from mmsparse4d.testing import random_batch


def _samples(cams=(3, 1, 2)):
    """Per-sample dicts as a dataset's pipeline returns them (what a collate receives)."""
    torch.manual_seed(0)
    data = random_batch(batch=len(cams), cams=cams)
    data['inputs']['depth_targets'] = [
        [torch.rand(count, 136 // s, 240 // s) for count in cams] for s in (4, 8)
    ]
    samples = []
    for b in range(len(cams)):
        inputs = {key: value[b] for key, value in data['inputs'].items() if key != 'depth_targets'}
        inputs['depth_targets'] = [level[b] for level in data['inputs']['depth_targets']]
        samples.append({'inputs': inputs, 'data_samples': data['data_samples'][b]})
    return samples


def test_stacking_in_the_workers_gives_the_model_the_same_batch():
    samples = _samples()
    collated = multiview_collate(samples)
    stacked = collated['inputs']
    assert stacked['img'].shape == (3, 3, 3, 144, 256) and stacked['img'].dtype == torch.uint8
    assert stacked['camera_mask'].sum(1).tolist() == [3, 1, 2]
    assert stacked['depth_targets'][0].shape == (9, 34, 60)
    assert len(collated['data_samples']) == 3
    # The preprocessor's own stacking of the same samples (pseudo_collate) agrees exactly.
    from mmengine.dataset import pseudo_collate

    preprocessor = Sparse4DDataPreprocessor()
    ours = preprocessor(collated, training=True)['inputs']
    theirs = preprocessor(pseudo_collate(_samples()), training=True)['inputs']
    assert ours.keys() == theirs.keys()
    for key, value in theirs.items():
        if isinstance(value, list):
            assert all(torch.equal(a, b) for a, b in zip(ours[key], value, strict=True)), key
        else:
            assert torch.equal(ours[key], value), key
