"""`unet-blend`: the `unet-fusion` U-Net whose long skip starts from the other dates.

For multi-date filling (S2 before/after, + S1 or a DEM when given): the U-Net sees every input
role and predicts, per pixel, a blend weight `a` (sigmoid) and a residual `r`; the output is
`a · before + (1 − a) · after + r`. The network thus starts from the two other dates and learns
the radiometric correction towards the target date (from the target's clear pixels around the
gap) instead of the whole image. The other dates must hold the output's bands, in the same scaling.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from .base import zero_bias
from .unet import UNetFusion


class UNetBlend(UNetFusion):
    architecture = "unet-blend"
    required_roles = ("optical_before", "optical_after")
    description = (
        "U-Net with a long skip from the before/after dates: learned blend of the two dates "
        "plus a residual correction (multi-date)"
    )

    def __init__(
        self, inputs: Mapping[str, int], out_channels: int, width: int = 0, depth: int = 0
    ) -> None:
        super().__init__(inputs, out_channels, width, depth)
        for role in self.required_roles:
            if self.inputs.get(role) != out_channels:
                raise ValueError(
                    f"unet-blend needs {role} with the {out_channels} output bands, not "
                    f"{self.inputs.get(role, 0)}"
                )
        self.head = zero_bias(nn.Conv2d(self.head.in_channels, out_channels + 1, 1))
        self.before = self.roles.index("optical_before")
        self.after = self.roles.index("optical_after")

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        head = super().forward(*inputs)
        weight = torch.sigmoid(head[:, :1])
        residual = head[:, 1:]
        before, after = inputs[self.before], inputs[self.after]
        return after + weight * (before - after) + residual
