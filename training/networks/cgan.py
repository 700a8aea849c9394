"""`cgan`: the conditional GAN of sent2-cloud-remover (pix2pix): a ResNet-block generator and a
PatchGAN discriminator, trained with an adversarial loss plus λ·L1.

Generator (Johnson et al. 2016, as in pix2pix/CycleGAN's `ResnetGenerator`): 7×7 convolution,
two stride-2 3×3 convolutions, `depth` residual blocks (9 by default) with reflection padding,
two transposed convolutions, 7×7 convolution to the output bands. Batch normalisation (pix2pix's
choice) is an affine map per pixel in inference, so tiles are filled independently of their
neighbours (instance normalisation would make every output pixel depend on the whole tile).
The output is linear (no tanh): scaled bands are not confined to [-1, 1].
Discriminator (PatchGAN, Isola et al. 2017): 4×4 convolutions, stride 2 then 1, judging
overlapping patches of (inputs, image) pairs as real or generated; up to 3 downsampling layers,
fewer for small patches; leaky ReLU without normalisation. Only the generator is exported.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn

from .base import GapfillNet, concat, zero_bias


class ResnetBlock(nn.Module):
    def __init__(self, features: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(features, features, 3),
            nn.BatchNorm2d(features),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(features, features, 3),
            nn.BatchNorm2d(features),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, width: int, blocks: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, width, 7),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
        ]
        for factor in (1, 2):
            layers += [
                nn.Conv2d(width * factor, width * factor * 2, 3, stride=2, padding=1),
                nn.BatchNorm2d(width * factor * 2),
                nn.ReLU(True),
            ]
        layers += [ResnetBlock(width * 4) for _ in range(blocks)]
        for factor in (4, 2):
            layers += [
                nn.ConvTranspose2d(
                    width * factor, width * factor // 2, 3, stride=2, padding=1, output_padding=1
                ),
                nn.BatchNorm2d(width * factor // 2),
                nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(3), zero_bias(nn.Conv2d(width, out_channels, 7))]
        self.model = nn.Sequential(*layers)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.model(concat(inputs))


class PatchDiscriminator(nn.Module):
    """PatchGAN: a map of real/fake logits over overlapping patches."""

    def __init__(self, in_channels: int, width: int = 64, layers: int = 3) -> None:
        super().__init__()
        modules: list[nn.Module] = [
            nn.Conv2d(in_channels, width, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, True),
        ]
        features = width
        for layer in range(1, layers + 1):
            previous, features = features, width * min(2**layer, 8)
            stride = 2 if layer < layers else 1
            modules += [
                nn.Conv2d(previous, features, 4, stride=stride, padding=1),
                nn.LeakyReLU(0.2, True),
            ]
        modules.append(nn.Conv2d(features, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def discriminator_layers(patch_size: int) -> int:
    """PatchGAN layers a patch of this size allows (3 as published from 32 px up)."""
    return max(1, min(3, int(math.log2(max(patch_size, 2))) - 2))


class ConditionalGAN(GapfillNet):
    architecture = "cgan"
    default_width = 64
    default_depth = 9
    description = "cGAN (sent2-cloud-remover/pix2pix): ResNet generator, PatchGAN discriminator"
    adversarial = True

    def __init__(
        self,
        inputs: Mapping[str, int],
        out_channels: int,
        width: int = 0,
        depth: int = 0,
        patch_size: int = 64,
    ) -> None:
        super().__init__(inputs, out_channels, width, depth)
        channels = sum(self.inputs.values())
        self.generator = ResnetGenerator(channels, out_channels, self.width, self.depth)
        self.discriminator = PatchDiscriminator(
            channels + out_channels, self.width, discriminator_layers(patch_size)
        )
        self.patch_size = patch_size

    @classmethod
    def multiple_for(cls, depth: int) -> int:
        return 4

    def config(self) -> dict:
        return {**super().config(), "patch_size": self.patch_size}

    def exported(self) -> nn.Module:
        return self.generator

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.generator(*inputs)

    def discriminate(self, inputs: list[torch.Tensor], image: torch.Tensor) -> torch.Tensor:
        return self.discriminator(torch.cat([*inputs, image], dim=1))
