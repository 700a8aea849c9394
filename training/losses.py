"""Losses: L1, L2, CARL, masked L1 (alone or with the spectral angle), the partial-convolution
loss, and the adversarial loss.

Each reconstruction loss is `loss(prediction, batch)` with the batch of `datasets.PatchDataset`
(tensors `reference`, `cloudy`, `gap`, `known`, `evaluate`, each (batch, 1 or bands, h, w)).
Pixels whose truth is unknown (`known` = 0) never count.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial

import torch
import torch.nn.functional as F  # noqa: N812 - PyTorch's convention

from ..core.errors import GapfillError

Batch = Mapping[str, torch.Tensor]
LossFn = Callable[[torch.Tensor, Batch], torch.Tensor]
HOLE_WEIGHT, VALID_WEIGHT, TV_WEIGHT = 6.0, 1.0, 0.1  # Liu et al. 2018, without VGG terms


def weighted_mean(values: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean of `values` (b, c, h, w) over the pixels of `weight` (b, 1, h, w) and every band;
    0 when the weight selects nothing (the loss then has no gradient, as it should)."""
    weight = weight.expand_as(values)
    return (values * weight).sum() / weight.sum().clamp(min=1.0)


def l1_loss(prediction: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Mean absolute error over every known pixel (gaps and clear pixels)."""
    return weighted_mean((prediction - batch["reference"]).abs(), batch["known"])


def l2_loss(prediction: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Mean squared error over every known pixel (Deep-Gapfill's loss)."""
    return weighted_mean((prediction - batch["reference"]) ** 2, batch["known"])


def masked_l1_loss(prediction: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Mean absolute error on the evaluated gap pixels only (STPConv: the loss sees only the
    pixels that were removed and whose truth is known)."""
    return weighted_mean((prediction - batch["reference"]).abs(), batch["evaluate"])


def spectral_angle(prediction: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Per-pixel angle (radians, (b, 1, h, w)) between predicted and true spectra: what the SAM
    metric averages. The cosine is kept off ±1, where the arc cosine's gradient is infinite."""
    dot = (prediction * reference).sum(dim=1, keepdim=True)
    norms = prediction.norm(dim=1, keepdim=True) * reference.norm(dim=1, keepdim=True)
    cosine = dot / norms.clamp(min=1e-8)
    return torch.acos(cosine.clamp(-1 + 1e-6, 1 - 1e-6))


def masked_l1_sam_loss(prediction: torch.Tensor, batch: Batch, weight: float = 0.1) -> torch.Tensor:
    """Masked L1 plus `weight` × the mean spectral angle on the evaluated gap pixels: L1 alone
    lets a network trade the spectrum's shape for its overall level, which SAM (and NDVI)
    punish."""
    angle = weighted_mean(spectral_angle(prediction, batch["reference"]), batch["evaluate"])
    return masked_l1_loss(prediction, batch) + weight * angle


def carl(
    prediction: torch.Tensor,
    target: torch.Tensor,
    cloudy: torch.Tensor,
    cloud_mask: torch.Tensor,
    lam: float = 1.0,
    known: torch.Tensor | None = None,
) -> torch.Tensor:
    """The cloud-adaptive regularized loss of DSen2-CR.

    Meraner, Ebel, Zhu, Schmitt, "Cloud removal in Sentinel-2 imagery using a deep residual
    neural network and SAR-optical data fusion", ISPRS J. Photogramm. Remote Sens. 166 (2020)
    333–346 (the cloud-adaptive regularized loss, λ = 1 as published), checked against
    `carl_error` of the authors' code (github.com/ameraner/dsen2-cr, `tools/image_metrics.py`),
    whose means run over every pixel and band::

        L = 1/N · Σ [ CSM ⊙ |P − T| + (1 − CSM) ⊙ |P − I| ] + λ · 1/N · Σ |P − T|

    P the prediction, T the cloud-free target, I the cloudy input, CSM the cloud and shadow mask
    (1 = cloud or shadow, broadcast over the bands), N the number of pixels × bands: on clear
    pixels the output stays close to the input, under clouds close to the target, and the
    global term keeps it close to the target everywhere. `known` (optional, 1 = the target is
    known) removes pixels without truth from both sums; N stays the number of pixels × bands.
    """
    cloud_mask = cloud_mask.expand_as(prediction)
    to_target = (prediction - target).abs()
    to_input = (prediction - cloudy).abs()
    adaptive = cloud_mask * to_target + (1 - cloud_mask) * to_input
    if known is not None:
        known = known.expand_as(prediction)
        adaptive, to_target = adaptive * known, to_target * known
    return adaptive.mean() + lam * to_target.mean()


def carl_loss(prediction: torch.Tensor, batch: Batch, lam: float = 1.0) -> torch.Tensor:
    return carl(prediction, batch["reference"], batch["cloudy"], batch["gap"], lam, batch["known"])


def total_variation(image: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Liu et al.'s smoothness term: mean absolute difference between neighbours, both in
    `region` (b, 1, h, w)."""
    horizontal = region[..., :, 1:] * region[..., :, :-1]
    vertical = region[..., 1:, :] * region[..., :-1, :]
    return weighted_mean(
        (image[..., :, 1:] - image[..., :, :-1]).abs(), horizontal
    ) + weighted_mean((image[..., 1:, :] - image[..., :-1, :]).abs(), vertical)


def pconv_loss(prediction: torch.Tensor, batch: Batch) -> torch.Tensor:
    """The partial-convolution inpainting loss of Liu et al. (ECCV 2018) without its
    VGG-feature terms: L1 on valid pixels + 6 × L1 on hole pixels + 0.1 × total variation of
    the composite (prediction in holes, truth elsewhere) over the holes dilated by 1 pixel.
    Each L1 is divided by all pixels × bands, as in the paper."""
    known = batch["known"].expand_as(prediction)
    hole = batch["gap"].expand_as(prediction) * known
    valid = (1 - batch["gap"]).expand_as(prediction) * known
    error = (prediction - batch["reference"]).abs()
    composite = hole * prediction + (1 - hole) * batch["reference"]
    dilated = F.max_pool2d(batch["gap"], 3, stride=1, padding=1) * batch["known"]
    return (
        VALID_WEIGHT * (valid * error).mean()
        + HOLE_WEIGHT * (hole * error).mean()
        + TV_WEIGHT * total_variation(composite, dilated)
    )


def gan_loss(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """pix2pix's vanilla GAN loss: binary cross-entropy of the PatchGAN logits."""
    labels = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, labels)


def reconstruction_loss(
    name: str, *, carl_lambda: float = 1.0, sam_weight: float = 0.1
) -> LossFn:
    """The reconstruction loss called `name`; for `adversarial`, its L1 part (the adversarial
    part needs the discriminator and is added by the training step)."""
    losses: dict[str, LossFn] = {
        "l1": l1_loss,
        "l2": l2_loss,
        "masked-l1": masked_l1_loss,
        "masked-l1-sam": partial(masked_l1_sam_loss, weight=sam_weight),
        "carl": partial(carl_loss, lam=carl_lambda),
        "pconv": pconv_loss,
        "adversarial": l1_loss,
    }
    if name not in losses:
        raise GapfillError(f"Unknown loss '{name}': use one of {', '.join(losses)}.")
    return losses[name]
