"""Tiles for networks: a grid of tiles read with a context margin, reflection padding at the image
border, smooth blending of overlapping predictions, and row buffers that release finished rows.

A tile of `tile × tile` pixels is what the network sees; its outer `margin` pixels only give
context and are discarded, the inner *core* is kept. Neighbouring cores overlap by about half a
margin and are blended with a smooth ramp that is positive everywhere, so the weights always sum
to more than zero. Tile origins are multiples of the model's size multiple, so networks that
downsample see every tile in the same phase as a single pass over the whole (padded) image.
Pure numpy.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .errors import GapfillError

Window = tuple[int, int, int, int]  # as raster.Window (x, y, width, height), without GDAL
Pick = tuple[np.ndarray, np.ndarray]  # rows and columns of a tile inside the block read for it


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


@dataclass(frozen=True)
class Tile:
    """One tile: its place in the grid and the image position of its core's top-left pixel."""

    row: int
    column: int
    x: int
    y: int


@dataclass(frozen=True)
class TileGrid:
    """Tiles covering a `width × height` image; `xs`/`ys` are the cores' start positions."""

    width: int
    height: int
    tile_width: int
    tile_height: int
    margin: int
    overlap: int
    xs: tuple[int, ...]
    ys: tuple[int, ...]

    @property
    def core_width(self) -> int:
        return self.tile_width - 2 * self.margin

    @property
    def core_height(self) -> int:
        return self.tile_height - 2 * self.margin

    def __len__(self) -> int:
        return len(self.xs) * len(self.ys)

    def tiles(self) -> Iterator[Tile]:
        """Row-major, so that rows of the image are finished from top to bottom."""
        for row, y in enumerate(self.ys):
            for column, x in enumerate(self.xs):
                yield Tile(row, column, x, y)

    def read_window(self, tile: Tile) -> Window:
        """What the network sees, in image pixels; it may reach outside the image."""
        return (
            tile.x - self.margin,
            tile.y - self.margin,
            self.tile_width,
            self.tile_height,
        )

    def core_window(self, tile: Tile) -> Window:
        """The kept part of the tile, clipped to the image."""
        return (
            tile.x,
            tile.y,
            min(self.core_width, self.width - tile.x),
            min(self.core_height, self.height - tile.y),
        )

    def rows_finished(self, row: int) -> int:
        """Image rows above this are final once every tile of grid row `row` is blended."""
        return self.ys[row + 1] if row + 1 < len(self.ys) else self.height

    def weights(self) -> np.ndarray:
        """Blending weights of a whole core (core_height, core_width), float32, all positive."""
        return np.outer(
            ramp_window(self.core_height, self.overlap), ramp_window(self.core_width, self.overlap)
        )

    def describe(self) -> str:
        return (
            f"{len(self.xs)} × {len(self.ys)} tiles of {self.tile_width} × {self.tile_height} px "
            f"(margin {self.margin} px, cores blended over {self.overlap} px) on a "
            f"{self.width} × {self.height} px image"
        )


def ramp_window(length: int, ramp: int) -> np.ndarray:
    """1-D weights: a raised-cosine rise over `ramp` pixels at each end, 1 in between, never 0."""
    ramp = min(ramp, length // 2)
    steps = np.arange(1, ramp + 1, dtype=np.float64) / (ramp + 1)
    rise = 0.5 - 0.5 * np.cos(np.pi * steps)
    window = np.ones(length, dtype=np.float64)
    if ramp:
        window[:ramp] = rise
        window[length - ramp :] = rise[::-1]
    return window.astype(np.float32)


def _axis(length: int, tile: int, margin: int, multiple: int, overlap: int, fixed: bool):
    """(tile length, core starts) along one axis; a short axis gets one smaller tile."""
    if not fixed:
        tile = min(tile, round_up(length + 2 * margin, multiple))
    core = tile - 2 * margin
    if core >= length:
        return tile, (0,)
    stride = max(multiple, (core - overlap) // multiple * multiple)
    starts = list(range(0, length - core, stride))
    starts.append(round_up(length - core, multiple))  # the last core ends at the image's edge
    return tile, tuple(starts)


def plan_tiles(
    width: int,
    height: int,
    tile_size: int,
    margin: int,
    multiple: int = 1,
    *,
    fixed: bool = False,
) -> TileGrid:
    """The tile grid of an image, or `GapfillError` when the sizes cannot work.

    `fixed`: the network takes exactly `tile_size` (static height/width), so small images are
    padded up to it instead of getting a smaller tile.
    """
    if width < 1 or height < 1:
        raise GapfillError(f"The image is empty ({width} × {height} px): there is nothing to fill.")
    if multiple < 1 or tile_size < 1 or tile_size % multiple:
        lower = max(multiple, tile_size // multiple * multiple)
        raise GapfillError(
            f"The tile size {tile_size} px is not a multiple of {multiple} px, the size multiple "
            f"of the model (its network downsamples). Use a multiple, e.g. {lower} or "
            f"{lower + multiple} px."
        )
    if margin < 0:
        raise GapfillError(f"The margin is {margin} px; it must be 0 or more.")
    if tile_size - 2 * margin < multiple:
        raise GapfillError(
            f"The tile size {tile_size} px leaves less than {multiple} px inside the context "
            f"margins (2 × {margin} px). Use a tile size of at least "
            f"{round_up(2 * margin + multiple, multiple)} px or a smaller margin."
        )
    overlap = margin // 2
    tile_width, xs = _axis(width, tile_size, margin, multiple, overlap, fixed)
    tile_height, ys = _axis(height, tile_size, margin, multiple, overlap, fixed)
    return TileGrid(width, height, tile_width, tile_height, margin, overlap, xs, ys)


def reflect_index(start: int, length: int, size: int) -> np.ndarray:
    """Positions `start … start+length−1` mirrored into `[0, size)` (edge pixel not repeated),
    as far out as needed."""
    positions = np.arange(start, start + length)
    if size == 1:
        return np.zeros(length, dtype=np.intp)
    period = 2 * (size - 1)
    positions %= period
    return np.where(positions < size, positions, period - positions).astype(np.intp)


def source_window(window: Window, width: int, height: int) -> tuple[Window, Pick]:
    """The part of the image a tile `window` needs, and how to pick the tile from it."""
    x, y, w, h = window
    rows, columns = reflect_index(y, h, height), reflect_index(x, w, width)
    top, left = int(rows.min()), int(columns.min())
    inside = (left, top, int(columns.max()) - left + 1, int(rows.max()) - top + 1)
    return inside, (rows - top, columns - left)


def pick(block: np.ndarray, rows_columns: Pick) -> np.ndarray:
    """The tile from the block `source_window` named; the block itself when no pixel mirrors."""
    rows, columns = rows_columns
    height, width = block.shape[-2:]
    if len(rows) == height and len(columns) == width:
        if (np.diff(rows) == 1).all() and (np.diff(columns) == 1).all():
            return block
    return block[..., rows[:, np.newaxis], columns[np.newaxis, :]]


def read_tile(array: np.ndarray, window: Window) -> np.ndarray:
    """The `window` of an in-memory (..., H, W) array, mirrored where it leaves the image."""
    inside, rows_columns = source_window(window, array.shape[-1], array.shape[-2])
    x, y, w, h = inside
    return pick(array[..., y : y + h, x : x + w], rows_columns)


class RowBlender:
    """Weighted sums of overlapping tile predictions over the image rows not yet released.

    Beside the predictions it keeps a uint8 label per pixel (set, not summed) for whatever the
    caller decides per pixel. Memory: the rows of the tiles in flight, never the whole image.
    """

    def __init__(self, bands: int, width: int) -> None:
        self.top = 0  # first image row held
        self.sums = np.zeros((bands, 0, width), dtype=np.float32)
        self.weight = np.zeros((0, width), dtype=np.float32)
        self.labels = np.zeros((0, width), dtype=np.uint8)

    def _reach(self, stop: int) -> None:
        """Grow the buffers to hold image rows up to `stop`."""
        more = stop - self.top - self.weight.shape[0]
        if more <= 0:
            return
        bands, _, width = self.sums.shape
        self.sums = np.concatenate([self.sums, np.zeros((bands, more, width), np.float32)], 1)
        self.weight = np.concatenate([self.weight, np.zeros((more, width), np.float32)])
        self.labels = np.concatenate([self.labels, np.zeros((more, width), np.uint8)])

    def _rows(self, window: Window) -> tuple[slice, slice]:
        x, y, w, h = window
        if y < self.top:
            raise ValueError(f"rows from {y} were already released (first held: {self.top})")
        self._reach(y + h)
        return slice(y - self.top, y - self.top + h), slice(x, x + w)

    def add(self, window: Window, weighted: np.ndarray, weights: np.ndarray) -> None:
        """Add values already multiplied by their `weights` (bands, h, w), and the weights
        (h, w), over the image `window` (the multiplication can then run on another thread)."""
        rows, columns = self._rows(window)
        self.sums[:, rows, columns] += weighted
        self.weight[rows, columns] += weights

    def set_labels(self, window: Window, labels: np.ndarray) -> None:
        rows, columns = self._rows(window)
        self.labels[rows, columns] = labels

    def release(self, stop: int) -> tuple[int, np.ndarray, np.ndarray]:
        """(first row, blended values, labels) of the rows up to `stop`, then forget them.

        Pixels that no tile predicted are NaN.
        """
        self._reach(stop)
        count = stop - self.top
        weight = self.weight[:count]
        blended = np.full(self.sums[:, :count].shape, np.nan, dtype=np.float32)
        np.divide(self.sums[:, :count], weight, out=blended, where=weight > 0)
        first, labels = self.top, self.labels[:count].copy()
        # copies, so the released rows' buffers are freed before the next rows are allocated
        self.sums = self.sums[:, count:].copy()
        self.weight = self.weight[count:].copy()
        self.labels = self.labels[count:].copy()
        self.top = stop
        return first, blended, labels
