"""BNNeck for re-identification: batch norm with a frozen bias, then an id classifier."""

from mmengine.model import BaseModule
from torch import Tensor, nn

from mmsparse4d.registry import MODELS


@MODELS.register_module()
class BNNeck(BaseModule):
    """Features [M, C] -> (id logits [M, num_ids], normalised features [M, C])."""

    def __init__(self, embed_dims=256, num_ids=70, init_cfg=None):
        super().__init__(init_cfg)
        self.bn = nn.BatchNorm1d(embed_dims)
        self.bn.bias.requires_grad_(False)
        self.classifier = nn.Linear(embed_dims, num_ids, bias=False)

    def init_weights(self) -> None:
        nn.init.constant_(self.bn.weight, 1.0)
        nn.init.zeros_(self.bn.bias)
        nn.init.kaiming_normal_(self.classifier.weight, mode='fan_out')

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        normalised = self.bn(features)
        return self.classifier(normalised), normalised
