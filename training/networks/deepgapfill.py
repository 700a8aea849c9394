"""`deepgapfill`: the multi-encoder convolutional auto-encoder of Cresson et al. (2019).

R. Cresson, D. Ienco, R. Gaetano, K. Ose, D. Ho Tong Minh, "Optical image gap filling using deep
convolutional autoencoder from optical and radar images", IGARSS 2019. One encoder per source
(S1 at t, S2 at t−1, S2 at t+1 by default: roles `sar`, `optical_before`, `optical_after`) of
4×4 convolutions with stride 2; the decoder's 4×4 transposed convolutions with stride 2 receive
skip connections from every encoder at each scale (concatenated), up to the output image.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from .base import GapfillNet, zero_bias


def down(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)
    )


class DeepGapfill(GapfillNet):
    architecture = "deepgapfill"
    default_roles = ("sar", "optical_before", "optical_after")
    default_width = 32
    default_depth = 4
    description = "Deep-Gapfill (Cresson et al. 2019): one encoder per source, shared decoder"

    def __init__(
        self, inputs: Mapping[str, int], out_channels: int, width: int = 0, depth: int = 0
    ) -> None:
        super().__init__(inputs, out_channels, width, depth)
        if self.depth < 1:
            raise ValueError("deepgapfill needs at least 1 level")
        widths = [self.width * 2**level for level in range(self.depth)]
        self.encoders = nn.ModuleList()
        for channels in self.inputs.values():
            layers = [down(channels, widths[0])]
            layers += [down(widths[level - 1], widths[level]) for level in range(1, self.depth)]
            self.encoders.append(nn.ModuleList(layers))
        sources = len(self.inputs)
        self.decoder = nn.ModuleList()
        for level in reversed(range(1, self.depth)):
            in_channels = sources * widths[level] + (widths[level] if level < self.depth - 1 else 0)
            self.decoder.append(
                nn.Sequential(
                    nn.ConvTranspose2d(in_channels, widths[level - 1], 4, stride=2, padding=1),
                    nn.ReLU(True),
                )
            )
        last = sources * widths[0] + (widths[0] if self.depth > 1 else 0)
        self.head = zero_bias(nn.ConvTranspose2d(last, out_channels, 4, stride=2, padding=1))

    @classmethod
    def multiple_for(cls, depth: int) -> int:
        return 2 ** max(depth, 1)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        features = []  # features[level] = encoders' outputs at 1/2^(level+1) scale
        for source, encoder in zip(inputs, self.encoders, strict=True):
            x = source
            for level, layer in enumerate(encoder):
                x = layer(x)
                if len(features) <= level:
                    features.append([])
                features[level].append(x)
        x = torch.cat(features[-1], dim=1)
        for step, block in enumerate(self.decoder):
            level = self.depth - 2 - step
            x = torch.cat([block(x), *features[level]], dim=1)
        return self.head(x)
