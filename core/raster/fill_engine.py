"""The block loop every fill shares: read target and gaps, compute, keep clear pixels, write.

A fill method only supplies `read_sources(window)` and `compute(block)`; this module guarantees
the house rules: gap pixels only are replaced, clear pixels are copied bit-exactly, unfilled
gaps become no-data, the output has the target's grid, type and band descriptions, and it
appears only when complete.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from osgeo import gdal

from ..errors import GapfillError
from ..progress import CancelledFn, ProgressFn, check_cancelled, never_cancelled, no_progress
from .access import (
    Grid,
    Window,
    band_descriptions,
    crop,
    expand_window,
    iter_windows,
    nodata_value,
    numpy_dtype,
    open_raster,
    read_bands,
    read_valid,
    region_windows,
    window_count,
)
from .alignment import align_to_grid, covered_fraction
from .output import GeoTiffWriter, atomic_path, cast_to
from .pipeline import run_pipeline
from .validity import BandMasks
from .value_range import check_every_band_has_data

MASK_OUTSIDE = 255  # value of gap-mask pixels outside the image


@dataclass
class TargetImage:
    """The image to fill, its optional gap mask (aligned to it) and what the output inherits."""

    path: str
    dataset: gdal.Dataset
    grid: Grid
    mask: gdal.Dataset | None
    dtype: np.dtype
    nodata: float
    descriptions: list[str]
    band_masks: BandMasks
    region: Window | None = None  # only this part of the grid is filled (a mosaic's tile)
    mask_coverage: float = 1.0  # share of the target's extent the gap mask covers

    def known(self, window: Window, values: np.ndarray) -> np.ndarray:
        """Where the target has data, from its values already read (no second read)."""
        return self.band_masks.valid(window, values).all(axis=0)

    @property
    def bands(self) -> int:
        return len(self.descriptions)


def default_nodata(dtype: np.dtype) -> float:
    """No-data for outputs of targets without one: 0 for unsigned (Sentinel-2's convention)."""
    if np.issubdtype(dtype, np.floating):
        return float("nan")
    if np.issubdtype(dtype, np.unsignedinteger):
        return 0.0
    return float(np.iinfo(dtype).min)


def open_target(
    path: str, mask_path: str | None = None, *, every_band: bool = True
) -> TargetImage:
    """Open the target and its gap mask; a mask must be one integer band (1 = gap, 0 = clear).
    `every_band`: refuse a band without any data (a fill needs every band at a pixel; band
    statistics do not)."""
    dataset = open_raster(path, "target image")
    if every_band:
        check_every_band_has_data(dataset, path)
    grid = Grid.of(dataset)
    mask, coverage = None, 1.0
    if mask_path:
        mask = align_to_grid(mask_path, grid, "nearest", "gap mask")
        check_mask(mask, mask_path)
        coverage = covered_fraction(Grid.of(open_raster(mask_path, "gap mask")), grid)
    dtype = numpy_dtype(dataset)
    nodata = nodata_value(dataset)
    return TargetImage(
        path=path,
        dataset=dataset,
        grid=grid,
        mask=mask,
        dtype=dtype,
        nodata=default_nodata(dtype) if nodata is None else nodata,
        descriptions=band_descriptions(dataset),
        band_masks=BandMasks(dataset),
        mask_coverage=coverage,
    )


def check_mask(mask: gdal.Dataset, path: str) -> None:
    """Refuse masks that cannot be a gap mask: several bands or a floating-point type."""
    from .access import data_band_count

    bands = data_band_count(mask)
    if bands != 1:
        raise GapfillError(
            f"The gap mask '{path}' has {bands} bands; a gap mask has exactly one band "
            "(1 = gap, 0 = clear, 255 = outside). Build one with 'Build gap mask'."
        )
    if np.issubdtype(numpy_dtype(mask), np.floating):
        raise GapfillError(
            f"The gap mask '{path}' holds floating-point values; a gap mask is an integer raster "
            "(1 = gap, 0 = clear, 255 = outside). Use 'Build gap mask' with a threshold to make "
            "one."
        )


def read_gaps(
    target: TargetImage, window: Window, values: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(known, gap) booleans: `known` where the target has data, `gap` where it must be filled:
    the target's no-data, and where the gap mask has data and is not 0. Outside the mask's
    extent and on its own no-data, clear pixels stay clear (they are copied, never changed).
    `values`: the target's bands over `window` when already read."""
    known = read_valid(target.dataset, window) if values is None else target.known(window, values)
    gap = ~known
    if target.mask is not None:
        x, y, w, h = window
        values = target.mask.GetRasterBand(1).ReadAsArray(x, y, w, h)
        gap |= (values != 0) & read_valid(target.mask, window)
    return known, gap


def has_gaps(
    target: TargetImage, block_size: int = 1024, cancelled: CancelledFn = never_cancelled
) -> bool:
    """Whether the target has a pixel to fill, block by block until the first one (so a
    cloudy scene costs one block, a clear one a read of its validity and mask)."""
    for window in iter_windows(target.grid.width, target.grid.height, block_size):
        check_cancelled(cancelled)
        if read_gaps(target, window)[1].any():
            return True
    return False


def mask_coverage_messages(target: TargetImage) -> list[str]:
    """A warning when the gap mask covers only part of the target (see `read_gaps`)."""
    if target.mask is None or target.mask_coverage >= 1 - 1e-6:
        return []
    return [
        f"The gap mask covers {100 * target.mask_coverage:.1f} % of the target's extent; "
        "outside it only the target's own no-data is filled, its clear pixels are copied "
        "unchanged. Give a gap mask over the whole target to fill clouds there."
    ]


@dataclass
class Block:
    """What a fill method computes on: the target (as float64) and gaps over the read window."""

    window: Window
    inner: Window  # position of the written window inside the read window
    data: np.ndarray  # (bands, H, W) float64
    gap: np.ndarray  # (H, W) bool
    original: np.ndarray  # (bands, h, w) the written window in the target's own type
    sources: Any

    @property
    def outer(self) -> Window:
        """The read window, in image pixels."""
        height, width = self.gap.shape
        return self.window[0] - self.inner[0], self.window[1] - self.inner[1], width, height


@dataclass
class FillReport:
    """Pixel counts of a run, for the log and for the 'no gaps' / 'all gaps' checks."""

    pixels: int = 0
    gaps: int = 0
    filled: int = 0
    clear: int = 0
    messages: list[str] = field(default_factory=list)
    clear_required: bool = False  # nothing but the target's clear pixels fills its gaps

    @property
    def unfilled(self) -> int:
        return self.gaps - self.filled


ComputeFn = Callable[[Block], tuple[np.ndarray, ...]]


@dataclass(frozen=True)
class SideOutput:
    """A second raster written in the same pass (e.g. a per-pixel confidence): `compute` then
    returns its (bands, h, w) values as a third item."""

    path: str | Path
    descriptions: list[str]
    dtype: np.dtype = np.dtype(np.float32)
    nodata: float = float("nan")


def filled_window(target: TargetImage, block_size: int) -> Window:
    """The window to fill: the whole grid, or the target's region, which must lie on the block
    grid so that its blocks, halos and reads are those of a whole-image run (its pixels are
    then the same)."""
    grid = target.grid
    if target.region is None:
        return 0, 0, grid.width, grid.height
    x, y, w, h = target.region
    right, bottom = x + w, y + h
    on_grid = (
        w > 0 and h > 0 and x % block_size == 0 and y % block_size == 0
        and (right % block_size == 0 or right == grid.width) and right <= grid.width
        and (bottom % block_size == 0 or bottom == grid.height) and bottom <= grid.height
    )
    if not on_grid:
        raise GapfillError(
            f"The tile {target.region} of '{target.path}' is not on this fill's block grid of "
            f"{block_size} pixels (or leaves the image). Choose a tile size that is a multiple "
            f"of {block_size} pixels."
        )
    return target.region


def conclude(report: FillReport, target_path: str) -> FillReport:
    """The checks made once the whole image is filled (for a mosaic filled by tiles: on the
    sum of its tiles' reports, since one tile alone cannot tell)."""
    if report.clear_required and report.clear == 0:
        raise GapfillError(
            f"The target '{target_path}' is entirely in gaps: this fill has no clear pixel "
            "to learn or interpolate from. Use 'Fill gaps from other dates' with images of "
            "other dates."
        )
    if report.gaps == 0:
        report.messages.append(
            "The target has no gap pixels: the output is an unchanged copy of it."
        )
    return report


def fill_image(
    target: TargetImage,
    output: str | Path,
    compute: ComputeFn,
    *,
    read_sources: Callable[[Window], Any] = lambda window: None,
    halo: int = 0,
    block_size: int = 512,
    workers: int = 2,
    require_clear: bool = False,
    side: SideOutput | None = None,
    progress: ProgressFn = no_progress,
    cancelled: CancelledFn = never_cancelled,
) -> FillReport:
    """Fill `target` block by block into `output` (GeoTIFF); `compute` returns the core block's
    filled values (bands, h, w) and a boolean (h, w) of the gap pixels it could fill (and the
    values of `side` when given). Both outputs appear only when the whole run succeeded.
    With `target.region`, only that window is filled, into outputs of its own grid."""
    report = FillReport(messages=mask_coverage_messages(target), clear_required=require_clear)
    grid = target.grid
    region = filled_window(target, block_size)

    def read(window: Window) -> Block:
        outer, inner = expand_window(window, halo, grid.width, grid.height)
        raw = read_bands(target.dataset, outer)
        _, gap = read_gaps(target, outer, raw)
        original = crop(raw, inner).copy()
        return Block(window, inner, raw.astype(np.float64), gap, original, read_sources(outer))

    def fill(block: Block) -> tuple[np.ndarray, ...]:
        values, filled, *extra = compute(block)
        gap = crop(block.gap, block.inner)
        out = block.original.copy()
        replace = gap & filled
        out[:, replace] = cast_to(values[:, replace], target.dtype, target.nodata)
        out[:, gap & ~filled] = cast_to(np.array(target.nodata), target.dtype)
        return out, gap, replace, *extra

    with ExitStack() as stack:
        temporary = stack.enter_context(atomic_path(output))
        tile = grid.window(region)
        writer = GeoTiffWriter(
            temporary, tile, target.bands, target.dtype, target.nodata, target.descriptions
        )
        stack.callback(writer.close)
        side_writer = None
        if side is not None:
            side_path = stack.enter_context(atomic_path(side.path))
            side_writer = GeoTiffWriter(
                side_path, tile, len(side.descriptions), side.dtype, side.nodata,
                side.descriptions,
            )
            stack.callback(side_writer.close)

        def write(window: Window, result: tuple[np.ndarray, ...]) -> None:
            out, gap, replaced, *extra = result
            placed = (window[0] - region[0], window[1] - region[1], *window[2:])
            writer.write(placed, out)
            if side_writer is not None:
                side_writer.write(placed, cast_to(extra[0], side.dtype, side.nodata))
            report.pixels += gap.size
            report.gaps += int(gap.sum())
            report.filled += int(replaced.sum())

        run_pipeline(
            region_windows(grid.width, grid.height, block_size, region),
            window_count(region[2], region[3], block_size),
            read,
            fill,
            write,
            workers=workers,
            progress=progress,
            cancelled=cancelled,
        )
        report.clear = report.pixels - report.gaps
        if target.region is None:
            conclude(report, target.path)
    return report
