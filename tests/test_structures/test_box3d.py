"""The anchor <-> box codec."""

import numpy as np
import torch

from mmsparse4d.structures import COS_YAW, SIN_YAW, boxes_to_anchors, decode_anchor, encode_box


def test_round_trip():
    boxes = torch.tensor([[1.0, -2.0, 0.9, 0.5, 0.6, 1.8, 2.5, 0.3, -0.1, 0.0],
                          [0.0, 0.0, 1.1, 2.6, 1.2, 2.2, -3.0, 0.0, 0.0, 0.0]])  # fmt: skip
    anchors = encode_box(boxes)
    assert anchors.shape == (2, 11)
    torch.testing.assert_close(anchors[:, SIN_YAW], boxes[:, 6].sin())
    torch.testing.assert_close(anchors[:, COS_YAW], boxes[:, 6].cos())
    torch.testing.assert_close(decode_anchor(anchors), boxes)
    np.testing.assert_allclose(
        boxes_to_anchors(boxes[:, :7].numpy()), encode_box(boxes[:, :7]).numpy(), rtol=1e-6
    )
