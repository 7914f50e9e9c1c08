"""Feed-forward block whose input width may differ from its output width."""

from mmengine.model import BaseModule
from torch import Tensor, nn

from ...registry import MODELS


@MODELS.register_module()
class AsymmetricFFN(BaseModule):
    """[B, A, in_channels] -> [B, A, embed_dims]: optional pre-LayerNorm, (num_fcs - 1) x
    [Linear, ReLU, Dropout], Linear, Dropout, plus the (pre-normalised) input through a
    Linear identity when the widths differ (Sparse4D v3: 512 -> 1024 -> 256)."""

    def __init__(
        self,
        in_channels=512,
        embed_dims=256,
        feedforward_channels=1024,
        num_fcs=2,
        ffn_drop=0.1,
        pre_norm=True,
        add_identity=True,
        init_cfg=None,
    ):
        super().__init__(init_cfg)
        if num_fcs < 2:
            raise ValueError(f'AsymmetricFFN: num_fcs must be >= 2, got {num_fcs}')
        self.pre_norm = nn.LayerNorm(in_channels) if pre_norm else nn.Identity()
        layers, width = [], in_channels
        for _ in range(num_fcs - 1):
            layers += [
                nn.Linear(width, feedforward_channels),
                nn.ReLU(),  # not in place: see linear_relu_ln
                nn.Dropout(ffn_drop),
            ]
            width = feedforward_channels
        layers += [nn.Linear(width, embed_dims), nn.Dropout(ffn_drop)]
        self.layers = nn.Sequential(*layers)
        self.add_identity = add_identity
        self.identity_fc = (
            nn.Identity() if in_channels == embed_dims else nn.Linear(in_channels, embed_dims)
        )

    def forward(self, x: Tensor, identity: Tensor | None = None) -> Tensor:
        x = self.pre_norm(x)
        out = self.layers(x)
        if not self.add_identity:
            return out
        return self.identity_fc(x if identity is None else identity) + out
