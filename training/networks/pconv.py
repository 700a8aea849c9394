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

from collections.abc import Mapping

import torch
import torch.nn.functional as F  # noqa: N812 - PyTorch's convention
from torch import nn

from .base import GapfillNet


class PartialConv2d(nn.Conv2d):
    """A convolution that renormalises by the valid part of each window and updates the mask.

    `mask` has 1 channel (shared by all input channels) or one per input channel; the returned
    mask has 1 channel.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.register_buffer("window", torch.ones(1, 1, *self.kernel_size), persistent=False)
        self.cells = self.in_channels * self.kernel_size[0] * self.kernel_size[1]

    def forward(  # type: ignore[override]
        self, x: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        channels_valid = mask * self.in_channels if mask.shape[1] == 1 else mask.sum(1, True)
        with torch.no_grad():
            valid = F.conv2d(channels_valid, self.window, stride=self.stride, padding=self.padding)
        updated = valid.clamp(0, 1)
        ratio = self.cells / valid.clamp(min=1e-6) * updated
        out = F.conv2d(x * mask, self.weight, None, self.stride, self.padding) * ratio
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1) * updated
        return out, updated


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
        missing = [role for role in self.required_roles if role not in self.inputs]
        if missing:
            raise ValueError(f"pconv-unet needs the roles {missing}")
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
            mask = torch.cat(
                [_expand(mask, self.upsampled[index]), _expand(skip_mask, skip_channels)], dim=1
            )
            x, mask = layer(torch.cat([x, skip_x], dim=1), mask)
            if index < len(self.decoder) - 1:
                x = self.activation(x)
        return x


def _expand(mask: torch.Tensor, channels: int) -> torch.Tensor:
    return mask.expand(-1, channels, -1, -1) if mask.shape[1] == 1 else mask
