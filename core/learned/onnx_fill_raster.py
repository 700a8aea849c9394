"""Fill a raster's gaps with an ONNX model, streaming GeoTIFFs through the `onnx_fill` engine.

Every source is aligned on the fly to the target's grid (warped VRT: bilinear for images, nearest
for the gap mask). GDAL reads and writes stay on the calling thread; the network runs on a worker
thread meanwhile. Memory holds the tiles of a batch and about one row of a strip of tiles, not
the image.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from osgeo import gdal

from ..errors import GapfillError
from ..progress import CancelledFn, ProgressFn, never_cancelled, no_progress
from ..raster.access import (
    Grid,
    Window,
    band_descriptions,
    open_raster,
    read_bands,
    read_valid,
)
from ..raster.alignment import align_to_grid, transformed_bounds
from ..raster.fill_engine import (
    FillReport,
    TargetImage,
    mask_coverage_messages,
    open_target,
    read_gaps,
)
from ..raster.output import GeoTiffWriter, atomic_path, cast_to
from ..raster.value_range import sample_spread
from .input_scale import check_output_scale, checked_input
from .model_card import INTERNAL_ROLES, ROLE_LABELS, ROLES, ModelCard, card_of_session
from .onnx_fill import GAP, PREDICT, ModelRunner, TileJob, missing_role_error, run_tiles
from .onnx_session import Device, LogFn, create_session, no_log
from .tiling import Tile, TileGrid, pick, source_window


class StripWriter:
    """Writes a strip's rows, which arrive top to bottom, in whole rows of the output's blocks,
    and has GDAL compress each as it completes: compression then overlaps the network, and no
    block is written (and compressed) twice when the strips' edges fall on block edges."""

    def __init__(self, writer: GeoTiffWriter) -> None:
        self.writer = writer
        self.height = writer.dataset.RasterYSize
        self.block = writer.dataset.GetRasterBand(1).GetBlockSize()[1]
        self.columns = (0, 0)  # (first column, width) of the strip being written
        self.top = 0  # first row of the strip not yet written
        self.pending: list[np.ndarray] = []

    def add(self, window: Window, rows: np.ndarray) -> None:
        """Append the (bands, h, w) `rows` of the image `window`, below those given before
        for the same strip; a new strip starts at the top."""
        x, y, width, _ = window
        if (x, width) != self.columns:
            self.columns, self.top, self.pending = (x, width), 0, []
        self.pending.append(rows)
        end = self.top + sum(part.shape[1] for part in self.pending)
        stop = end if end == self.height else end // self.block * self.block
        if stop <= self.top:
            return
        held = np.concatenate(self.pending, axis=1) if len(self.pending) > 1 else rows
        count = stop - self.top
        self.writer.write((x, self.top, width, count), held[:, :count])
        self.writer.dataset.FlushCache()
        self.pending = [held[:, count:]] if stop < end else []
        self.top = stop


def parse_band_mapping(text: str) -> dict[str, list[int]]:
    """'sar: 1, 2; target: 2 3 4' → {'sar': [1, 2], 'target': [2, 3, 4]} (1-based bands)."""
    mapping: dict[str, list[int]] = {}
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        role, _, bands = part.partition(":")
        try:
            mapping[role.strip()] = [int(b) for b in re.split(r"[,\s]+", bands.strip()) if b]
        except ValueError as error:
            raise GapfillError(
                f"Band mapping '{part}' is not 'role: band, band, …' (1-based band numbers), "
                "e.g. 'sar: 1, 2; target: 2, 3, 4, 8'."
            ) from error
    return mapping


def strip_blocks(grid: TileGrid) -> tuple[int, int]:
    """The output's block width and height: the tile columns' and rows' steps where GeoTIFF
    allows (multiples of 16 px), else GDAL's usual 256 px. Strip edges then fall on block
    edges (no block compressed twice) and each row of tiles releases whole rows of blocks
    (no rows held back and copied)."""

    def size(step: int) -> int:
        return step if step and step % 16 == 0 and step <= 4096 else 256

    return size(grid.column_step), size(grid.row_step)


def check_pixel_overlap(grid: Grid, target: Grid, path: str, role: str) -> None:
    """Refuse a source (on its own `grid`) that covers less than one target pixel in either
    direction: alignment accepts it, since the extents meet, but it could not fill anything."""
    if grid.same_as(target) or not (grid.georeferenced and target.georeferenced):
        return
    xmin, ymin, xmax, ymax = transformed_bounds(grid, target.projection)
    txmin, tymin, txmax, tymax = target.bounds
    columns = (min(xmax, txmax) - max(xmin, txmin)) / abs(target.geotransform[1])
    rows = (min(ymax, tymax) - max(ymin, tymin)) / abs(target.geotransform[5])
    if columns < 1 or rows < 1:
        raise GapfillError(
            f"The {role} '{path}' overlaps the target image by {max(columns, 0):.2f} × "
            f"{max(rows, 0):.2f} pixels: a zero-size overlap, with no pixel to fill from. "
            f"Choose a {role} that covers the same place."
        )


def resolve_bands(
    path: str,
    descriptions: list[str],
    wanted: tuple[str, ...],
    mapping: list[int] | None,
    what: str,
    log: LogFn,
) -> list[int]:
    """The 1-based bands of a raster with band `descriptions` that feed `wanted` (the card's
    band names), in order.

    An explicit mapping wins; else band descriptions naming the card's bands; else, when the
    counts agree, the bands in order (logged).
    """
    count = len(descriptions)
    names = ", ".join(wanted)
    if mapping is not None:
        if len(mapping) != len(wanted) or not all(1 <= band <= count for band in mapping):
            raise GapfillError(
                f"The band mapping {list(mapping)} for the {what} '{path}' must list "
                f"{len(wanted)} band numbers between 1 and {count}, one for each of the model's "
                f"bands {names}."
            )
        return list(mapping)
    folded = [text.strip().casefold() for text in descriptions]
    if all(name.casefold() in folded for name in wanted):
        return [folded.index(name.casefold()) + 1 for name in wanted]
    if count == len(wanted):
        log(
            f"The band descriptions of the {what} '{path}' do not name the model's bands "
            f"({names}); its {count} bands are taken in that order."
        )
        return list(range(1, count + 1))
    raise GapfillError(
        f"The {what} '{path}' has {count} bands but the model takes {len(wanted)} ({names}), "
        "and its band descriptions do not name them. Give an image with these bands, or a band "
        "mapping for this role."
    )


class _Source:
    """An auxiliary source on the target grid and the bands that feed the network."""

    def __init__(self, dataset: gdal.Dataset, bands: list[int]) -> None:
        self.dataset = dataset
        self.bands = bands

    def read(self, window: Window) -> np.ndarray:
        """(bands, h, w) float32, NaN where the source has no data."""
        values = read_bands(self.dataset, window, self.bands).astype(np.float32, copy=False)
        np.copyto(values, np.nan, where=~read_valid(self.dataset, window))
        return values


def _open_sources(
    runner: ModelRunner,
    target: TargetImage,
    role_paths: Mapping[str, str],
    band_mapping: Mapping[str, list[int]],
    log: LogFn,
) -> dict[str, _Source]:
    card = runner.card
    for role in role_paths:
        if role not in ROLES or role in INTERNAL_ROLES:
            choices = ", ".join(role for role in ROLES if role not in INTERNAL_ROLES)
            raise GapfillError(
                f"'{role}' is not a role for an auxiliary layer; use one of {choices} (the "
                "target and its gap mask are given on their own)."
            )
        if card.input_for(role) is None:
            label = ROLE_LABELS[role]
            log(f"Warning: the model does not use a {label}; '{role_paths[role]}' is ignored.")
    sources = {}
    for item in card.auxiliary_inputs:
        path = role_paths.get(item.role)
        if not path:
            raise missing_role_error(item)
        label = ROLE_LABELS[item.role]
        dataset = align_to_grid(path, target.grid, "bilinear", label)
        original = open_raster(path, label)  # band descriptions do not survive warping
        check_pixel_overlap(Grid.of(original), target.grid, path, label)
        if not Grid.of(original).same_as(target.grid):
            log(f"The {label} '{path}' is aligned to the target's grid on the fly (bilinear).")
        bands = resolve_bands(
            path, band_descriptions(original), item.bands, band_mapping.get(item.role), label, log
        )
        sources[item.role] = _Source(dataset, bands)
    return sources


def _card_for_values(
    card: ModelCard,
    target: TargetImage,
    target_bands: list[int],
    sources: Mapping[str, _Source],
    role_paths: Mapping[str, str],
    log: LogFn,
) -> ModelCard:
    """The card checked against the values of its inputs (`input_scale`): refused when a layer
    is on another scale, with linear SAR converted to dB where the card wants dB."""
    check_output_scale(card, "the model")
    inputs = []
    for item in card.inputs:
        if item.role == "target":
            spread = sample_spread(target.dataset, target_bands)
            item = checked_input(item, spread, target.path, "target image", log)
        elif item.role in sources:
            path, label = role_paths[item.role], ROLE_LABELS[item.role]
            spread = sample_spread(open_raster(path, label), sources[item.role].bands)
            item = checked_input(item, spread, path, label, log)
        inputs.append(item)
    return dataclasses.replace(card, inputs=tuple(inputs))


def _target_bands(
    runner: ModelRunner, target: TargetImage, mapping: list[int] | None, log: LogFn
) -> list[int]:
    """The target bands matching the card's output bands; every target band must be predicted."""
    wanted = runner.card.output.bands
    if target.bands != len(wanted):
        raise GapfillError(
            f"The target '{target.path}' has {target.bands} bands but the model fills "
            f"{len(wanted)} ({', '.join(wanted)}). Give a target with exactly these bands "
            "(e.g. select them with gdal_translate -b)."
        )
    bands = resolve_bands(target.path, target.descriptions, wanted, mapping, "target image", log)
    if len(set(bands)) != len(bands):
        raise GapfillError(
            f"The band mapping {bands} of the target '{target.path}' uses a band twice; each "
            "target band must receive one of the model's output bands."
        )
    return bands


def fill_raster_with_model(
    model_path: str | Path,
    target_path: str,
    output_path: str | Path,
    role_paths: Mapping[str, str],
    gap_mask_path: str | None = None,
    band_mapping: Mapping[str, list[int]] | None = None,
    tile_size: int | None = None,
    margin: int | None = None,
    batch_size: int = 0,
    device: Device = "auto",
    full_reconstruction: bool = False,
    progress: ProgressFn = no_progress,
    cancelled: CancelledFn = never_cancelled,
    log: LogFn = no_log,
) -> FillReport:
    """Fill the gaps of `target_path` into the GeoTIFF `output_path` with the model's card.

    `role_paths`: role (sar, optical_before, optical_after, dem, time_series) → raster;
    `gap_mask_path`: 1 = gap (default: the target's no-data); `band_mapping`: role (or "target")
    → 1-based bands matching the card's band order, for layers whose band descriptions do not
    name the card's bands. Clear pixels are copied bit-exactly, gap pixels no source covers
    become no-data; the output has the target's grid, CRS, type and band descriptions and
    appears only when complete.
    """
    mapping = dict(band_mapping or {})
    unknown = sorted(set(mapping) - set(ROLES))
    if unknown:
        raise GapfillError(f"The band mapping names unknown roles: {', '.join(unknown)}.")
    session = create_session(model_path, device, log=log)
    source = f"'{model_path}'"
    runner = ModelRunner(session, card_of_session(session, source), source)
    target = open_target(target_path, gap_mask_path)
    if gap_mask_path:
        mask_grid = Grid.of(open_raster(gap_mask_path, "gap mask"))
        check_pixel_overlap(mask_grid, target.grid, gap_mask_path, "gap mask")
    target_bands = _target_bands(runner, target, mapping.get("target"), log)
    to_target_order = np.argsort(target_bands)
    reordered = not np.array_equal(to_target_order, np.arange(len(target_bands)))
    band_rows = [band - 1 for band in target_bands]
    in_order = band_rows == list(range(target.bands))
    sources = _open_sources(runner, target, role_paths, mapping, log)
    runner.card = _card_for_values(runner.card, target, target_bands, sources, role_paths, log)
    grid = runner.plan(target.grid.width, target.grid.height, tile_size, margin, log)
    width, height = grid.width, grid.height
    report = FillReport(messages=mask_coverage_messages(target))

    def read(tile: Tile) -> TileJob:
        inside, rows_columns = source_window(grid.read_window(tile), width, height)
        every_band = read_bands(target.dataset, inside)  # read once: values and validity
        known, gap = read_gaps(target, inside, every_band)
        values = (every_band if in_order else every_band[band_rows]).astype(np.float32)
        if not known.all():
            np.copyto(values, np.nan, where=~known)
        raw = {"target": pick(values, rows_columns)}
        for role, aux in sources.items():
            raw[role] = pick(aux.read(inside), rows_columns)
        return runner.prepare(grid, tile, raw, pick(gap, rows_columns), full_reconstruction)

    with atomic_path(output_path) as temporary:
        writer = GeoTiffWriter(
            temporary,
            target.grid,
            target.bands,
            target.dtype,
            target.nodata,
            target.descriptions,
            block=strip_blocks(grid),
        )
        rows = StripWriter(writer)

        def finish_rows(window: Window, values: np.ndarray, flags: np.ndarray) -> None:
            out = read_bands(target.dataset, window)
            predicted = (flags & PREDICT).astype(bool)
            if reordered:  # a copy of the rows: only when the card's band order differs
                values = values[to_target_order]
            np.copyto(values, 0, where=~predicted)  # pixels no tile predicted are NaN
            filled = cast_to(values, target.dtype, target.nodata, in_place=True)
            np.copyto(out, filled, where=predicted)
            unfilled = flags == GAP
            if unfilled.any():
                np.copyto(out, cast_to(np.array(target.nodata), target.dtype), where=unfilled)
            rows.add(window, out)
            report.pixels += flags.size
            report.gaps += int(np.count_nonzero(flags & GAP))
            report.filled += int(np.count_nonzero(flags == GAP | PREDICT))

        try:
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
        finally:
            writer.close()
    report.clear = report.pixels - report.gaps
    if report.gaps == 0 and not full_reconstruction:
        report.messages.append("The target has no gap pixels: the output is an unchanged copy.")
    if report.unfilled:
        report.messages.append(
            f"{report.unfilled} gap pixels have no data in any source and are no-data."
        )
    return report
