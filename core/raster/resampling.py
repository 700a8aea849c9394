"""Coarser and finer grids by an integer factor, for detectors that work at their own resolution.

A block read on the target grid, starting at a multiple of `factor`, is averaged into cells of
`factor × factor` pixels (only valid pixels count), the detector runs on the cells, and its
probabilities are interpolated back (bilinear between cell centres). Cell edges are multiples
of `factor` in every block, so blocks agree where they overlap: no seams.
"""

from __future__ import annotations

import math

import numpy as np
from osgeo import osr

from .access import Grid

METRES_PER_DEGREE = 111_320.0  # along the equator; × cos(latitude) for longitude


def pixel_size_metres(grid: Grid) -> float | None:
    """The mean pixel side in metres (None without georeference). Geographic grids (e.g.
    EPSG:4326) are measured at their centre latitude."""
    if not grid.georeferenced:
        return None
    _, dx, _, _, _, dy = grid.geotransform
    srs = osr.SpatialReference()
    srs.ImportFromWkt(grid.projection)
    if srs.IsGeographic():
        latitude = (grid.bounds[1] + grid.bounds[3]) / 2
        x = abs(dx) * METRES_PER_DEGREE * math.cos(math.radians(latitude))
        return (x + abs(dy) * METRES_PER_DEGREE) / 2
    return (abs(dx) + abs(dy)) / 2 * srs.GetLinearUnits()


def resolution_factor(pixel_metres: float | None, wanted_metres: float) -> int:
    """How many pixels per side a cell at `wanted_metres` holds (1: already that coarse, or
    the pixel size is unknown)."""
    if not pixel_metres or wanted_metres <= pixel_metres:
        return 1
    return max(1, round(wanted_metres / pixel_metres))


def pool_mean(
    values: np.ndarray, valid: np.ndarray, factor: int
) -> tuple[np.ndarray, np.ndarray]:
    """(bands, h, w) → (bands, ⌈h/f⌉, ⌈w/f⌉) means over the valid pixels of each cell, and the
    cells that hold any valid pixel (a partial cell at the edge averages what it has)."""
    if factor == 1:
        return np.where(valid, values, 0).astype(np.float32), valid.copy()
    bands, height, width = values.shape
    rows, columns = -(-height // factor), -(-width // factor)
    padded = np.zeros((bands, rows * factor, columns * factor), dtype=np.float32)
    weight = np.zeros((rows * factor, columns * factor), dtype=np.float32)
    padded[:, :height, :width] = np.where(valid, values, 0)
    weight[:height, :width] = valid
    sums = padded.reshape(bands, rows, factor, columns, factor).sum(axis=(2, 4))
    counts = weight.reshape(rows, factor, columns, factor).sum(axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / counts, 0).astype(np.float32)
    return means, counts > 0


def _axis_weights(
    cells: int, factor: int, length: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each fine pixel along an axis: the cell before it, the cell after it, and the weight
    of the second (cell centres at (k + ½)·f, clamped at the ends)."""
    position = (np.arange(length) + 0.5) / factor - 0.5
    low = np.clip(np.floor(position).astype(np.intp), 0, cells - 1)
    high = np.clip(low + 1, 0, cells - 1)
    weight = np.clip(position - low, 0.0, 1.0).astype(np.float32)
    return low, high, weight


def upsample_bilinear(cells: np.ndarray, factor: int, height: int, width: int) -> np.ndarray:
    """(bands, rows, columns) cells → (bands, height, width) pixels, bilinear between centres."""
    if factor == 1:
        return cells[:, :height, :width].astype(np.float32)
    rows_low, rows_high, row_weight = _axis_weights(cells.shape[1], factor, height)
    columns_low, columns_high, column_weight = _axis_weights(cells.shape[2], factor, width)
    row_weight = row_weight[:, np.newaxis]
    vertical = cells[:, rows_low] * (1 - row_weight) + cells[:, rows_high] * row_weight
    return (
        vertical[:, :, columns_low] * (1 - column_weight)
        + vertical[:, :, columns_high] * column_weight
    ).astype(np.float32)
