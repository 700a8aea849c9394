"""Fill metrics: hand-computed values, parity with scikit-image and scipy, masks honoured,
perfect fills, streaming by blocks, and clear errors on bad inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gapfill.core.errors import GapfillError
from gapfill.core.evaluate.metrics import (
    NO_SCALING,
    SENTINEL2_REFLECTANCE,
    SSIM_CELL,
    SSIM_RADIUS,
    MetricsAccumulator,
    Scaling,
    evaluate,
    gaussian_filter,
    psnr,
    spectral_angle,
    ssim_map,
    ssim_sum,
)
from gapfill.core.raster.access import expand_window, iter_windows


def smooth_pair(bands: int = 3, size: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A textured reference in [0, 1] and a noisy, slightly biased 'fill' of it."""
    rng = np.random.default_rng(seed)
    reference = np.stack([gaussian_filter(rng.random((size, size)), 2.0, 6) for _ in range(bands)])
    filled = np.clip(reference + rng.normal(0.01, 0.05, reference.shape), 0, 1)
    return reference, filled


def centre_mask(size: int = 40, low: int = 15, high: int = 25) -> np.ndarray:
    mask = np.zeros((size, size), dtype=np.uint8)
    mask[low:high, low:high] = 1
    return mask


def test_hand_computed_values_per_band_and_overall():
    reference = np.array([[[0.1, 0.2], [0.3, 0.4]], [[0.5, 0.5], [0.5, 0.5]]])
    filled = np.array([[[0.1, 0.4], [0.0, 0.9]], [[0.5, 0.5], [0.6, 0.0]]])
    mask = np.array([[1, 1], [1, 0]])  # the last pixel is outside: its large errors never count

    result = evaluate(reference, filled, mask, scaling=NO_SCALING)

    first, second = result.bands
    assert first.evaluated == second.evaluated == 3
    assert first.mae == pytest.approx(0.5 / 3)
    assert first.rmse == pytest.approx(math.sqrt(0.13 / 3))
    assert first.bias == pytest.approx(-0.1 / 3)
    assert first.psnr == pytest.approx(10 * math.log10(3 / 0.13))
    assert second.mae == pytest.approx(0.1 / 3)
    assert second.bias == pytest.approx(0.1 / 3)
    assert result.evaluated == 6 and result.unfilled == 0 and result.filled_fraction == 1
    assert result.mae == pytest.approx(0.6 / 6)
    assert result.rmse == pytest.approx(math.sqrt(0.14 / 6))
    assert result.psnr == pytest.approx(10 * math.log10(6 / 0.14))
    assert result.bias == pytest.approx(0.0)
    assert result.scaling == "values as stored (no scaling)"


def test_psnr_uses_the_data_range():
    assert psnr(0.01, 1.0) == pytest.approx(20.0)
    assert psnr(1.0, 10000.0) == pytest.approx(80.0)
    assert psnr(0.0) == math.inf


def test_spectral_angle_by_hand():
    reference = np.array([[1.0, 1.0, 0.0, 0.0], [0.0, 1.0, 0.0, 2.0]])
    filled = np.array([[0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 3.0]])
    # 90° between orthogonal spectra, 45° between (1, 1) and (1, 0), 0° between two zero spectra,
    # 0° between parallel ones (a brightness change is not a spectral change)
    np.testing.assert_allclose(spectral_angle(reference, filled), [90, 45, 0, 0], atol=1e-12)
    result = evaluate(reference[:, np.newaxis], filled[:, np.newaxis], np.ones((1, 4)),
                      scaling=NO_SCALING)
    assert result.sam == pytest.approx(135 / 4)
    assert spectral_angle(np.array([[0.0], [0.0]]), np.array([[0.0], [1.0]]))[0] == 90


def test_sam_does_not_apply_to_one_band():
    reference, filled = smooth_pair(bands=1)
    assert evaluate(reference, filled, centre_mask(), scaling=NO_SCALING).sam is None


def test_ndvi_error_by_hand():
    # red, nir: NDVI of the reference 2/3 and 0, of the fill 1/2 and 1/2
    reference = np.array([[[0.1, 0.2]], [[0.5, 0.2]]])
    filled = np.array([[[0.1, 0.2]], [[0.3, 0.6]]])
    result = evaluate(reference, filled, np.ones((1, 2)), scaling=NO_SCALING, ndvi_bands=(0, 1))
    assert result.ndvi_mae == pytest.approx((1 / 6 + 1 / 2) / 2)
    assert evaluate(reference, filled, np.ones((1, 2)), scaling=NO_SCALING).ndvi_mae is None


def test_perfect_fill_scores_zero_error_and_infinite_psnr():
    reference, _ = smooth_pair()
    dn = np.rint(reference * 10000).astype(np.uint16)
    result = evaluate(dn, dn.copy(), centre_mask(), ndvi_bands=(0, 1))
    assert result.mae == result.rmse == result.bias == result.sam == result.ndvi_mae == 0
    assert result.psnr == math.inf
    assert all(band.psnr == math.inf for band in result.bands)
    assert result.ssim == pytest.approx(1.0)


def test_ssim_and_psnr_match_scikit_image():
    metrics = pytest.importorskip("skimage.metrics")
    reference, filled = smooth_pair(bands=2, size=48)
    mask = centre_mask(48, 10, 30)
    result = evaluate(reference, filled, mask, scaling=NO_SCALING)
    for band, scores in enumerate(result.bands):
        mean, full = metrics.structural_similarity(
            reference[band], filled[band], data_range=1.0, gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False, full=True,
        )
        ours = ssim_map(reference[band], filled[band], 1.0)
        np.testing.assert_allclose(ours, full, rtol=0, atol=1e-12)
        inside = (slice(SSIM_RADIUS, -SSIM_RADIUS),) * 2  # scikit-image's mean leaves out borders
        assert ours[inside].mean() == pytest.approx(mean, abs=1e-12)
        assert scores.ssim == pytest.approx(full[mask == 1].mean(), abs=1e-12)
    whole = evaluate(reference, filled, np.ones(mask.shape), scaling=NO_SCALING)
    expected = metrics.peak_signal_noise_ratio(reference, filled, data_range=1.0)
    assert whole.psnr == pytest.approx(expected, rel=1e-12)
    assert whole.bands[0].psnr == pytest.approx(
        metrics.peak_signal_noise_ratio(reference[0], filled[0], data_range=1.0), rel=1e-12
    )


@pytest.mark.parametrize("shape", [(40, 37), (3, 4), (1, 1)])
def test_gaussian_filter_matches_scipy(shape):
    ndimage = pytest.importorskip("scipy.ndimage")
    image = np.random.default_rng(1).random(shape)
    expected = ndimage.gaussian_filter(image, 1.5, mode="reflect", truncate=3.5)
    np.testing.assert_allclose(gaussian_filter(image), expected, rtol=0, atol=1e-14)


@pytest.mark.parametrize("share", [0.002, 0.2, 1.0])
def test_ssim_by_cells_is_the_whole_maps_sum(share):
    """Cells of the map, each with the window's reach, give the whole map's values: with
    evaluated pixels sparse, dense or at the borders, a region inside the image, no data."""
    rng = np.random.default_rng(7)
    height, width = 2 * SSIM_CELL + 37, 3 * SSIM_CELL + 5
    reference = rng.random((height, width))
    filled = reference + 0.1 * rng.standard_normal((height, width))
    reference[rng.random((height, width)) < 0.03] = np.nan
    top, left = 3, 11
    where = rng.random((height - top - 2, width - left)) < share
    where[0, 0] = where[-1, -1] = True
    region = ssim_map(reference, filled)[top : top + where.shape[0], left:]
    where &= np.isfinite(region)  # pixels without data are never evaluated
    assert ssim_sum(reference, filled, where, 1.0, (top, left)) == pytest.approx(
        region[where].sum(), rel=1e-12)


def test_pixels_outside_the_evaluation_never_count():
    reference, filled = smooth_pair()
    mask = centre_mask()
    before = evaluate(reference, filled, mask, scaling=NO_SCALING, ndvi_bands=(0, 1))

    far = np.ones(mask.shape, dtype=bool)  # farther than the SSIM window from every evaluated pixel
    far[15 - SSIM_RADIUS : 25 + SSIM_RADIUS, 15 - SSIM_RADIUS : 25 + SSIM_RADIUS] = False
    changed_reference, changed_filled = reference.copy(), filled.copy()
    changed_reference[:, far] = 0.9
    changed_filled[:, far] = np.nan
    assert evaluate(
        changed_reference, changed_filled, mask, scaling=NO_SCALING, ndvi_bands=(0, 1)
    ) == before

    # nearer, only SSIM may move: it is a property of each evaluated pixel's 11×11 neighbourhood
    near = ~far & (mask == 0)
    changed_filled = filled.copy()
    changed_filled[:, near] = 1 - changed_filled[:, near]
    after = evaluate(reference, changed_filled, mask, scaling=NO_SCALING, ndvi_bands=(0, 1))
    for name in ("mae", "rmse", "psnr", "bias", "sam", "ndvi_mae", "evaluated", "unfilled"):
        assert getattr(after, name) == getattr(before, name)
    assert after.ssim != before.ssim


def test_outside_and_clear_values_of_a_gap_mask_are_not_evaluated():
    reference, filled = smooth_pair()
    gap_mask = centre_mask()
    gap_mask[:5] = 255  # outside the image: never evaluated
    assert evaluate(reference, filled, gap_mask, scaling=NO_SCALING) == evaluate(
        reference, filled, centre_mask(), scaling=NO_SCALING
    )


def test_unfilled_pixels_are_counted_not_measured():
    reference, filled = smooth_pair()
    mask = centre_mask()
    holes = np.zeros(mask.shape, dtype=bool)
    holes[15:17, 15:25] = True
    filled[:, holes] = np.nan
    result = evaluate(reference, filled, mask, scaling=NO_SCALING)
    measured = evaluate(reference, filled, mask * ~holes, scaling=NO_SCALING)
    assert result.unfilled == 3 * 20 and result.evaluated == 3 * 80
    assert result.filled_fraction == pytest.approx(0.8)
    assert (result.mae, result.rmse, result.bias, result.sam) == (
        measured.mae, measured.rmse, measured.bias, measured.sam
    )

    filled[:] = np.nan
    nothing = evaluate(reference, filled, mask, scaling=NO_SCALING)
    assert nothing.filled_fraction == 0
    for value in (nothing.mae, nothing.psnr, nothing.ssim, nothing.sam):
        assert math.isnan(value)


def test_per_band_evaluation_masks():
    reference, filled = smooth_pair(bands=2)
    masks = np.stack([centre_mask(), centre_mask(40, 20, 30)])
    result = evaluate(reference, filled, masks, scaling=NO_SCALING)
    assert [band.evaluated for band in result.bands] == [100, 100]
    alone = evaluate(reference[1], filled[1], masks[1], scaling=NO_SCALING)
    for name in ("mae", "rmse", "ssim", "bias"):
        assert getattr(result.bands[1], name) == pytest.approx(getattr(alone, name), rel=1e-12)
    both = evaluate(reference, filled, masks[0] & masks[1], scaling=NO_SCALING)
    assert result.sam == both.sam  # SAM needs every band of a pixel


def test_streaming_by_blocks_matches_the_whole_image():
    reference, filled = smooth_pair(size=50)
    mask = centre_mask(50, 5, 45)
    whole = evaluate(reference, filled, mask, ndvi_bands=(2, 1), scaling=NO_SCALING)
    accumulator = MetricsAccumulator(3, ndvi_bands=(2, 1), scaling=NO_SCALING)
    for window in iter_windows(50, 50, 16):
        (x, y, w, h), inner = expand_window(window, SSIM_RADIUS, 50, 50)
        block = (slice(None), slice(y, y + h), slice(x, x + w))
        accumulator.add(reference[block], filled[block], mask[block[1:]], inner)
    streamed = accumulator.result()
    for name in ("mae", "rmse", "psnr", "ssim", "bias", "sam", "ndvi_mae"):
        assert getattr(streamed, name) == pytest.approx(getattr(whole, name), rel=1e-12)
    assert streamed.evaluated == whole.evaluated


def test_identical_inputs_give_identical_results():
    reference, filled = smooth_pair()
    dn_reference, dn_filled = (np.rint(a * 10000).astype(np.uint16) for a in (reference, filled))
    first = evaluate(dn_reference, dn_filled, centre_mask(), ndvi_bands=(0, 1))
    assert evaluate(dn_reference, dn_filled, centre_mask(), ndvi_bands=(0, 1)) == first


def test_sentinel2_reflectance_scaling_is_applied_and_stated():
    values = np.array([0, 5000, 12000, np.nan])
    np.testing.assert_array_equal(SENTINEL2_REFLECTANCE.apply(values), [0, 0.5, 1, np.nan])
    assert SENTINEL2_REFLECTANCE.describe() == "DN / 10000, clipped to [0, 1]"
    assert Scaling(offset=-1000).describe() == "(DN - 1000) / 10000, clipped to [0, 1]"
    reference = np.full((1, 2, 2), 1000, dtype=np.uint16)
    result = evaluate(reference, reference + 100, np.ones((2, 2)))
    assert result.mae == pytest.approx(0.01)
    assert result.scaling == "DN / 10000, clipped to [0, 1]" and result.data_range == 1.0


@pytest.mark.parametrize(
    ("reference", "filled", "mask", "message"),
    [
        (np.zeros((2, 4, 4)), np.zeros((3, 4, 4)), np.ones((4, 4)), "band"),
        (np.zeros((2, 4, 4)), np.zeros((2, 4, 5)), np.ones((4, 4)), "same grid"),
        (np.zeros((2, 4, 4)), np.zeros((2, 4, 4)), np.ones((4, 5)), "evaluation mask"),
        (np.zeros((2, 4, 4)), np.zeros((2, 4, 4)), np.zeros((4, 4)), "selects no pixel"),
        (np.zeros((2, 4, 4)), np.zeros((2, 4, 4)), np.full((4, 4), 255), "selects no pixel"),
        (np.full((2, 4, 4), np.nan), np.zeros((2, 4, 4)), np.ones((4, 4)), "reference has no data"),
        (np.zeros((2, 2, 4, 4)), np.zeros((2, 2, 4, 4)), np.ones((4, 4)), "band"),
    ],
)
def test_bad_inputs_give_clear_errors(reference, filled, mask, message):
    with pytest.raises(GapfillError, match=message):
        evaluate(reference, filled, mask, scaling=NO_SCALING)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"data_range": 0.0}, "data range"),
        ({"ndvi_bands": (0, 2)}, "NDVI"),
        ({"ndvi_bands": (1, 1)}, "NDVI"),
    ],
)
def test_bad_options_give_clear_errors(options, message):
    with pytest.raises(GapfillError, match=message):
        MetricsAccumulator(2, **options)
