"""`dsen2cr`: the deep residual network of DSen2-CR (Meraner et al. 2020).

A. Meraner, P. Ebel, X. X. Zhu, M. Schmitt, "Cloud removal in Sentinel-2 imagery using a deep
residual neural network and SAR-optical data fusion", ISPRS J. Photogramm. Remote Sens. 166
(2020) 333–346. The cloudy optical image (`target`) and SAR (`sar`) are concatenated, a 3×3
convolution with ReLU opens `depth` residual blocks (conv-ReLU-conv, scaled by 0.1, added to the
block's input), a 3×3 convolution returns to the optical bands, and a long skip adds the cloudy
input: the network learns a correction. Published: 16 blocks × 256 features (the defaults).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from .base import GapfillNet, concat, zero_bias

RESIDUAL_SCALING = 0.1


class ResidualBlock(nn.Module):
    def __init__(self, features: int, scaling: float = RESIDUAL_SCALING) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(features, features, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(features, features, 3, padding=1),
        )
        self.scaling = scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.scaling * self.body(x)


class DSen2CR(GapfillNet):
    architecture = "dsen2cr"
    required_roles = ("target",)
    default_roles = ("target", "sar")
    default_width = 256
    default_depth = 16
    description = "DSen2-CR (Meraner et al. 2020): residual network, long skip of the cloudy input"

    def __init__(
        self, inputs: Mapping[str, int], out_channels: int, width: int = 0, depth: int = 0
    ) -> None:
        super().__init__(inputs, out_channels, width, depth)
        if "target" not in self.inputs:
            raise ValueError("dsen2cr needs the target role (the cloudy image of its long skip)")
        if self.inputs["target"] != out_channels:
            raise ValueError(
                f"dsen2cr adds its {self.inputs['target']}-band cloudy input to its output, which "
                f"must have the same bands (asked: {out_channels})"
            )
        self.target_index = self.roles.index("target")
        self.head = nn.Sequential(
            nn.Conv2d(sum(self.inputs.values()), self.width, 3, padding=1), nn.ReLU(inplace=True)
        )
        self.body = nn.Sequential(*[ResidualBlock(self.width) for _ in range(self.depth)])
        self.tail = zero_bias(nn.Conv2d(self.width, out_channels, 3, padding=1))

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        x = self.tail(self.body(self.head(concat(inputs))))
        return x + inputs[self.target_index]
