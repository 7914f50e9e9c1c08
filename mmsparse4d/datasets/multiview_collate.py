"""Collating multi-camera samples into batch tensors in the data workers."""

from collections.abc import Sequence

from mmengine.dataset import pseudo_collate

from ..registry import FUNCTIONS
from ..structures import stack_multiview_inputs


@FUNCTIONS.register_module()
def multiview_collate(data_batch: Sequence[dict]) -> dict:
    """``pseudo_collate``, then the inputs stacked into [B, N, ...] tensors with the camera
    axis padded and ``camera_mask`` (``stack_multiview_inputs``); ``data_samples`` stay a
    list.

    Stacking here runs in the data workers. Left to ``Sparse4DDataPreprocessor``, it copied
    every batch's images once more in the training process (a batch of 16 samples x 6
    cameras at 480x272 is 38 MB of uint8), on the host thread that launches the GPU's work.
    (Moving them to a GPU still pins them on that thread unless the data loader's
    ``pin_memory=True`` does it in its own.)
    Config: ``train_dataloader = dict(collate_fn=dict(type='mmsparse4d.multiview_collate'))``.
    """
    batch = pseudo_collate(data_batch)
    batch['inputs'] = stack_multiview_inputs(batch['inputs'])
    return batch
