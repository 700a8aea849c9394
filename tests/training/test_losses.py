"""Losses against hand-computed values."""

from __future__ import annotations

import pytest
import torch

from gapfill.training.losses import (
    carl,
    carl_loss,
    gan_loss,
    l1_loss,
    l2_loss,
    masked_l1_loss,
    masked_l1_sam_loss,
    pconv_loss,
    reconstruction_loss,
    spectral_angle,
)


def image(*rows):
    return torch.tensor(rows, dtype=torch.float32)[None, None]


def test_carl_against_a_hand_computed_value():
    prediction = image([1, 2], [3, 4])
    target = image([1, 1], [1, 1])
    cloudy = image([0, 2], [5, 4])
    cloud = image([1, 0], [0, 1])
    # cloud pixels to the target: |1−1| = 0, |4−1| = 3; clear pixels to the input: |2−2| = 0,
    # |3−5| = 2 → adaptive mean 5/4; global mean |P − T| = (0 + 1 + 2 + 3) / 4 = 1.5
    assert float(carl(prediction, target, cloudy, cloud)) == pytest.approx(1.25 + 1.5)
    assert float(carl(prediction, target, cloudy, cloud, lam=0.5)) == pytest.approx(2.0)


def test_carl_averages_over_pixels_and_bands():
    """N = pixels × bands, the mask broadcast over the bands (the authors' K.mean)."""
    prediction = torch.cat([image([1, 2], [3, 4]), image([0, 0], [0, 0])], dim=1)
    target = torch.cat([image([1, 1], [1, 1]), image([0, 0], [0, 0])], dim=1)
    cloudy = torch.cat([image([0, 2], [5, 4]), image([1, 1], [1, 1])], dim=1)
    cloud = image([1, 0], [0, 1])
    # band 2: clear pixels (2 of them) to the input cost 1 each, the rest 0 → sums 5 + 2 and 6
    assert float(carl(prediction, target, cloudy, cloud)) == pytest.approx(7 / 8 + 6 / 8)
    batch = {"reference": target, "cloudy": cloudy, "gap": cloud, "known": torch.ones_like(cloud)}
    assert float(carl_loss(prediction, batch)) == pytest.approx(7 / 8 + 6 / 8)
    assert reconstruction_loss("carl", carl_lambda=0.0)(prediction, batch) == pytest.approx(7 / 8)


def test_pixel_losses_count_only_what_they_should():
    prediction = image([1, 2], [3, 4])
    batch = {
        "reference": image([1, 1], [1, 1]),
        "known": image([1, 1], [1, 0]),  # the last pixel has no truth
        "evaluate": image([0, 1], [0, 0]),
        "gap": image([0, 1], [0, 1]),
    }
    assert float(l1_loss(prediction, batch)) == pytest.approx((0 + 1 + 2) / 3)
    assert float(l2_loss(prediction, batch)) == pytest.approx((0 + 1 + 4) / 3)
    assert float(masked_l1_loss(prediction, batch)) == pytest.approx(1.0)
    nothing = {**batch, "evaluate": torch.zeros_like(batch["evaluate"])}
    assert float(masked_l1_loss(prediction, nothing)) == 0.0


def test_pconv_loss_weights_holes_six_times():
    reference = torch.zeros(1, 1, 4, 4)
    gap = torch.zeros(1, 1, 4, 4)
    gap[..., :2, :] = 1
    batch = {"reference": reference, "gap": gap, "known": torch.ones_like(gap)}
    assert float(pconv_loss(reference, batch)) == 0.0
    hole = reference.clone()
    hole[..., 0, 0] = 1.0
    valid = reference.clone()
    valid[..., 3, 3] = 1.0
    tv_free_hole = 6 / 16  # one hole pixel off by 1, over 16 pixels, weight 6
    assert float(pconv_loss(hole, batch)) > tv_free_hole
    assert float(pconv_loss(valid, batch)) == pytest.approx(1 / 16)


def test_gan_loss_is_binary_cross_entropy():
    logits = torch.zeros(1, 1, 3, 3)
    assert float(gan_loss(logits, True)) == pytest.approx(float(torch.log(torch.tensor(2.0))))
    assert float(gan_loss(torch.full((1, 1, 2, 2), 20.0), True)) < 1e-6


def test_unknown_loss():
    with pytest.raises(ValueError, match="Unknown loss 'ssim'"):
        reconstruction_loss("ssim")


def test_spectral_angle_loss_against_hand_computed_angles():
    # two bands, two pixels: (1, 0) vs (1, 1) is 45°, (2, 2) vs (1, 1) is 0° (same shape)
    prediction = torch.tensor([[[[1.0, 2.0]], [[0.0, 2.0]]]])
    reference = torch.tensor([[[[1.0, 1.0]], [[1.0, 1.0]]]])
    angles = spectral_angle(prediction, reference)
    assert angles.shape == (1, 1, 1, 2)
    assert angles[0, 0, 0].tolist() == pytest.approx([torch.pi / 4, 0.0], abs=2e-3)
    batch = {"reference": reference, "evaluate": torch.tensor([[[[1.0, 1.0]]]])}
    # masked L1: |1−1| + |0−1| + |2−1| + |2−1| over 4 values = 3/4; mean angle π/8
    expected = 0.75 + 0.5 * torch.pi / 8
    assert float(masked_l1_sam_loss(prediction, batch, weight=0.5)) == pytest.approx(
        expected, abs=1e-3
    )
    loss = reconstruction_loss("masked-l1-sam", sam_weight=0.5)(prediction.requires_grad_(), batch)
    loss.backward()
    assert torch.isfinite(prediction.grad).all()
