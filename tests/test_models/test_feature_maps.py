"""Packing feature pyramids: the shared level-index tensors."""

import torch

from mmsparse4d.models.utils import pack_feature_maps


def test_level_index_is_shared_usable_for_backward_and_kept_out_of_fake_tracing():
    levels = [torch.randn(1, 3, 4, 6, 8), torch.randn(1, 3, 4, 3, 4)]
    with torch.inference_mode():  # a first call under inference mode must not poison it
        _, shape_a, start_a = pack_feature_maps(levels)
    _, shape_b, start_b = pack_feature_maps(levels)
    assert shape_b is shape_a and start_b is start_a
    assert not shape_b.is_inference() and not start_b.is_inference()
    assert shape_b.tolist() == [[[6, 8], [3, 4]]] * 3
    assert start_b.tolist() == [[0, 48], [60, 108], [120, 168]]
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode() as mode:
        fake = [mode.from_tensor(level) for level in levels]
        pack_feature_maps(fake)
    _, shape_c, _ = pack_feature_maps(levels)
    assert shape_c is shape_a  # the fake call neither replaced nor polluted the entry
