"""Registered module around the MSDA operator, with an explicit choice of implementation."""

import logging

from mmengine.logging import print_log
from torch import Tensor, nn

from ..registry import MODELS
from .deformable_aggregation import deformable_aggregation
from .deformable_aggregation_reference import (
    deformable_aggregation_grid_sample,
    deformable_aggregation_reference,
)
from .extension import load_extension

IMPLEMENTATIONS = {
    'compiled': deformable_aggregation,
    'reference': deformable_aggregation_reference,
    'grid_sample': deformable_aggregation_grid_sample,
}


@MODELS.register_module()
class MultiScaleDeformableAggregation(nn.Module):
    """Multi-scale deformable aggregation over cameras, levels and points.

    Args:
        implementation (str): ``'compiled'`` (the extension's kernels; fails at
            construction if the extension is not built), ``'reference'`` (pure PyTorch,
            slow, logged as a warning so the choice is never silent) or ``'grid_sample'``
            (NVIDIA TAO's path without its op, which also samples locations just outside
            the image: a compatibility setting, logged the same way; see
            ``deformable_aggregation_reference``'s module).
    """

    def __init__(self, implementation: str = 'compiled') -> None:
        super().__init__()
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(
                f'MultiScaleDeformableAggregation: implementation={implementation!r} is not '
                f'one of {sorted(IMPLEMENTATIONS)}'
            )
        if implementation == 'compiled':
            load_extension()
        else:
            print_log(
                'MultiScaleDeformableAggregation uses a pure-PyTorch implementation '
                f'(implementation={implementation!r}): slow.',
                logger='current',
                level=logging.WARNING,
            )
        self.implementation = implementation
        self._function = IMPLEMENTATIONS[implementation]

    def forward(
        self,
        features: Tensor,
        spatial_shape: Tensor,
        scale_start_index: Tensor,
        sampling_location: Tensor,
        weights: Tensor,
    ) -> Tensor:
        """See :func:`mmsparse4d.ops.deformable_aggregation` for shapes.

        Returns:
            Tensor: [B, A, C].
        """
        return self._function(
            features, spatial_shape, scale_start_index, sampling_location, weights
        )

    def extra_repr(self) -> str:
        return f'implementation={self.implementation!r}'
