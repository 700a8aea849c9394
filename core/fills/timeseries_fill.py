"""Fill every gap of a time series stack (one band per date): linear interpolation in time, the
Whittaker smoother, or an STPConv-style ONNX model (dates on the channel axis, one gap mask band
per date).

The stack is processed in spatial windows; a model window is read with its context margin
(reflection at the image border) and cut into windows of the model's dates when the series is
longer, blended with triangular weights in time. Observations are copied exactly: only gaps
change. The output keeps the grid, data type, no-data value and band descriptions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from osgeo import gdal

from ..errors import GapfillError
from ..progress import CancelledFn, ProgressFn, check_cancelled, never_cancelled, no_progress
from ..raster.access import (
    Grid,
    band_descriptions,
    crop,
    expand_window,
    iter_windows,
    nodata_value,
    numpy_dtype,
    open_raster,
    read_bands,
)
from ..raster.dates import parse_date
from ..raster.fill_engine import FillReport
from ..raster.output import GeoTiffWriter, atomic_path, cast_to
from ..raster.value_range import check_same_scale, sample_spread
from .timeseries_baselines import temporal_linear
from .whittaker import whittaker_fill

Method = Literal["linear", "whittaker", "model"]
METHODS: tuple[str, ...] = ("linear", "whittaker", "model")


def regression_scores(prediction: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """MAE, RMSE and R² (1 − SSE/SST) of `prediction` against `reference` (flat arrays)."""
    prediction = np.asarray(prediction, np.float64).ravel()
    reference = np.asarray(reference, np.float64).ravel()
    if prediction.size == 0:
        raise GapfillError("No pixel to score: the evaluation mask is empty.")
    error = prediction - reference
    total = float(((reference - reference.mean()) ** 2).sum())
    return {
        "mae": float(np.abs(error).mean()),
        "rmse": float(np.sqrt((error**2).mean())),
        "r2": float(1 - (error**2).sum() / total) if total > 0 else float("nan"),
        "pixels": int(prediction.size),
    }


def _moment(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.strip().replace("Z", "+00:00")).replace(tzinfo=None)
    except ValueError:
        day = parse_date(text)
        return None if day is None else datetime(day.year, day.month, day.day)


def band_times(dataset: gdal.Dataset) -> np.ndarray | None:
    """Days since the first date (fractional when descriptions carry a time, e.g.
    2015-07-11T10:00:08) when every band description holds a date and they increase strictly;
    None otherwise (the bands are then taken as equally spaced)."""
    texts = band_descriptions(dataset)
    found = [_moment(text or "") for text in texts]
    if len(found) < 2 or any(moment is None for moment in found):
        return None
    days = np.array(
        [(moment - found[0]).total_seconds() / 86400 for moment in found],  # type: ignore[operator]
        dtype=np.float64,
    )
    steps = np.diff(days)
    if np.any(steps <= 0):
        band = int(np.argmax(steps <= 0)) + 2
        raise GapfillError(
            f"The band dates of the time series do not increase: band {band} is "
            f"'{texts[band - 1]}', after '{texts[band - 2]}'. Order the bands by date (each "
            "date once), or turn off the use of band dates (equal spacing)."
        )
    return days


def read_validity(dataset: gdal.Dataset, window: tuple[int, int, int, int]) -> np.ndarray:
    """(bands, h, w) True where each band has data (its own mask and not NaN)."""
    x, y, w, h = window
    planes = []
    for index in range(1, dataset.RasterCount + 1):
        band = dataset.GetRasterBand(index)
        valid = np.ones((h, w), bool)
        if band.GetMaskFlags() != gdal.GMF_ALL_VALID:
            valid = band.GetMaskBand().ReadAsArray(x, y, w, h) > 0
        planes.append(valid)
    return np.stack(planes)


def model_fill(
    session: Any,
    card: Any,
    values: np.ndarray,
    valid: np.ndarray,
) -> np.ndarray:
    """Run an STPConv-style model on a (T, h, w) window (h, w multiples of its size multiple):
    windows of the model's dates, stepping by half a window, blended with triangular weights;
    a series shorter than the model is padded with gap dates. Returns raw values (T, h, w)."""
    series_input = card.input_for("time_series")
    steps = len(series_input.bands)
    offset, scale = series_input.scaling[0].offset, series_input.scaling[0].scale
    out_offset, out_scale = card.output.scaling[0].offset, card.output.scaling[0].scale
    total = values.shape[0]
    length = max(total, steps)
    padded = np.zeros((length, *values.shape[1:]), np.float32)
    gaps = np.ones_like(padded)
    padded[:total] = np.where(valid, (values - offset) * scale, 0.0)
    gaps[:total] = ~valid
    starts = list(range(0, length - steps + 1, max(1, steps // 2)))
    if starts[-1] != length - steps:
        starts.append(length - steps)
    ramp = np.minimum(np.arange(1, steps + 1), np.arange(steps, 0, -1)).astype(np.float64)
    result = np.zeros((length, *values.shape[1:]))
    weights = np.zeros((length, 1, 1))
    names = {item.role: item.name for item in card.inputs}
    for start in starts:
        feed = {
            names["time_series"]: padded[np.newaxis, start : start + steps],
            names["gap_mask"]: gaps[np.newaxis, start : start + steps],
        }
        out = session.run([card.output.name], feed)[0][0].astype(np.float64)
        result[start : start + steps] += out * ramp[:, None, None]
        weights[start : start + steps] += ramp[:, None, None]
    return (result / weights)[:total] / out_scale + out_offset


def _padded(array: np.ndarray, inner, multiple: int, margin: int, constant: float | None):
    """Reflect-pad (…, h, w) so that the core window sits `margin` inside and sizes are multiples.
    Returns the padded array and the core's position in it."""
    x, y, w, h = inner
    height, width = array.shape[-2:]
    top, left = max(0, margin - y), max(0, margin - x)
    bottom = max(0, margin - (height - y - h))
    right = max(0, margin - (width - x - w))
    full_h, full_w = height + top + bottom, width + left + right
    bottom += -full_h % multiple
    right += -full_w % multiple
    pad = [(0, 0)] * (array.ndim - 2) + [(top, bottom), (left, right)]
    if constant is None:
        mode = "reflect" if min(height, width) > max(top, bottom, left, right) else "edge"
        return np.pad(array, pad, mode=mode), (x + left, y + top, w, h)
    return np.pad(array, pad, constant_values=constant), (x + left, y + top, w, h)


def stack_rasters(
    paths: Sequence[str | Path], log: Callable[[str], None] = lambda _message: None
) -> tuple[str, list[str]]:
    """A VRT stack in /vsimem (caller unlinks it and the returned temporaries) of band 1 of each
    single-date raster, on the first raster's grid: rasters on another grid are warped to it
    (bilinear, outside = no-data; see `alignment.check_overlap`). Bands are sorted by date when
    every raster has one (`dates.raster_date`); descriptions are the dates (ISO), else the names.
    Returns the VRT path and all /vsimem paths to unlink."""
    from uuid import uuid4

    from ..raster.alignment import check_overlap
    from ..raster.dates import raster_date

    if len(paths) < 2:
        raise GapfillError(f"A time series needs at least two rasters; {len(paths)} given.")
    entries, spreads = [], []
    for path in paths:
        dataset = open_raster(path, "time series date")
        # one variable on one scale: a date in reflectance beside DN would be a jump
        spreads.append(sample_spread(dataset, [1]))
        check_same_scale(spreads[0], spreads[-1], str(path), "time series date",
                         f"first date '{Path(paths[0]).name}'")
        if dataset.RasterCount > 1 and not entries:
            log(f"'{Path(path).name}' has {dataset.RasterCount} bands: the time series takes "
                "band 1 of each raster (one variable per date, e.g. NDVI). For another band, "
                "give one-band rasters, or a stack whose bands are the dates.")
        entries.append((str(path), raster_date(str(path), dataset), Grid.of(dataset)))
        dataset = None
    if all(day is not None for _, day, _ in entries):
        entries.sort(key=lambda entry: entry[1])
    target = entries[0][2]
    tag = uuid4().hex
    sources, temporaries = [], []
    for index, (path, _day, grid) in enumerate(entries):
        if grid.same_as(target):
            sources.append(path)
            continue
        if not grid.georeferenced or not target.georeferenced:
            raise GapfillError(
                f"The raster '{path}' is not on the grid of '{entries[0][0]}' and they are not "
                "both georeferenced, so it cannot be aligned."
            )
        check_overlap(grid, target, path, "time series date")
        source = gdal.Open(path)
        nodata = source.GetRasterBand(1).GetNoDataValue()
        floating = source.GetRasterBand(1).DataType in (gdal.GDT_Float32, gdal.GDT_Float64)
        if nodata is None:
            nodata = float("nan") if floating else 0.0
        aligned = f"/vsimem/gapfill-series-{tag}-{index}.tif"
        warped = gdal.Warp(aligned, source, options=gdal.WarpOptions(
            format="GTiff", outputBounds=target.bounds, width=target.width,
            height=target.height, dstSRS=target.projection, resampleAlg="bilinear",
            srcNodata=source.GetRasterBand(1).GetNoDataValue(),
            dstNodata=nodata, multithread=False))
        if warped is None:
            raise GapfillError(
                f"The raster '{path}' could not be aligned: {gdal.GetLastErrorMsg()}"
            )
        warped = None
        log(f"'{Path(path).name}' is on another grid: warped to the first raster's grid.")
        sources.append(aligned)
        temporaries.append(aligned)
    vrt_path = f"/vsimem/gapfill-series-{tag}.vrt"
    vrt = gdal.BuildVRT(vrt_path, sources, options=gdal.BuildVRTOptions(
        separate=True, bandList=[1]))
    if vrt is None:
        raise GapfillError(f"The rasters could not be stacked: {gdal.GetLastErrorMsg()}")
    descriptions = [
        day.isoformat() if day is not None else Path(path).stem for path, day, _ in entries
    ]
    for index, text in enumerate(descriptions):
        vrt.GetRasterBand(index + 1).SetDescription(text)
    vrt = None
    temporaries.append(vrt_path)
    return vrt_path, temporaries


def fill_time_series(
    input_path: str | Path | Sequence[str | Path],
    output_path: str | Path,
    *,
    method: Method = "linear",
    mask_path: str | Path | None = None,
    lam: float = 10.0,
    use_dates: bool = True,
    model_path: str | Path | None = None,
    device: str = "auto",
    block: int = 256,
    log: Callable[[str], None] = lambda _message: None,
    progress: ProgressFn = no_progress,
    cancelled: CancelledFn = never_cancelled,
) -> FillReport:
    """Fill the gaps of a stack whose bands are dates (or of a list of single-date rasters,
    stacked by `stack_rasters`). Gaps: no-data (and NaN) of each band,
    plus the pixels ≠ 0 of `mask_path` (one band per date, or one band for all dates).
    With `use_dates`, linear interpolation and the Whittaker smoother use the dates of the band
    descriptions when every band has one and they increase (else equal spacing)."""
    if method not in METHODS:
        raise GapfillError(f"Unknown method '{method}': use one of {', '.join(METHODS)}.")
    if not isinstance(input_path, (str, Path)):
        stack, temporaries = stack_rasters(list(input_path), log)
        try:
            return fill_time_series(
                stack, output_path, method=method, mask_path=mask_path, lam=lam,
                use_dates=use_dates, model_path=model_path, device=device, block=block, log=log,
                progress=progress, cancelled=cancelled,
            )
        finally:
            for temporary in temporaries:
                gdal.Unlink(temporary)
    dataset = open_raster(input_path, "time series")
    grid = Grid.of(dataset)
    dates = dataset.RasterCount
    if dates < 2:
        raise GapfillError(
            f"The time series '{input_path}' has {dates} band; a time series has one band per "
            "date, at least two."
        )
    mask = None
    if mask_path:
        mask = open_raster(mask_path, "gap mask stack")
        if (mask.RasterXSize, mask.RasterYSize) != (grid.width, grid.height) or (
            mask.RasterCount not in (1, dates)
        ):
            raise GapfillError(
                f"The gap mask stack must have the series' size ({grid.width}×{grid.height}) "
                f"and one band per date ({dates}) or a single band; it is "
                f"{mask.RasterXSize}×{mask.RasterYSize} with {mask.RasterCount} bands."
            )
    session = card = None
    margin, multiple = 0, 1
    if model_path and method != "model":  # a model given with another method is not used
        log(f"The model '{model_path}' is not used: the method is {method}. Choose the model "
            "method to fill with it.")
    if method == "model":
        if not model_path:
            from ..learned.bundled_models import choose_time_series_model

            model_path = choose_time_series_model(dates).path
            log(f"No model given: using the bundled time-series model {model_path.name}.")
        from ..learned.model_card import card_of_session
        from ..learned.onnx_session import create_session

        session = create_session(model_path, device, log=log)  # type: ignore[arg-type]
        card = card_of_session(session, f"'{model_path}'")
        if card.input_for("time_series") is None or card.input_for("gap_mask") is None:
            raise GapfillError(
                f"The model '{model_path}' is not a time-series model: its card has no "
                "'time_series' and 'gap_mask' inputs. Use 'Fill gaps with a model' for it."
            )
        if len(card.input_for("gap_mask").bands) != len(card.input_for("time_series").bands):
            raise GapfillError(f"The model '{model_path}' needs one gap mask band per date.")
        margin, multiple = card.context_margin, card.size_multiple
        block = card.recommended_tile_size - 2 * margin if block <= 0 else block
    times = band_times(dataset) if use_dates and method != "model" else None
    if times is not None:
        log(f"Dates from the band descriptions: {band_descriptions(dataset)[0]} … "
            f"{band_descriptions(dataset)[-1]} ({times[-1]:.0f} days).")
    nodata = nodata_value(dataset)
    dtype = numpy_dtype(dataset)
    report = FillReport(pixels=grid.width * grid.height * dates)
    windows = list(iter_windows(grid.width, grid.height, block))
    with atomic_path(output_path) as temporary:
        writer = GeoTiffWriter(temporary, grid, dates, dtype, nodata, band_descriptions(dataset))
        try:
            for index, window in enumerate(windows):
                check_cancelled(cancelled)
                outer, inner = expand_window(window, margin, grid.width, grid.height)
                raw = read_bands(dataset, outer)
                valid = read_validity(dataset, outer)
                values = raw.astype(np.float64)
                valid &= np.isfinite(values)
                if mask is not None:
                    gap = read_bands(mask, outer) != 0
                    valid &= ~gap
                if method == "linear":
                    filled, exists = temporal_linear(values, valid, times)
                elif method == "whittaker":
                    filled, exists = whittaker_fill(values, valid, lam, times=times)
                else:
                    padded_values, core = _padded(values, inner, multiple, margin, None)
                    padded_valid, _ = _padded(valid, inner, multiple, margin, False)
                    predicted = crop(model_fill(session, card, padded_values, padded_valid), core)
                    filled = crop(np.where(valid, values, 0.0), inner)
                    core_valid = crop(valid, inner)
                    ever = core_valid.any(axis=0, keepdims=True)
                    exists = np.broadcast_to(ever, core_valid.shape)
                    filled = np.where(core_valid, filled, np.where(exists, predicted, np.nan))
                    values, valid = crop(values, inner), core_valid
                    raw, inner = crop(raw, inner), (0, 0, window[2], window[3])
                filled, exists = crop(filled, inner), crop(exists, inner)
                core_raw, core_valid = crop(raw, inner), crop(valid, inner)
                gaps = ~core_valid
                fill_here = gaps & exists & np.isfinite(filled)
                out = np.array(core_raw, copy=True)
                if nodata is not None:
                    out[gaps] = nodata
                elif np.issubdtype(dtype, np.floating):
                    out[gaps] = np.nan
                out[fill_here] = cast_to(filled[fill_here], dtype, nodata)
                writer.write(window, out)
                report.gaps += int(gaps.sum())
                report.filled += int(fill_here.sum())
                report.clear += int(core_valid.sum())
                progress((index + 1) / len(windows))
        finally:
            writer.close()
        if report.clear == 0:  # refused before the output appears
            hint = (
                " The gap mask marks every observed value as a gap: if it uses 1 = valid, "
                "invert it (Gapfill's masks use 1 = gap, 0 = clear)."
                if mask is not None else ""
            )
            raise GapfillError(
                f"The time series '{input_path}' has no observed value left to fill from "
                f"(every pixel of every date is no-data or a gap).{hint}"
            )
    return report
