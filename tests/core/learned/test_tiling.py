"""Tile grids, strips, reflection padding, blending weights and strip buffers (pure numpy)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gapfill.core.errors import GapfillError
from gapfill.core.learned.tiling import (
    Strip,
    StripBlender,
    plan_tiles,
    ramp_window,
    read_tile,
)


def box_filter(image: np.ndarray, radius: int) -> np.ndarray:
    """A stand-in network: mean over a (2r+1)² square with zero padding, like a padded conv."""
    padded = np.pad(image, ((0, 0), (radius, radius), (radius, radius)))
    height, width = image.shape[1:]
    out = np.zeros(image.shape, dtype=np.float64)
    for dy in range(2 * radius + 1):
        for dx in range(2 * radius + 1):
            out += padded[:, dy : dy + height, dx : dx + width]
    return out / (2 * radius + 1) ** 2


def tiled(
    image: np.ndarray, tile_size: int, margin: int, radius: int, strip_columns: int = 0
):
    """Run `box_filter` tile by tile through the grid and the blenders, like the engine does."""
    bands, height, width = image.shape
    grid = plan_tiles(width, height, tile_size, margin)
    if strip_columns:
        grid = dataclasses.replace(grid, strip_columns=strip_columns)
    strips = grid.strips()
    blender = StripBlender(bands, height, strips[0])
    weights = grid.weights()
    out = np.full(image.shape, np.nan)
    written = np.zeros((height, width), int)
    for tile in grid.tiles():
        if blender.strip.index != tile.strip:
            blender = StripBlender(bands, height, strips[tile.strip], blender.carry)
        prediction = box_filter(read_tile(image, grid.read_window(tile)), radius)
        window = x, y, w, h = grid.core_window(tile)
        core = prediction[:, margin : margin + h, margin : margin + w]
        blender.add(window, core * weights[:h, :w], weights[:h, :w])
        if tile.column == blender.strip.columns[-1]:
            (x, y, w, h), values, _ = blender.release(grid.rows_finished(tile.row))
            out[:, y : y + h, x : x + w] = values
            written[y : y + h, x : x + w] += 1
    assert (written == 1).all()  # every pixel released once, by one strip
    return out, grid


def single_pass(image: np.ndarray, margin: int, radius: int) -> np.ndarray:
    padded = np.pad(image, ((0, 0), (margin, margin), (margin, margin)), mode="reflect")
    return box_filter(padded, radius)[:, margin:-margin, margin:-margin]


@pytest.mark.parametrize("tile_size", [12, 16, 23, 40])
@pytest.mark.parametrize("shape", [(37, 53), (16, 16), (5, 71)])
def test_tiled_result_equals_single_pass(tile_size: int, shape: tuple[int, int]) -> None:
    image = np.random.default_rng(3).normal(size=(2, *shape))
    margin = radius = 3
    result, grid = tiled(image, tile_size, margin, radius)
    reference = single_pass(image, margin, radius)
    assert not np.isnan(result).any()
    assert np.abs(result - reference).max() <= 1e-4 * np.ptp(reference)
    assert grid.tile_width <= tile_size and grid.tile_height <= tile_size


@pytest.mark.parametrize("strip_columns", [1, 2, 3])
def test_tiles_walked_in_strips_give_the_single_pass_result(strip_columns: int) -> None:
    image = np.random.default_rng(5).normal(size=(3, 45, 97))
    margin = radius = 4
    result, grid = tiled(image, 20, margin, radius, strip_columns)
    assert len(grid.strips()) > 1
    reference = single_pass(image, margin, radius)
    assert np.abs(result - reference).max() <= 1e-4 * np.ptp(reference)


def test_strips_split_the_columns_at_tile_starts() -> None:
    grid = dataclasses.replace(plan_tiles(1000, 64, 64, 8, 4), strip_columns=4)
    strips = grid.strips()
    assert [strip.columns[0] for strip in strips] == list(range(0, len(grid.xs) - 1, 4))[
        : len(strips)
    ]
    assert strips[0].x0 == 0 and strips[-1].x1 == strips[-1].reach == 1000
    for left, right in zip(strips, strips[1:], strict=False):
        assert left.x1 == right.x0 == grid.xs[right.columns[0]]
        assert left.x1 % grid.column_step == 0 and left.x1 < left.reach <= right.reach
    assert len(strips[-1].columns) > 1  # a lone last column joins the strip before it
    tiles = list(grid.tiles())
    assert len(tiles) == len(grid) and len(set(tiles)) == len(grid)
    assert [tile.strip for tile in tiles] == sorted(tile.strip for tile in tiles)


def test_default_strips_are_about_2048_px_wide() -> None:
    grid = plan_tiles(8192, 600, 512, 24, 8)
    assert grid.column_step == 432
    assert [strip.x1 - strip.x0 for strip in grid.strips()] == [2160, 2160, 2160, 1712]


@pytest.mark.parametrize(
    ("length", "tile", "margin", "multiple"),
    [(10980, 1024, 23, 8), (8192, 512, 24, 8), (1000, 64, 8, 4), (257, 64, 0, 1)],
)
def test_tiles_shrink_to_the_smallest_size_that_covers_the_axis(
    length: int, tile: int, margin: int, multiple: int
) -> None:
    grid = plan_tiles(length, 7, tile, margin, multiple)
    overlap, core = margin // 2, grid.core_width
    widest_stride = (tile - 2 * margin - overlap) // multiple * multiple
    assert len(grid.xs) == 1 + -(-(length - (tile - 2 * margin)) // widest_stride)  # fewest
    assert grid.tile_width <= tile and grid.tile_width % multiple == 0
    assert all(x % multiple == 0 for x in grid.xs)
    assert all(b - a <= core - overlap for a, b in zip(grid.xs, grid.xs[1:], strict=False))
    assert grid.xs[-1] + core >= length
    smaller = core - multiple  # as many cores one multiple narrower do not reach the end
    stride = (smaller - overlap) // multiple * multiple
    assert (len(grid.xs) - 1) * stride + smaller < length
    fixed = plan_tiles(length, 7, tile, margin, multiple, fixed=True)
    assert fixed.tile_width == tile and len(fixed.xs) == len(grid.xs)


def test_a_sentinel2_tile_in_1024_px_tiles_computes_a_sixth_more_not_a_quarter() -> None:
    grid = plan_tiles(10980, 10980, 1024, 23, 8)
    assert grid.describe().startswith("12 × 12 tiles of 984 × 984 px")
    assert len(grid) * grid.tile_width * grid.tile_height / 10980**2 < 1.16


def test_grid_covers_the_image_with_aligned_tiles() -> None:
    grid = plan_tiles(1000, 301, 64, 8, 4)
    covered = np.zeros((301, 1000), dtype=int)
    for tile in grid.tiles():
        x, y, w, h = grid.core_window(tile)
        assert w > 0 and h > 0
        assert tile.x % 4 == 0 and tile.y % 4 == 0
        covered[y : y + h, x : x + w] += 1
    assert covered.min() >= 1
    assert (grid.tile_width, grid.tile_height) == (64, 64)
    assert grid.xs[-1] + grid.core_width >= 1000
    assert len(grid) == len(grid.xs) * len(grid.ys)


def test_small_image_gets_one_smaller_tile_unless_the_size_is_fixed() -> None:
    grid = plan_tiles(10, 7, 64, 4, 8)
    assert (grid.tile_width, grid.tile_height) == (24, 16)
    assert len(grid) == 1
    fixed = plan_tiles(10, 7, 64, 4, 8, fixed=True)
    assert (fixed.tile_width, fixed.tile_height) == (64, 64)


def test_tile_size_not_a_multiple_is_refused() -> None:
    with pytest.raises(
        GapfillError, match=r"tile size 100 px is not a multiple of 8 px.*96 or 104"
    ):
        plan_tiles(500, 500, 100, 8, 8)


def test_tile_size_too_small_for_the_margin_is_refused() -> None:
    with pytest.raises(GapfillError, match=r"leaves less than 8 px inside.*at least 48 px"):
        plan_tiles(500, 500, 40, 20, 8)


def test_empty_image_is_refused() -> None:
    with pytest.raises(GapfillError, match="empty"):
        plan_tiles(0, 10, 32, 2)


def test_ramp_window_is_positive_symmetric_and_flat_inside() -> None:
    window = ramp_window(20, 5)
    assert window.dtype == np.float32
    assert (window > 0).all() and window.max() == 1
    np.testing.assert_array_equal(window, window[::-1])
    assert (window[5:15] == 1).all() and (np.diff(window[:6]) > 0).all()
    assert (ramp_window(3, 10) > 0).all()


def test_read_tile_reflects_like_padding_the_whole_image() -> None:
    image = np.arange(2 * 9 * 13, dtype=np.float32).reshape(2, 9, 13)
    pad = 12
    whole = np.pad(image, ((0, 0), (pad, pad), (pad, pad)), mode="reflect")
    for window in [(-5, -3, 10, 8), (8, 4, 11, 9), (-6, -6, 25, 21), (3, 2, 4, 4)]:
        x, y, w, h = window
        expected = whole[:, y + pad : y + pad + h, x + pad : x + pad + w]
        np.testing.assert_array_equal(read_tile(image, window), expected)


def test_blender_averages_overlaps_and_releases_rows_in_order() -> None:
    blender = StripBlender(1, 4, Strip(0, range(1), 0, 6, 6))
    blender.add((0, 0, 4, 3), np.full((1, 3, 4), 2.0), np.full((3, 4), 1.0))
    blender.add((2, 1, 4, 3), np.full((1, 3, 4), 15.0), np.full((3, 4), 3.0))
    blender.set_labels((0, 0, 6, 1), np.full((1, 6), 7, np.uint8))
    window, values, labels = blender.release(2)
    assert window == (0, 0, 6, 2) and values.shape == (1, 2, 6)
    np.testing.assert_allclose(values[0, 0], [2, 2, 2, 2, np.nan, np.nan])
    np.testing.assert_allclose(values[0, 1], [2, 2, 4.25, 4.25, 5, 5])
    assert (labels[0] == 7).all() and (labels[1] == 0).all()
    window, values, _ = blender.release(4)
    assert window == (0, 2, 6, 2)
    np.testing.assert_allclose(values[0, 1], [np.nan, np.nan, 5, 5, 5, 5])
    with pytest.raises(ValueError, match="already released"):
        blender.add((0, 1, 2, 2), np.zeros((1, 2, 2)), np.ones((2, 2)))


def test_blender_carries_the_columns_beyond_its_strip_to_the_next() -> None:
    left = StripBlender(1, 2, Strip(0, range(1), 0, 3, 5))
    left.add((0, 0, 5, 2), np.full((1, 2, 5), 2.0), np.full((2, 5), 1.0))
    window, values, _ = left.release(2)
    assert window == (0, 0, 3, 2) and (values == 2).all()
    right = StripBlender(1, 2, Strip(1, range(1, 2), 3, 7, 7), left.carry)
    right.add((3, 0, 4, 2), np.full((1, 2, 4), 12.0), np.full((2, 4), 3.0))
    with pytest.raises(ValueError, match="outside the strip"):
        right.add((2, 0, 2, 1), np.zeros((1, 1, 2)), np.ones((1, 2)))
    window, values, _ = right.release(2)
    assert window == (3, 0, 4, 2)
    np.testing.assert_allclose(values[0], [[3.5, 3.5, 4, 4]] * 2)  # (2 + 12) / (1 + 3)
