"""`stpconv`: a U-Net of 3-D partial convolutions over (time, y, x) (Appel 2022).

M. Appel, "Efficient data-driven gap filling of satellite image time series using deep neural
networks with partial convolutions", 2022 (appelmar/STpconv). A partial convolution sees only
valid inputs and renormalises by the valid fraction of its window,
x' = W·(X ⊙ M) · |window| / Σ M + b where the window holds a valid input, else 0, and the mask
becomes "valid wherever the window held a valid input" (Liu et al. 2018, here in 3-D).

The exported network keeps Gapfill's 4-D tensors: the dates are the channel axis. Inputs:
`series` (batch, T, h, w), the scaled values with anything in the gaps, and `gap_mask`
(batch, T, h, w), 1 = gap; output `filled` (batch, T, h, w), the whole reconstructed series
(the fill keeps observations and takes only the gaps). Inside, the series becomes one channel
of a (batch, 1, T, h, w) volume. The encoder halves space only (time keeps its length, so a
window of T dates is convolved in time with zero padding), the decoder upsamples with nearest
neighbours and concatenates the encoder's features and masks, as in the paper.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812 - PyTorch's convention
from torch import nn

from .pconv import PartialConv3d, expand_mask


class STPConv(nn.Module):
    """U-Net of 3-D partial convolutions; `depth` spatial halvings, `width` features at the top."""

    architecture = "stpconv"
    input_names = ("series", "gap_mask")
    output_name = "filled"

    def __init__(self, steps: int, width: int = 16, depth: int = 3) -> None:
        super().__init__()
        if depth < 1 or width < 1 or steps < 1:
            raise ValueError("stpconv needs steps, width and depth ≥ 1")
        self.steps, self.width, self.depth = steps, width, depth
        widths = [min(width * 2**level, width * 4) for level in range(depth)]
        self.encoder = nn.ModuleList()
        previous = 1
        for level in range(depth):
            kernel = (3, 5, 5) if level == 0 else (3, 3, 3)
            padding = tuple(k // 2 for k in kernel)
            self.encoder.append(
                PartialConv3d(previous, widths[level], kernel, stride=(1, 2, 2), padding=padding)
            )
            previous = widths[level]
        self.decoder = nn.ModuleList()
        self.upsampled: list[int] = []
        for level in reversed(range(depth)):
            skip = widths[level - 1] if level > 0 else 1
            out = widths[level - 1] if level > 0 else 1
            self.decoder.append(PartialConv3d(previous + skip, out, 3, padding=1))
            self.upsampled.append(previous)
            previous = out
        self.activation = nn.LeakyReLU(0.2)

    @property
    def size_multiple(self) -> int:
        return 2**self.depth

    @property
    def context_margin(self) -> int:
        """Half the spatial receptive field, rounded up to the size multiple."""
        reach, stride = 2, 2  # first layer: 5×5 at stride 2
        for _ in range(1, self.depth):
            reach += stride * 1
            stride *= 2
        for _ in range(self.depth):  # decoder 3×3 layers, from coarse to fine
            stride //= 2
            reach += max(stride, 1)
        multiple = self.size_multiple
        return -(-(reach + stride) // multiple) * multiple

    def config(self) -> dict[str, Any]:
        return {
            "architecture": self.architecture,
            "steps": self.steps,
            "width": self.width,
            "depth": self.depth,
        }

    def forward(self, series: torch.Tensor, gap_mask: torch.Tensor) -> torch.Tensor:
        mask = (1.0 - gap_mask).unsqueeze(1)
        x = series.unsqueeze(1) * mask
        skips = [(x, mask)]
        for layer in self.encoder:
            x, mask = layer(x, mask)
            x = torch.relu(x)
            skips.append((x, mask))
        skips.pop()
        for index, layer in enumerate(self.decoder):
            skip_x, skip_mask = skips.pop()
            x = F.interpolate(x, scale_factor=(1.0, 2.0, 2.0), mode="nearest")
            mask = F.interpolate(mask, scale_factor=(1.0, 2.0, 2.0), mode="nearest")
            skip_channels = layer.in_channels - self.upsampled[index]
            upsampled = self.upsampled[index]
            masks = [expand_mask(mask, upsampled), expand_mask(skip_mask, skip_channels)]
            mask = torch.cat(masks, dim=1)
            x, mask = layer(torch.cat([x, skip_x], dim=1), mask)
            if index < len(self.decoder) - 1:
                x = self.activation(x)
        return x.squeeze(1)
