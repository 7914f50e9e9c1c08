"""The anchor <-> box codec."""

import torch

from mmsparse4d.structures import COS_YAW, SIN_YAW, decode_anchor, encode_box


def test_round_trip():
    boxes = torch.tensor(
        [
            [1.0, -2.0, 0.9, 0.5, 0.6, 1.8, 2.5, 0.3, -0.1, 0.0],
            [0.0, 0.0, 1.1, 2.6, 1.2, 2.2, -3.0, 0.0, 0.0, 0.0],
        ]
    )
    anchors = encode_box(boxes)
    assert anchors.shape == (2, 11)
    torch.testing.assert_close(anchors[:, SIN_YAW], boxes[:, 6].sin())
    torch.testing.assert_close(anchors[:, COS_YAW], boxes[:, 6].cos())
    torch.testing.assert_close(decode_anchor(anchors), boxes)
    # Boxes without velocity (the data pipeline's 7 columns) encode with zero velocity.
    torch.testing.assert_close(encode_box(boxes[:, :7])[:, :8], anchors[:, :8])
    assert (encode_box(boxes[:, :7])[:, 8:] == 0).all()
