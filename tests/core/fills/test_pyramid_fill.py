"""Pyramid (pull-push) interpolation: exact by blocks, bounded reach, better than inverse
distance on real gaps of real images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from gapfill.core.errors import GapfillError
from gapfill.core.fills.pyramid_fill import (
    coarse_pyramid,
    levels_for,
    pyramid_fill_arrays,
    pyramid_halo,
    streamed_halo,
)
from gapfill.core.fills.spatial_fill import fill_nodata_arrays
from gapfill.core.raster.access import crop


def sample(data_dir: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    clear = gdal.Open(str(data_dir / f"sen12mscr/{name}_s2_clear.tif")).ReadAsArray()
    gap = gdal.Open(str(data_dir / f"sen12mscr/{name}_cloudmask.tif")).ReadAsArray() == 1
    return clear.astype(np.float64), gap


def test_a_constant_image_is_filled_with_its_value():
    data = np.full((2, 40, 30), 7.0)
    clear = np.ones((40, 30), bool)
    clear[5:30, 3:25] = False
    values, reached = pyramid_fill_arrays(data, clear, 64)
    assert reached.all()
    np.testing.assert_allclose(values, 7.0)


def test_clear_pixels_are_kept_and_far_gaps_stay_unfilled():
    rng = np.random.default_rng(1)
    data = rng.random((3, 64, 64)) * 1000
    clear = np.zeros((64, 64), bool)
    clear[:4, :4] = True  # one clear corner: reach is bounded by the pyramid's depth
    values, reached = pyramid_fill_arrays(data, clear, 8)
    np.testing.assert_array_equal(values[:, clear], data[:, clear])
    assert reached[:8, :8].all() and not reached[40:, 40:].any()
    assert np.isnan(values[:, ~reached]).all()
    assert pyramid_fill_arrays(data, clear, 64)[1].all()


def test_blocks_with_the_halo_give_the_whole_image_result(data_dir: Path):
    data, gap = sample(data_dir, "4287")
    whole, _ = pyramid_fill_arrays(data, ~gap, 16)
    halo, size = pyramid_halo(16), 64
    for y in range(0, 256, size):
        for x in range(0, 256, size):
            y0, x0 = max(0, y - halo), max(0, x - halo)
            y1, x1 = min(256, y + size + halo), min(256, x + size + halo)
            part, _ = pyramid_fill_arrays(data[:, y0:y1, x0:x1], ~gap[y0:y1, x0:x1], 16)
            core = part[:, y - y0 : y - y0 + size, x - x0 : x - x0 + size]
            np.testing.assert_array_equal(core, whole[:, y : y + size, x : x + size])


@pytest.mark.parametrize("max_distance", [256, 40])
def test_blocks_over_the_coarse_levels_give_the_whole_image_result(
    data_dir: Path, max_distance: int
):
    """The streamed fill (coarse levels once, then blocks with a small halo, read from origins
    on and off the cells' grid) equals the whole image's, on a real image and cloud mask."""
    data, gap = sample(data_dir, "4287")
    whole, reached = pyramid_fill_arrays(data, ~gap, max_distance)

    def read(window):
        x, y, w, h = window
        return data[:, y : y + h, x : x + w], ~gap[y : y + h, x : x + w]

    coarse = coarse_pyramid(read, (0, 0, 256, 256), max_distance, block_size=96)
    halo, size = streamed_halo(), 64
    assert halo < pyramid_halo(max_distance)
    for y in range(0, 256, size):
        for x in range(0, 256, size):
            x0, y0 = max(0, x - halo + 5), max(0, y - halo + 11)  # off the grid
            x1, y1 = min(256, x + size + halo), min(256, y + size + halo)
            window = (x0, y0, x1 - x0, y1 - y0)
            part, part_reached = coarse.fill(*read(window), window)
            core = (x - x0, y - y0, size, size)
            np.testing.assert_array_equal(crop(part, core), whole[:, y : y + size, x : x + size])
            np.testing.assert_array_equal(
                crop(part_reached, core), reached[y : y + size, x : x + size]
            )


def test_the_fine_levels_alone_need_no_coarse_pass():
    assert coarse_pyramid(lambda window: None, (0, 0, 64, 64), 16) is None


def test_beats_inverse_distance_on_large_real_gaps(data_dir: Path):
    """Lower RMSE (higher PSNR), real cloud masks on the clear images (pure gap filling)."""
    for name in ("4287", "7264", "4433"):
        data, gap = sample(data_dir, name)
        pyramid, _ = pyramid_fill_arrays(data, ~gap, 256)
        inverse, _ = fill_nodata_arrays(data, ~gap, 300, 0)
        error = {k: ((v - data)[:, gap] ** 2).mean() for k, v in (("p", pyramid), ("i", inverse))}
        assert error["p"] < error["i"], name


def test_levels_and_halo_follow_the_distance():
    assert levels_for(1) == 1 and levels_for(100) == 7 and levels_for(128) == 7
    assert pyramid_halo(100) == 4 * 128 and pyramid_halo(16) == 3 * 16 + 64
    with pytest.raises(GapfillError, match="at least 1 pixel"):
        levels_for(0)
