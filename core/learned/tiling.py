"""Tiles for networks: a grid of tiles read with a context margin, reflection padding at the image
border, smooth blending of overlapping predictions, and buffers that release finished rows.

A tile of `tile × tile` pixels is what the network sees; its outer `margin` pixels only give
context and are discarded, the inner *core* is kept. Neighbouring cores overlap by about half a
margin and are blended with a smooth ramp that is positive everywhere, so the weights always sum
to more than zero. Tile origins are multiples of the model's size multiple, so networks that
downsample see every tile in the same phase as a single pass over the whole (padded) image.

Tiles are walked in vertical strips of a few tile columns, top to bottom within a strip, so the
blending buffers span a strip's width, not the image's: memory follows the tile size, not the
image size. What the last tile column of a strip adds beyond the strip's final columns is
carried over to the next strip (a band a few pixels wide), so the result is the same as one
blend over the whole image. Pure numpy.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..errors import GapfillError

STRIP_PIXELS = 2048  # about this many image columns per strip (memory ∝ strip width × tile)
Window = tuple[int, int, int, int]  # as raster.Window (x, y, width, height), without GDAL
Pick = tuple[np.ndarray, np.ndarray]  # rows and columns of a tile inside the block read for it


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


@dataclass(frozen=True)
class Tile:
    """One tile: its place in the grid, its strip and the image position of its core's
    top-left pixel."""

    row: int
    column: int
    x: int
    y: int
    strip: int = 0


@dataclass(frozen=True)
class Strip:
    """Consecutive tile columns walked together. Image columns `x0 … x1−1` are final once its
    tiles are blended (the next strip's cores start at `x1`); its cores reach to `reach`."""

    index: int
    columns: range
    x0: int
    x1: int
    reach: int


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
    strip_columns: int = 0  # tile columns per strip; 0: all

    @property
    def column_step(self) -> int:
        """Distance between the starts of neighbouring tile columns (0 with one column); the
        strips' boundaries are multiples of it."""
        return self.xs[1] - self.xs[0] if len(self.xs) > 1 else 0

    @property
    def row_step(self) -> int:
        """Distance between the starts of neighbouring tile rows (0 with one row)."""
        return self.ys[1] - self.ys[0] if len(self.ys) > 1 else 0

    @property
    def core_width(self) -> int:
        return self.tile_width - 2 * self.margin

    @property
    def core_height(self) -> int:
        return self.tile_height - 2 * self.margin

    def __len__(self) -> int:
        return len(self.xs) * len(self.ys)

    def strips(self) -> list[Strip]:
        """The strips, left to right; a lone last tile column joins the strip before it."""
        count = len(self.xs)
        step = self.strip_columns if 0 < self.strip_columns < count else count
        starts = list(range(0, count, step))
        if len(starts) > 1 and count - starts[-1] == 1:
            starts.pop()
        strips = []
        for index, first in enumerate(starts):
            stop = starts[index + 1] if index + 1 < len(starts) else count
            x1 = self.xs[stop] if stop < count else self.width
            reach = min(max(x + self.core_width for x in self.xs[:stop]), self.width)
            x0 = strips[-1].x1 if strips else 0
            strips.append(Strip(index, range(first, stop), x0, x1, reach))
        return strips

    def tiles(self) -> Iterator[Tile]:
        """Strip by strip, row-major within a strip, so that each strip's rows are finished
        from top to bottom."""
        for strip in self.strips():
            for row, y in enumerate(self.ys):
                for column in strip.columns:
                    yield Tile(row, column, self.xs[column], y, strip.index)

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
        strips = len(self.strips())
        return (
            f"{len(self.xs)} × {len(self.ys)} tiles of {self.tile_width} × {self.tile_height} px "
            f"(margin {self.margin} px, cores blended over {self.overlap} px) on a "
            f"{self.width} × {self.height} px image"
            + (f", walked in {strips} vertical strips" if strips > 1 else "")
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
    """(tile length, core starts) along one axis; a short axis gets one smaller tile.

    As few tiles as `tile` allows; unless the network's size is fixed, they then shrink to the
    smallest size that still covers the axis with evenly spaced cores: the same number of tiles
    computes fewer pixels (a 10980 px axis, tiles of 1024 px, margin 23 px, multiple 8: 12
    tiles of 984 px instead of 12 of 1024 px).
    """
    if not fixed:
        tile = min(tile, round_up(length + 2 * margin, multiple))
    core = tile - 2 * margin
    if core >= length:
        return tile, (0,)
    stride = max(multiple, (core - overlap) // multiple * multiple)
    count = 1 - (-(length - core) // stride)
    if not fixed:
        stride = round_up(-(-(length - overlap) // count), multiple)
        tile = min(tile, round_up(stride + overlap + 2 * margin, multiple))
        core = tile - 2 * margin
    starts = [index * stride for index in range(count - 1)]
    starts.append(min((count - 1) * stride, round_up(length - core, multiple)))
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
    step = xs[1] - xs[0] if len(xs) > 1 else tile_width
    strip_columns = max(1, -(-STRIP_PIXELS // step))
    return TileGrid(width, height, tile_width, tile_height, margin, overlap, xs, ys, strip_columns)


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


@dataclass
class Carry:
    """Blending sums beyond a strip's final columns, for every image row: the next strip adds
    them in. Columns `x … x + width − 1` of the image."""

    x: int
    sums: np.ndarray  # (bands, image height, width) float32
    weight: np.ndarray  # (image height, width) float32


class StripBlender:
    """Weighted sums of overlapping tile predictions over a strip's rows not yet released.

    Beside the predictions it keeps a uint8 label per pixel (set, not summed) for whatever the
    caller decides per pixel. Memory: the rows of the strip's tiles in flight, and the narrow
    carry to the next strip, never the whole image.
    """

    def __init__(self, bands: int, height: int, strip: Strip, carry: Carry | None = None) -> None:
        self.strip = strip
        self.top = 0  # first image row held
        self.held = 0  # rows held; the buffers' rows below them are zero
        width = strip.reach - strip.x0
        self.sums = np.zeros((bands, 0, width), dtype=np.float32)
        self.weight = np.zeros((0, width), dtype=np.float32)
        self.labels = np.zeros((0, width), dtype=np.uint8)
        if carry is not None and carry.x != strip.x0:
            raise ValueError(f"a carry from column {carry.x} does not fit a strip from {strip.x0}")
        self.carry_in = carry
        over = strip.reach - strip.x1
        self.carry = Carry(
            strip.x1,
            np.zeros((bands, height, over), dtype=np.float32),
            np.zeros((height, over), dtype=np.float32),
        )

    def _reach(self, stop: int) -> None:
        """Hold image rows up to `stop`. The buffers only grow, to what the rows in flight need
        (from the second row of tiles on, about a tile's core and its overlap), and are reused
        as rows are released, so held rows are not copied each time the strip moves down."""
        held = stop - self.top
        if held <= self.held:
            return
        if held > self.weight.shape[0]:
            sums = np.zeros((self.sums.shape[0], held, self.sums.shape[2]), np.float32)
            weight = np.zeros((held, self.weight.shape[1]), np.float32)
            labels = np.zeros((held, self.labels.shape[1]), np.uint8)
            sums[:, : self.held] = self.sums[:, : self.held]
            weight[: self.held] = self.weight[: self.held]
            labels[: self.held] = self.labels[: self.held]
            self.sums, self.weight, self.labels = sums, weight, labels
        self.held = held

    def _rows(self, window: Window) -> tuple[slice, slice]:
        x, y, w, h = window
        if y < self.top:
            raise ValueError(f"rows from {y} were already released (first held: {self.top})")
        left = x - self.strip.x0
        if left < 0 or x + w > self.strip.reach:
            raise ValueError(f"columns {x} … {x + w - 1} are outside the strip")
        self._reach(y + h)
        return slice(y - self.top, y - self.top + h), slice(left, left + w)

    def add(self, window: Window, weighted: np.ndarray, weights: np.ndarray) -> None:
        """Add values already multiplied by their `weights` (bands, h, w), and the weights
        (h, w), over the image `window` (the multiplication can then run on another thread)."""
        rows, columns = self._rows(window)
        self.sums[:, rows, columns] += weighted
        self.weight[rows, columns] += weights

    def set_labels(self, window: Window, labels: np.ndarray) -> None:
        rows, columns = self._rows(window)
        self.labels[rows, columns] = labels

    def release(self, stop: int) -> tuple[Window, np.ndarray, np.ndarray]:
        """(image window, blended values, labels) of the strip's final columns in the rows up to
        `stop`, then forget those rows; what lies beyond the final columns goes to `carry`.

        Pixels that no tile predicted are NaN.
        """
        self._reach(stop)
        top, count = self.top, stop - self.top
        sums, weight = self.sums[:, :count], self.weight[:count]
        if self.carry_in is not None:
            width = self.carry_in.weight.shape[1]
            sums[:, :, :width] += self.carry_in.sums[:, top:stop]
            weight[:, :width] += self.carry_in.weight[top:stop]
        final = self.strip.x1 - self.strip.x0
        self.carry.sums[:, top:stop] = sums[:, :, final:]
        self.carry.weight[top:stop] = weight[:, final:]
        with np.errstate(invalid="ignore", divide="ignore"):  # no weight: 0 / 0 = NaN
            blended = sums[:, :, :final] / weight[:, :final]
        labels = self.labels[:count, :final].copy()
        rest = self.held - count  # rows still held move up; the rows they leave are zeroed
        for buffer in (self.sums, self.weight, self.labels):
            buffer[..., :rest, :] = buffer[..., count : self.held, :]
            buffer[..., rest : self.held, :] = 0
        self.top, self.held = stop, rest
        return (self.strip.x0, top, final, count), blended, labels
