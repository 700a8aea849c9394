"""Fill gaps with an ONNX model: tiles read with context, batched through one ONNX Runtime
session, blended without seams, and merged so that only gap pixels change.

No GDAL here: this engine runs where only numpy and onnxruntime exist (a GPU server), on
in-memory arrays (`fill_arrays`); `onnx_fill_raster` streams GeoTIFFs through the same engine
(`run_tiles`). Tiles are prepared on the calling thread while the previous batch runs on a worker
thread; finished rows of a strip of the image are handed back as soon as the last tile touching
them is in.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..dependencies import require
from ..errors import GapfillError
from ..progress import CancelledFn, ProgressFn, check_cancelled, never_cancelled, no_progress
from .model_card import ROLE_LABELS, ModelCard, ModelInput, check_graph, graph_of_session
from .onnx_session import CUDA, LogFn, no_log, provider_used
from .scaling import scale_bands, unscale_bands
from .tiling import StripBlender, Tile, TileGrid, Window, plan_tiles, read_tile

# Per-pixel flags of the merge (StripBlender labels): a pixel is a gap, and/or gets the prediction.
# A gap pixel without PREDICT has no data in any source and becomes no-data.
GAP, PREDICT = 1, 2
CANCEL_POLL_S = 0.05  # how often a wait for the network checks the cancel callback


@dataclass
class TileJob:
    """A prepared tile: merge flags of its core and the network's inputs (None: nothing to do)."""

    tile: Tile
    flags: np.ndarray  # (core height, core width) uint8, GAP | PREDICT
    feeds: dict[str, np.ndarray] | None  # input name → (bands, tile height, tile width)


@dataclass
class TileStats:
    """What a run did, for the log and for benchmarks."""

    tiles: int = 0
    predicted: int = 0
    seconds: float = 0.0


class ModelRunner:
    """A session bound to its card: checked graph, feed types, fixed sizes, scaling."""

    def __init__(self, session: Any, card: ModelCard, source: str = "the model") -> None:
        inputs, outputs = graph_of_session(session)
        check_graph(card, inputs, outputs, source)
        self.session = session
        self.card = card
        self.source = source
        self.input_types = {tensor.name: np.dtype(tensor.element_type) for tensor in inputs}
        shapes = [tensor.shape for tensor in inputs if tensor.shape and len(tensor.shape) == 4]
        sizes = {dim for shape in shapes for dim in shape[2:] if dim is not None}
        batches = {shape[0] for shape in shapes if shape[0] is not None}
        if len(sizes) > 1 or len(batches) > 1:
            raise GapfillError(
                f"The network of {source} has fixed input sizes that differ between its inputs "
                f"or between height and width ({sorted(sizes | batches)}); Gapfill needs square "
                "tiles of one size for every input. Export it with dynamic height and width."
            )
        self.fixed_size = sizes.pop() if sizes else None
        self.fixed_batch = batches.pop() if batches else None
        target = card.input_for("target")
        self.target_bands = (
            [card.output.bands.index(band) for band in target.bands] if target else []
        )

    def plan(
        self, width: int, height: int, tile_size: int | None, margin: int | None, log: LogFn
    ) -> TileGrid:
        """The tile grid, sizes defaulting to the card's; refuses sizes the network cannot take."""
        card = self.card
        margin = card.context_margin if margin is None else margin
        if self.fixed_size is not None:
            if tile_size not in (None, self.fixed_size):
                raise GapfillError(
                    f"The network of {self.source} takes tiles of exactly {self.fixed_size} × "
                    f"{self.fixed_size} px (fixed input size); the tile size must be "
                    f"{self.fixed_size}, not {tile_size}."
                )
            tile_size = self.fixed_size
        elif tile_size is None:
            tile_size = card.recommended_tile_size
        if margin < card.context_margin:
            log(
                f"Warning: the margin ({margin} px) is below the model's context margin "
                f"({card.context_margin} px): tile borders may show."
            )
        grid = plan_tiles(
            width,
            height,
            tile_size,
            margin,
            card.size_multiple,
            fixed=self.fixed_size is not None,
        )
        log(f"Tile grid: {grid.describe()}.")
        return grid

    def batch_size(self, asked: int, log: LogFn) -> int:
        """Tiles per network run; 0: automatic. On the CPU larger batches bring no speed (each
        run already uses every core) but multiply the memory, so one tile; on a GPU, four."""
        if asked < 0:
            raise GapfillError(
                f"The batch size is {asked}; it must be 0 (automatic) or a number of tiles."
            )
        if self.fixed_batch is not None:
            if asked != self.fixed_batch:
                log(f"The network takes exactly {self.fixed_batch} tiles per batch; using that.")
            return self.fixed_batch
        if asked == 0:
            asked = 4 if self.session.get_providers()[0] == CUDA else 1
            log(f"Batches of {asked} tile{'s' if asked > 1 else ''} (automatic).")
        return asked

    def prepare(
        self,
        grid: TileGrid,
        tile: Tile,
        raw: Mapping[str, np.ndarray],
        gap: np.ndarray,
        full_reconstruction: bool,
    ) -> TileJob:
        """Scale a tile's sources and decide, per core pixel, what the merge will do.

        `raw`: role → (bands, tile height, tile width) float32 in raw units, NaN = no data, the
        caller's to give away (scaled in place); the target holds the output bands. `gap`: (tile
        height, tile width) bool.
        """
        card = self.card
        scaled = {}
        for item in card.inputs:
            if item.role == "gap_mask":
                values = gap[np.newaxis].astype(np.float32)
            elif item.role == "target":
                values = raw["target"]
                if self.target_bands != list(range(len(values))):
                    values = values[self.target_bands]
            else:
                values = raw[item.role]
            scaled[item.name] = scale_bands(values, item.scaling, in_place=True)
        fillable = np.ones(gap.shape, dtype=bool)
        if card.auxiliary_inputs:
            fillable[:] = False
            for item in card.auxiliary_inputs:
                fillable |= np.isfinite(scaled[item.name]).all(axis=0)
        _, _, width, height = grid.core_window(tile)
        core = (slice(grid.margin, grid.margin + height), slice(grid.margin, grid.margin + width))
        predict = (gap[core] & fillable[core]) | (full_reconstruction & ~gap[core])
        flags = gap[core].astype(np.uint8) * GAP | predict.astype(np.uint8) * PREDICT
        if not predict.any():
            return TileJob(tile, flags, None)
        feeds = {}
        for name, values in scaled.items():
            if not np.isfinite(values.sum()):  # a sum costs less than a mask of the usual case
                np.copyto(values, 0, where=~np.isfinite(values))  # no data: neutral 0
            feeds[name] = values.astype(self.input_types[name], copy=False)
        return TileJob(tile, flags, feeds)

    def infer(
        self, grid: TileGrid, weights: np.ndarray, jobs: list[TileJob], run_options: Any
    ) -> list[Any]:
        """Core predictions in raw units times their blending `weights`, (bands, h, w) float32,
        per job (None when skipped)."""
        active = [job for job in jobs if job.feeds is not None]
        if not active:
            return [None] * len(jobs)
        feeds = {name: np.stack([job.feeds[name] for job in active]) for name in self.input_types}
        missing = (self.fixed_batch or 0) - len(active)
        if missing > 0:  # a network of fixed batch size gets blank tiles to complete the batch
            feeds = {
                name: np.concatenate([batch, np.zeros((missing, *batch.shape[1:]), batch.dtype)])
                for name, batch in feeds.items()
            }
        try:
            output = self.session.run([self.card.output.name], feeds, run_options)[0]
        except Exception as error:  # ONNX Runtime's own failures (bad shapes, types, …)
            reason = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            raise GapfillError(
                f"The network of {self.source} failed on its inputs ({reason}). Its card "
                "probably does not describe the network (band counts, input names or sizes): "
                "check it with 'Describe model', or export the model again."
            ) from error
        expected = (grid.tile_height, grid.tile_width)
        bands = len(self.card.output.bands)
        if output.ndim == 4 and output.shape[1] != bands:
            raise GapfillError(
                f"The network of {self.source} returned {output.shape[1]} bands where its card "
                f"names {bands}: the card does not describe the network. Export it again."
            )
        if output.ndim != 4 or output.shape[2:] != expected:
            raise GapfillError(
                f"The network of {self.source} returned an output of shape {output.shape} for "
                f"tiles of {expected[1]} × {expected[0]} px; Gapfill needs an output of the "
                "input's height and width."
            )
        predictions = iter(output)
        results = []
        for job in jobs:
            if job.feeds is None:
                results.append(None)
                continue
            _, _, width, height = grid.core_window(job.tile)
            core = next(predictions)[
                :, grid.margin : grid.margin + height, grid.margin : grid.margin + width
            ]
            values = unscale_bands(core, self.card.output.scaling)
            values *= weights[:height, :width]
            results.append(values)
        return results


RowsFn = Callable[[Window, np.ndarray, np.ndarray], None]  # (image window, values, flags)


def _chunks(
    grid: TileGrid, read: Callable[[Tile], TileJob], batch_size: int, cancelled: CancelledFn
) -> Iterator[list[TileJob]]:
    """Prepared tiles in the grid's order, grouped so that each group holds `batch_size` tiles
    for the network (tiles without gaps ride along without running it)."""
    chunk: list[TileJob] = []
    active = 0
    for tile in grid.tiles():
        check_cancelled(cancelled)
        job = read(tile)
        chunk.append(job)
        active += job.feeds is not None
        if active == batch_size:
            yield chunk
            chunk, active = [], 0
    if chunk:
        yield chunk


def run_tiles(
    runner: ModelRunner,
    grid: TileGrid,
    read: Callable[[Tile], TileJob],
    finish_rows: RowsFn,
    *,
    batch_size: int = 1,
    progress: ProgressFn = no_progress,
    cancelled: CancelledFn = never_cancelled,
    log: LogFn = no_log,
) -> TileStats:
    """Run every tile: `read` prepares it (calling thread), the network runs on a worker thread,
    blending and `finish_rows` happen on the calling thread, in order, strip by strip; each
    strip's rows arrive top to bottom. Raises `Cancelled`."""
    ort = require("onnxruntime", "Running an ONNX model")
    run_options = ort.RunOptions()
    strips = grid.strips()
    bands = len(runner.card.output.bands)
    blender = StripBlender(bands, grid.height, strips[0])
    weights = grid.weights()
    stats = TileStats()
    start = time.perf_counter()
    pending: deque[tuple[list[TileJob], Future]] = deque()

    def wait(future: Future) -> list[Any]:
        while True:
            try:
                return future.result(timeout=CANCEL_POLL_S)
            except FutureTimeout:
                check_cancelled(cancelled)

    def finish_oldest() -> None:
        nonlocal blender
        jobs, future = pending.popleft()
        for job, prediction in zip(jobs, wait(future), strict=True):
            strip = strips[job.tile.strip]
            if blender.strip != strip:
                blender = StripBlender(bands, grid.height, strip, blender.carry)
            window = grid.core_window(job.tile)
            blender.set_labels(window, job.flags)
            if prediction is not None:
                _, _, width, height = window
                blender.add(window, prediction, weights[:height, :width])
                stats.predicted += 1
            stats.tiles += 1
            progress(stats.tiles / len(grid))
            if job.tile.column == strip.columns[-1]:
                finish_rows(*blender.release(grid.rows_finished(job.tile.row)))

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="gapfill-onnx") as pool:
        try:
            for chunk in _chunks(grid, read, batch_size, cancelled):
                pending.append(
                    (chunk, pool.submit(runner.infer, grid, weights, chunk, run_options))
                )
                if len(pending) > 1:  # one batch runs while the next one is read
                    finish_oldest()
            while pending:
                finish_oldest()
        except BaseException:
            run_options.terminate = True  # stops a network run in progress within its kernels
            for _, future in pending:
                future.cancel()
            raise
    stats.seconds = time.perf_counter() - start
    megapixels = grid.width * grid.height / 1e6
    log(
        f"{stats.predicted} of {stats.tiles} tiles needed the network; {megapixels:.2f} Mpx in "
        f"{stats.seconds:.2f} s ({megapixels / max(stats.seconds, 1e-9):.2f} Mpx/s) on "
        f"{provider_used(runner.session)}."
    )
    return stats


def _check_array(role: str, array: np.ndarray, bands: int, shape: tuple[int, int]) -> None:
    if array.ndim != 3 or array.shape[1:] != shape:
        raise GapfillError(
            f"The {ROLE_LABELS[role]} array has shape {array.shape}; it must be (bands, height, "
            f"width) = (…, {shape[0]}, {shape[1]}) like the gap mask."
        )
    if array.shape[0] != bands:
        raise GapfillError(
            f"The {ROLE_LABELS[role]} array has {array.shape[0]} bands but the model takes {bands}."
        )


def missing_role_error(item: ModelInput) -> GapfillError:
    """The refusal for a role the card needs and the caller did not give."""
    return GapfillError(
        f"The model needs a {ROLE_LABELS[item.role]} (role '{item.role}', input '{item.name}': "
        f"bands {', '.join(item.bands)}), and none was given."
    )


def fill_arrays(
    session: Any,
    card: ModelCard,
    sources: Mapping[str, np.ndarray],
    gap: np.ndarray,
    *,
    tile_size: int | None = None,
    margin: int | None = None,
    batch_size: int = 0,
    full_reconstruction: bool = False,
    progress: ProgressFn = no_progress,
    cancelled: CancelledFn = never_cancelled,
    log: LogFn = no_log,
) -> np.ndarray:
    """Fill the gaps of `sources["target"]` (the output bands of the card, in order).

    `sources`: role → (bands, H, W), NaN = no data; `gap`: (H, W) bool, True = fill (NaN target
    pixels are gaps too). Returns (bands, H, W) in a float type that holds the target's values
    exactly: clear pixels are the target's own, gap pixels the prediction, and gap pixels that
    no source covers NaN. `full_reconstruction` replaces every pixel by the prediction instead.
    """
    runner = ModelRunner(session, card)
    shape = gap.shape
    if "target" not in sources:
        raise GapfillError("No target array was given: sources['target'] is the image to fill.")
    target = sources["target"]
    _check_array("target", target, len(card.output.bands), shape)
    for item in card.auxiliary_inputs:
        if item.role not in sources:
            raise missing_role_error(item)
        _check_array(item.role, sources[item.role], len(item.bands), shape)
    gap = gap.astype(bool) | ~np.isfinite(target).all(axis=0)
    roles = ["target"] + [item.role for item in card.auxiliary_inputs]
    grid = runner.plan(shape[1], shape[0], tile_size, margin, log)
    out = target.astype(np.result_type(target.dtype, np.float32))

    def read(tile: Tile) -> TileJob:
        window = grid.read_window(tile)
        raw = {role: read_tile(sources[role], window).astype(np.float32) for role in roles}
        return runner.prepare(grid, tile, raw, read_tile(gap, window), full_reconstruction)

    def finish_rows(window: Window, values: np.ndarray, flags: np.ndarray) -> None:
        x, y, width, height = window
        part = out[:, y : y + height, x : x + width]
        np.copyto(part, values, where=(flags & PREDICT).astype(bool))
        np.copyto(part, np.nan, where=flags == GAP)

    run_tiles(
        runner,
        grid,
        read,
        finish_rows,
        batch_size=runner.batch_size(batch_size, log),
        progress=progress,
        cancelled=cancelled,
        log=log,
    )
    return out
