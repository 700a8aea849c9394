"""Where to cut training patches: a regular grid of patches over the common extent of the
rasters (or the user's own locations), filtered, then split into training and validation.

Filters, in this order: inside the target image (user locations only), inside the area of
interest, no no-data in any source (the gap mask's 255 included), at most / at least a fraction
of gap pixels. Patches are measured by groups (those whose top-left corner falls in one
`GROUP`×`GROUP` pixel cell): each source is read once over a group's window and every patch's
counts come from summed-area tables, so memory is bounded by a group, not by the image.

Splits: `random` (seeded) draws the validation patches among all; `blocks` draws whole square
blocks of the image (seeded) and then drops the training patches that overlap or touch a
validation patch, so that no validation patch is a neighbour of a training one.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from osgeo import gdal, ogr, osr

from ..errors import GapfillError
from ..masks.gap_mask import OUTSIDE
from ..progress import CancelledFn, ProgressFn, check_cancelled, never_cancelled, no_progress
from ..raster.access import Grid, Window, open_raster, quiet_gdal, read_bands
from ..raster.alignment import align_to_grid, transformed_bounds
from ..raster.fill_engine import check_mask
from ..raster.validity import BandMasks

SplitMethod = Literal["random", "blocks"]
SPLIT_METHODS: tuple[SplitMethod, ...] = ("random", "blocks")
TRAIN, VALIDATION = "train", "validation"
GROUP = 1024  # pixels: patches whose corner falls in one such cell are measured together


@dataclass(frozen=True)
class PatchPoint:
    """A patch location: its centre in the target's CRS, its split (None: left out), its id."""

    id: int
    x: float
    y: float
    split: str | None


@dataclass(frozen=True)
class PatchLocation(PatchPoint):
    """A sampled patch: also its top-left pixel on the target grid and what it holds."""

    col: int
    row: int
    gap_fraction: float
    valid_fraction: float


@dataclass(frozen=True)
class SamplingSettings:
    """The grid, the filters and the split; fractions are of the patch's pixels."""

    patch_size: int = 64
    stride: int = 0  # 0: the patch size (patches side by side)
    max_gap_fraction: float = 1.0
    min_gap_fraction: float = 0.0
    split: SplitMethod = "random"
    validation_fraction: float = 0.2
    block_patches: int = 4  # side of a split block, in strides
    seed: int = 0
    max_train: int = 0  # 0: no limit
    max_validation: int = 0

    @property
    def step(self) -> int:
        return self.stride or self.patch_size


@dataclass
class SamplingReport:
    """The locations kept, and what became of the others (for the log and the error)."""

    locations: list[PatchLocation]
    candidates: int
    removed: dict[str, int]  # filter → patches it removed, in the order applied
    split_method: str
    border_removed: int = 0
    capped: dict[str, int] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)

    def count(self, split: str) -> int:
        return sum(location.split == split for location in self.locations)


def check_settings(settings: SamplingSettings) -> None:
    problems = []
    if settings.patch_size < 1 or settings.stride < 0:
        problems.append("the patch size must be at least 1 pixel and the stride 0 or more")
    if not 0 <= settings.min_gap_fraction <= settings.max_gap_fraction <= 1:
        problems.append(
            f"the gap fractions must satisfy 0 ≤ minimum ({settings.min_gap_fraction:g}) ≤ "
            f"maximum ({settings.max_gap_fraction:g}) ≤ 1"
        )
    if not 0 <= settings.validation_fraction <= 1:
        problems.append("the validation fraction must be between 0 and 1")
    if settings.split not in SPLIT_METHODS:
        problems.append(f"the split must be one of {', '.join(SPLIT_METHODS)}")
    if settings.block_patches < 1 or settings.max_train < 0 or settings.max_validation < 0:
        problems.append("the block size must be at least 1 and the maximum counts 0 or more")
    if problems:
        raise GapfillError("Invalid patch sampling settings: " + "; ".join(problems) + ".")


# ---------------------------------------------------------------- grid geometry


def pixel_of(grid: Grid, x: float, y: float) -> tuple[float, float]:
    """Fractional (column, row) of a map position on the grid."""
    inverse = gdal.InvGeoTransform(grid.geotransform)
    col, row = gdal.ApplyGeoTransform(inverse, x, y)
    return col, row


def map_of(grid: Grid, col: float, row: float) -> tuple[float, float]:
    x, y = gdal.ApplyGeoTransform(list(grid.geotransform), col, row)
    return x, y


def corner_of(grid: Grid, x: float, y: float, size: int) -> tuple[int, int]:
    """Top-left pixel of the size×size patch centred on (x, y)."""
    col, row = pixel_of(grid, x, y)
    return round(col - size / 2), round(row - size / 2)


def centre_of(grid: Grid, col: int, row: int, size: int) -> tuple[float, float]:
    return map_of(grid, col + size / 2, row + size / 2)


def common_window(grid: Grid, paths: Sequence[str]) -> Window:
    """The part of the target grid that every raster of `paths` covers (whole pixels)."""
    x0, y0, x1, y1 = 0, 0, grid.width, grid.height
    for path in paths:
        own = Grid.of(open_raster(path, "source"))
        if own.same_as(grid) or not (own.georeferenced and grid.georeferenced):
            continue
        xmin, ymin, xmax, ymax = transformed_bounds(own, grid.projection)
        corners = [pixel_of(grid, x, y) for x in (xmin, xmax) for y in (ymin, ymax)]
        cols, rows = [c for c, _ in corners], [r for _, r in corners]
        x0, x1 = max(x0, math.floor(min(cols))), min(x1, math.ceil(max(cols)))
        y0, y1 = max(y0, math.floor(min(rows))), min(y1, math.ceil(max(rows)))
    return x0, y0, max(0, x1 - x0), max(0, y1 - y0)


def grid_corners(window: Window, size: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-left corners of the patches laid side by side (every `step` px) inside `window`."""
    x, y, w, h = window
    cols = np.arange(x, x + w - size + 1, step)
    rows = np.arange(y, y + h - size + 1, step)
    grid_rows, grid_cols = np.meshgrid(rows, cols, indexing="ij")
    return grid_cols.ravel(), grid_rows.ravel()


# ---------------------------------------------------------------- measuring patches


class AreaOfInterest:
    """Polygons (WKT in the target's CRS) burnt on windows of the target grid."""

    def __init__(self, wkts: Sequence[str], grid: Grid) -> None:
        self.grid = grid
        self.source = ogr.GetDriverByName("Memory").CreateDataSource("aoi")
        srs = None
        if grid.projection:
            srs = osr.SpatialReference()
            srs.ImportFromWkt(grid.projection)
        self.layer = self.source.CreateLayer("aoi", srs, ogr.wkbUnknown)
        for index, wkt in enumerate(wkts):
            geometry = ogr.CreateGeometryFromWkt(wkt)
            if geometry is None:
                raise GapfillError(f"Area of interest polygon {index + 1} is not valid WKT.")
            feature = ogr.Feature(self.layer.GetLayerDefn())
            feature.SetGeometry(geometry)
            self.layer.CreateFeature(feature)

    def inside(self, window: Window) -> np.ndarray:
        """(h, w) booleans: pixel centre inside a polygon."""
        x, y, w, h = window
        raster = gdal.GetDriverByName("MEM").Create("", w, h, 1, gdal.GDT_Byte)
        gx, gy = map_of(self.grid, x, y)
        _, dx, rx, _, ry, dy = self.grid.geotransform
        raster.SetGeoTransform((gx, dx, rx, gy, ry, dy))
        if self.grid.projection:
            raster.SetProjection(self.grid.projection)
        with quiet_gdal():
            gdal.RasterizeLayer(raster, [1], self.layer, burn_values=[1])
        return raster.ReadAsArray() > 0


@dataclass
class Sources:
    """The datasets a patch is measured on, all on the target grid."""

    grid: Grid
    images: list[BandMasks]  # target and other sources: only their data/no-data matters
    mask: BandMasks | None
    aoi: AreaOfInterest | None

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(no data, gap, outside AOI) booleans over a window."""
        _, _, w, h = window
        nodata = np.zeros((h, w), dtype=bool)
        for image in self.images:
            nodata |= ~image.valid(window, read_bands(image.dataset, window)).all(axis=0)
        gap = np.zeros((h, w), dtype=bool)
        if self.mask is not None:
            values = read_bands(self.mask.dataset, window)
            nodata |= ~self.mask.valid(window, values)[0] | (values[0] == OUTSIDE)
            gap = (values[0] != 0) & ~nodata
        outside = ~self.aoi.inside(window) if self.aoi else np.zeros((h, w), dtype=bool)
        return nodata, gap, outside


def window_sums(indicator: np.ndarray, cols: np.ndarray, rows: np.ndarray, size: int) -> np.ndarray:
    """Count of True pixels in each size×size patch (top-left `cols`, `rows` in the window)."""
    table = np.zeros((indicator.shape[0] + 1, indicator.shape[1] + 1), dtype=np.int64)
    np.cumsum(np.cumsum(indicator, axis=0), axis=1, out=table[1:, 1:])
    return (
        table[rows + size, cols + size] - table[rows, cols + size]
        - table[rows + size, cols] + table[rows, cols]
    )


def measure(
    sources: Sources,
    cols: np.ndarray,
    rows: np.ndarray,
    size: int,
    progress: ProgressFn,
    cancelled: CancelledFn,
) -> np.ndarray:
    """(patches, 3) pixel counts per patch: no data, gap, outside the area of interest."""
    counts = np.zeros((cols.size, 3), dtype=np.int64)
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for index, (col, row) in enumerate(zip(cols.tolist(), rows.tolist(), strict=True)):
        groups[(row // GROUP, col // GROUP)].append(index)
    for done, key in enumerate(sorted(groups), start=1):
        check_cancelled(cancelled)
        members = np.array(groups[key])
        x0, y0 = int(cols[members].min()), int(rows[members].min())
        window = (
            x0, y0, int(cols[members].max()) + size - x0, int(rows[members].max()) + size - y0
        )
        local_cols, local_rows = cols[members] - x0, rows[members] - y0
        for k, indicator in enumerate(sources.read(window)):
            counts[members, k] = window_sums(indicator, local_cols, local_rows, size)
        progress(done / len(groups))
    return counts


# ---------------------------------------------------------------- splitting


def neighbours_of(
    cols: np.ndarray, rows: np.ndarray, others: np.ndarray, candidates: np.ndarray, size: int
) -> np.ndarray:
    """Booleans over `candidates`: the patch overlaps or touches a patch of `others`
    (|Δcol| ≤ size and |Δrow| ≤ size), found through a spatial hash of size×size cells."""
    cells: dict[tuple[int, int], list[int]] = defaultdict(list)
    for index in others.tolist():
        cells[(int(cols[index]) // size, int(rows[index]) // size)].append(index)
    result = np.zeros(candidates.size, dtype=bool)
    for k, index in enumerate(candidates.tolist()):
        col, row = int(cols[index]), int(rows[index])
        cx, cy = col // size, row // size
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                for other in cells.get((cx + dx, cy + dy), ()):
                    if abs(int(cols[other]) - col) <= size and abs(int(rows[other]) - row) <= size:
                        result[k] = True
                        break
    return result


def split_patches(
    cols: np.ndarray,
    rows: np.ndarray,
    settings: SamplingSettings,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """(is validation, dropped at block borders) booleans, one per patch."""
    count = cols.size
    wanted = round(settings.validation_fraction * count)
    validation = np.zeros(count, dtype=bool)
    if settings.split == "random":
        validation[rng.permutation(count)[:wanted]] = True
        return validation, np.zeros(count, dtype=bool)
    size = settings.patch_size
    block = settings.block_patches * settings.step
    centre_cols, centre_rows = (cols + size // 2) // block, (rows + size // 2) // block
    blocks, block_of = np.unique(np.stack([centre_rows, centre_cols], 1), axis=0,
                                 return_inverse=True)
    block_of = block_of.ravel()
    sizes = np.bincount(block_of, minlength=len(blocks))
    chosen, total = [], 0
    for index in rng.permutation(len(blocks)).tolist():  # add blocks that bring the count closer
        if abs(total + sizes[index] - wanted) < abs(total - wanted):
            chosen.append(index)
            total += sizes[index]
    if not chosen and wanted:  # every block is too large: the one closest to the wanted count
        chosen.append(int(np.argmin(np.abs(sizes - wanted))))
    validation = np.isin(block_of, chosen)
    training = np.flatnonzero(~validation)
    dropped = np.zeros(count, dtype=bool)
    dropped[training] = neighbours_of(cols, rows, np.flatnonzero(validation), training, size)
    return validation, dropped


def no_training_error(
    kept: int, chosen: dict[str, np.ndarray], settings: SamplingSettings, grid: Grid
) -> str:
    """Why a split left no training patch, and what to change (a dataset without training
    patches cannot train anything: refused rather than written)."""
    why = f"The split left no training patch: of {kept} patches that passed the filters, "
    why += f"{chosen[VALIDATION].size} went to validation"
    if settings.split == "blocks":
        side = settings.block_patches * settings.step
        blocks = -(-grid.width // side) * -(-grid.height // side)
        return (
            why + f" and the training patches touching them were dropped: the spatial blocks "
            f"are {side} px wide (split block side {settings.block_patches} × stride "
            f"{settings.step} px), so this {grid.width}×{grid.height} px image holds only "
            f"{blocks} of them. Lower the split block side, use the random split, or sample a "
            "larger image."
        )
    return why + ". Lower the validation fraction, or sample more patches."


def cap(selected: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    """At most `limit` of the `selected` indices (a seeded draw, kept in order)."""
    if not limit or selected.size <= limit:
        return selected
    return np.sort(rng.choice(selected, size=limit, replace=False))


# ---------------------------------------------------------------- the sampler


def open_sources(
    target: str, gap_mask: str | None, others: Sequence[str], aoi: Sequence[str]
) -> Sources:
    dataset = open_raster(target, "target image")
    grid = Grid.of(dataset)
    images = [dataset] + [align_to_grid(path, grid, "bilinear", "source") for path in others]
    mask = None
    if gap_mask:
        mask = align_to_grid(gap_mask, grid, "nearest", "gap mask")
        check_mask(mask, gap_mask)
    return Sources(
        grid, [BandMasks(image) for image in images], BandMasks(mask) if mask else None,
        AreaOfInterest(aoi, grid) if aoi else None,
    )


def candidate_corners(
    grid: Grid,
    settings: SamplingSettings,
    others: Sequence[str],
    locations: Sequence[tuple[float, float]] | None,
    removed: dict[str, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Top-left corners (row-major order) of the grid over the common extent of the target
    and `others`, or of the patches centred on `locations` that lie inside the target."""
    size = settings.patch_size
    if locations is None:
        window = common_window(grid, others)
        if window[2] < size or window[3] < size:
            raise GapfillError(
                f"The rasters have {window[2]}×{window[3]} px in common on the target grid, "
                f"less than one patch of {size}×{size} px. Choose rasters that overlap more, or "
                "a smaller patch size."
            )
        cols, rows = grid_corners(window, size, settings.step)
    else:
        corners = np.array([corner_of(grid, x, y, size) for x, y in locations], dtype=np.int64)
        cols, rows = corners.reshape(-1, 2).T
        inside = (cols >= 0) & (rows >= 0) & (cols + size <= grid.width)
        inside &= rows + size <= grid.height
        removed["lie (partly) outside the target image"] = int((~inside).sum())
        cols, rows = cols[inside], rows[inside]
    order = np.lexsort((cols, rows))
    return cols[order], rows[order]


def no_patch_error(candidates: int, removed: dict[str, int], settings: SamplingSettings) -> str:
    listing = "; ".join(f"{count} {reason}" for reason, count in removed.items() if count)
    return (
        f"No patch passed the filters: of {candidates} candidate patches of "
        f"{settings.patch_size} px, {listing}. Relax the filters (gap fractions, area of "
        "interest), use a smaller patch size, or choose rasters without no-data there."
    )


def sample_patches(
    target: str,
    *,
    gap_mask: str | None = None,
    sources: Sequence[str] = (),
    settings: SamplingSettings = SamplingSettings(),
    locations: Sequence[tuple[float, float]] | None = None,
    aoi: Sequence[str] = (),
    progress: ProgressFn = no_progress,
    cancelled: CancelledFn = never_cancelled,
) -> SamplingReport:
    """Patch locations on `target`'s grid: a grid over the common extent of every raster, or
    the centres in `locations` (map coordinates, target CRS); `aoi`: polygons (WKT, target
    CRS) the patches must lie in."""
    check_settings(settings)
    opened = open_sources(target, gap_mask, sources, aoi)
    grid, size = opened.grid, settings.patch_size
    if size > min(grid.width, grid.height):
        raise GapfillError(
            f"The patch size ({size} px) is larger than the target image ({grid.width}×"
            f"{grid.height} px). Choose a smaller patch size."
        )
    removed: dict[str, int] = {}
    cols, rows = candidate_corners(grid, settings, [p for p in (gap_mask, *sources) if p],
                                   locations, removed)
    candidates = cols.size + sum(removed.values())
    nodata, gaps, outside = measure(opened, cols, rows, size, progress, cancelled).T
    gap_fraction = gaps / (size * size)
    keep = np.ones(cols.size, dtype=bool)
    for reason, fails in (
        ("lie (partly) outside the area of interest", outside > 0),
        ("contain no-data in some source", nodata > 0),
        (f"have a gap fraction above {settings.max_gap_fraction:g}",
         gap_fraction > settings.max_gap_fraction),
        (f"have a gap fraction below {settings.min_gap_fraction:g}",
         gap_fraction < settings.min_gap_fraction),
    ):
        removed[reason] = int((keep & fails).sum())
        keep &= ~fails
    if not keep.any():
        raise GapfillError(no_patch_error(candidates, removed, settings))
    kept = np.flatnonzero(keep)
    rng = np.random.default_rng(settings.seed)
    validation, dropped = split_patches(cols[kept], rows[kept], settings, rng)
    report = SamplingReport([], candidates, removed, settings.split, int(dropped.sum()))
    pools = {TRAIN: kept[~validation & ~dropped], VALIDATION: kept[validation]}
    limits = {TRAIN: settings.max_train, VALIDATION: settings.max_validation}
    chosen = {split: cap(pool, limits[split], rng) for split, pool in pools.items()}
    report.capped = {split: pools[split].size - chosen[split].size for split in pools}
    if not chosen[VALIDATION].size:
        report.messages.append(
            "No validation patch: raise the validation fraction, or sample more patches."
        )
    if not chosen[TRAIN].size and settings.validation_fraction < 1:
        raise GapfillError(no_training_error(kept.size, chosen, settings, grid))
    split_of = {int(i): split for split, indices in chosen.items() for i in indices}
    for number, index in enumerate(sorted(split_of), start=1):
        x, y = centre_of(grid, int(cols[index]), int(rows[index]), size)
        report.locations.append(
            PatchLocation(
                id=number, x=x, y=y, split=split_of[index], col=int(cols[index]),
                row=int(rows[index]), gap_fraction=float(gap_fraction[index]),
                valid_fraction=float(1 - nodata[index] / (size * size)),
            )
        )
    return report
