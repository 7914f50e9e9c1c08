"""Stacking, padding and normalising multi-camera batches."""

import pytest
import torch

from mmsparse4d.models.data_preprocessors import Sparse4DDataPreprocessor
from mmsparse4d.testing import random_batch


def test_stacks_pads_and_normalises():
    data = random_batch(batch=2, cams=(3, 1))
    data['inputs']['depth_targets'] = [
        [torch.full((3, 4, 6), 5.0), torch.full((1, 4, 6), 7.0)],
        [torch.full((3, 2, 3), 5.0), torch.full((1, 2, 3), 7.0)],
    ]
    out = Sparse4DDataPreprocessor()(data, training=True)['inputs']
    assert out['img'].shape == (2, 3, 3, 144, 256) and out['img'].dtype == torch.float32
    mean = torch.tensor([123.675, 116.28, 103.53]).reshape(3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).reshape(3, 1, 1)
    expected = (data['inputs']['img'][1][0].float() - mean) / std
    torch.testing.assert_close(out['img'][1, 0], expected)
    assert out['camera_mask'].tolist() == [[True, True, True], [True, False, False]]
    assert (out['projection_mat'][1, 1:] == 0).all()
    assert out['timestamp'].dtype == torch.float64 and out['timestamp'].shape == (2,)
    assert out['focal'].shape == (2, 3)
    # Depth targets: [B * N, h, w] per level, padded cameras marked invalid (-1).
    assert out['depth_targets'][0].shape == (6, 4, 6)
    assert out['depth_targets'][0][3].eq(7.0).all() and out['depth_targets'][0][4:].eq(-1).all()


def test_already_stacked_inputs_pass_through():
    inputs = {
        'img': torch.zeros(1, 2, 3, 8, 8, dtype=torch.uint8),
        'projection_mat': torch.eye(4).expand(1, 2, 4, 4),
        'image_wh': torch.full((1, 2, 2), 8.0),
        'timestamp': torch.tensor([0.5], dtype=torch.float64),
    }
    out = Sparse4DDataPreprocessor()({'inputs': inputs, 'data_samples': None})['inputs']
    assert out['img'].shape == (1, 2, 3, 8, 8)
    assert out['camera_mask'].all()


def test_mixed_image_sizes_are_refused():
    data = random_batch(batch=2, cams=(2, 2))
    data['inputs']['img'][1] = data['inputs']['img'][1][..., :100]
    with pytest.raises(ValueError, match='one image size'):
        Sparse4DDataPreprocessor()(data)


def test_stacked_inputs_with_a_camera_mask_keep_it_and_still_convert():
    # As multiview_collate gives them, or a caller with padded cameras: the mask is kept,
    # timestamps become float64 and per-sample depth targets are stacked.
    inputs = {
        'img': torch.zeros(2, 2, 3, 8, 8, dtype=torch.uint8),
        'projection_mat': torch.eye(4).expand(2, 2, 4, 4),
        'image_wh': torch.full((2, 2, 2), 8.0),
        'timestamp': [1.7e9 + 0.25, 1.7e9 + 0.5],
        'camera_mask': torch.tensor([[True, True], [True, False]]),
        'depth_targets': [[torch.ones(2, 2, 2), torch.ones(1, 2, 2)]],
    }
    out = Sparse4DDataPreprocessor()({'inputs': inputs, 'data_samples': None})['inputs']
    assert out['camera_mask'].tolist() == [[True, True], [True, False]]
    assert out['timestamp'].dtype == torch.float64 and out['timestamp'][1] - 1.7e9 == 0.5
    assert out['depth_targets'][0].shape == (4, 2, 2) and out['depth_targets'][0][3].eq(-1).all()
