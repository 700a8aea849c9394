"""`unet-fusion`: a U-Net on the concatenation of any set of roles (decloud-style fusion).

Each level has two 3×3 convolutions with ReLU; max-pooling down, 2×2 transposed convolutions up,
skip connections by concatenation, a 1×1 convolution to the output bands. Widths double per
level. Width 32 with 3 levels is the small CPU default: about 230 kFLOP per pixel for S1 + S2 +
gap mask in and 13 bands out (see `flops_per_pixel`).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from .base import GapfillNet, concat, zero_bias


def double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1),
        nn.ReLU(inplace=True),
    )


class UNetFusion(GapfillNet):
    architecture = "unet-fusion"
    default_width = 32
    default_depth = 3
    description = "U-Net on the concatenated input roles (decloud-style fusion)"

    def __init__(
        self, inputs: Mapping[str, int], out_channels: int, width: int = 0, depth: int = 0
    ) -> None:
        super().__init__(inputs, out_channels, width, depth)
        if self.depth < 1:
            raise ValueError("unet-fusion needs at least 1 level")
        widths = [self.width * 2**level for level in range(self.depth)]
        channels = sum(self.inputs.values())
        self.down = nn.ModuleList()
        for level, features in enumerate(widths):
            self.down.append(double_conv(channels if level == 0 else widths[level - 1], features))
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(widths[level + 1], widths[level], 2, stride=2)
            for level in range(self.depth - 1)
        )
        self.merge = nn.ModuleList(
            double_conv(2 * widths[level], widths[level]) for level in range(self.depth - 1)
        )
        self.head = zero_bias(nn.Conv2d(widths[0], out_channels, 1))

    @classmethod
    def multiple_for(cls, depth: int) -> int:
        return 2 ** (max(depth, 1) - 1)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        x = concat(inputs)
        skips = []
        for level, block in enumerate(self.down):
            x = block(x if level == 0 else self.pool(x))
            skips.append(x)
        for level in reversed(range(self.depth - 1)):
            x = self.merge[level](torch.cat([self.up[level](x), skips[level]], dim=1))
        return self.head(x)
