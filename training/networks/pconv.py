"""`pconv-unet`: a U-Net of partial convolutions with mask update (Liu et al. 2018), in 2-D.

G. Liu, F. A. Reda, K. J. Shih, T.-C. Wang, A. Tao, B. Catanzaro, "Image inpainting for irregular
holes using partial convolutions", ECCV 2018. A partial convolution sees only valid pixels:
x' = W·(X ⊙ M) · sum(1)/sum(M) + b where the window holds any valid pixel, else 0; the mask
becomes 1 wherever the window held a valid pixel, so holes shrink layer by layer. The target's
valid pixels are those outside the gap mask (`gap_mask` input: 1 = gap); auxiliary roles (SAR,
other dates, DEM) are valid everywhere. Encoder: stride-2 partial convolutions (7×7, 5×5, 5×5,
then 3×3); decoder: nearest upsampling, concatenation of the encoder's image and mask, 3×3
partial convolution with LeakyReLU(0.2); the last layer also sees the input image.
STPConv (Appel 2022) applies the same layers in 3-D to time series.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F  # noqa: N812 - PyTorch's convention
from torch import nn

from .base import GapfillNet, zero_bias


class PartialConvolution:
    """Mixin for `nn.Conv2d`/`nn.Conv3d`: a convolution that renormalises by the valid part of
    each window and updates the mask (the same layer in 2-D here and in 3-D for STPConv).

    `mask` has 1 channel (shared by all input channels) or one per input channel; the returned
    mask has 1 channel: 1 where the window held any valid input.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.register_buffer("window", torch.ones(1, 1, *self.kernel_size), persistent=False)
        self.cells = float(self.in_channels * math.prod(self.kernel_size))

    def forward(  # type: ignore[override]
        self, x: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        channels_valid = mask * self.in_channels if mask.shape[1] == 1 else mask.sum(1, True)
        with torch.no_grad():
            valid = self._conv_forward(channels_valid, self.window, None)
        updated = valid.clamp(0, 1)
        ratio = self.cells / valid.clamp(min=1e-6) * updated
        out = self._conv_forward(x * mask, self.weight, None) * ratio
        if self.bias is not None:
            out = out + self.bias.view(1, -1, *[1] * (x.dim() - 2)) * updated
        return out, updated


class PartialConv2d(PartialConvolution, nn.Conv2d):
    """2-D partial convolution (Liu et al. 2018)."""


class PartialConv3d(PartialConvolution, nn.Conv3d):
    """3-D partial convolution over (time, y, x) (Appel 2022)."""


def expand_mask(mask: torch.Tensor, channels: int) -> torch.Tensor:
    """A 1-channel mask repeated over `channels` (a per-channel mask is returned as it is)."""
    if mask.shape[1] != 1:
        return mask
    return mask.expand(-1, channels, *[-1] * (mask.dim() - 2))


class PConvUNet(GapfillNet):
    architecture = "pconv-unet"
    required_roles = ("target", "gap_mask")
    default_width = 32
    default_depth = 4
    description = "U-Net of partial convolutions with mask update (Liu et al. 2018)"

    def __init__(
        self, inputs: Mapping[str, int], out_channels: int, width: int = 0, depth: int = 0
    ) -> None:
        super().__init__(inputs, out_channels, width, depth)
        if self.depth < 1:
            raise ValueError("pconv-unet needs at least 1 level")
        self.image_roles = tuple(role for role in self.roles if role != "gap_mask")
        channels = sum(self.inputs[role] for role in self.image_roles)
        widths = [min(self.width * 2**level, self.width * 8) for level in range(self.depth)]
        kernels = [7, 5, 5] + [3] * max(0, self.depth - 3)
        self.encoder = nn.ModuleList()
        previous = channels
        for level in range(self.depth):
            kernel = kernels[level]
            self.encoder.append(
                PartialConv2d(previous, widths[level], kernel, stride=2, padding=kernel // 2)
            )
            previous = widths[level]
        self.decoder = nn.ModuleList()
        self.upsampled = []  # channels coming up into each decoder layer (before the skip)
        for level in reversed(range(self.depth)):
            skip = widths[level - 1] if level > 0 else channels
            out = widths[level - 1] if level > 0 else out_channels
            self.decoder.append(PartialConv2d(previous + skip, out, 3, padding=1))
            self.upsampled.append(previous)
            previous = out
        zero_bias(self.decoder[-1])
        self.activation = nn.LeakyReLU(0.2)

    @classmethod
    def multiple_for(cls, depth: int) -> int:
        return 2 ** max(depth, 1)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        named = dict(zip(self.roles, inputs, strict=True))
        clear = 1.0 - named["gap_mask"]
        images, masks = [], []
        for role in self.image_roles:
            images.append(named[role])
            bands = self.inputs[role]
            role_mask = clear if role == "target" else torch.ones_like(clear)
            masks.append(role_mask.expand(-1, bands, -1, -1))
        x, mask = torch.cat(images, dim=1), torch.cat(masks, dim=1)
        skips = [(x, mask)]
        for layer in self.encoder:
            x, mask = layer(x, mask)
            x = torch.relu(x)
            skips.append((x, mask))
        skips.pop()
        for index, layer in enumerate(self.decoder):
            skip_x, skip_mask = skips.pop()
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            mask = F.interpolate(mask, scale_factor=2.0, mode="nearest")
            skip_channels = layer.in_channels - self.upsampled[index]
            upsampled = self.upsampled[index]
            masks = [expand_mask(mask, upsampled), expand_mask(skip_mask, skip_channels)]
            mask = torch.cat(masks, dim=1)
            x, mask = layer(torch.cat([x, skip_x], dim=1), mask)
            if index < len(self.decoder) - 1:
                x = self.activation(x)
        return x

