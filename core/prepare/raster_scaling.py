"""Scale a raster into network values (float32) and back, with the model card's band scaling.

A scaling comes from a statistics file (min–max or percentile clip to [0, 1], or mean/std
standardisation), a named preset, or a model card's input role (what that model sees). The
scaled raster records the scaling, the source bands and the source's data type and no-data in
its metadata (`SCALING_KEY`), so that `unscale_raster` restores the source exactly: integer
values round back to themselves (float32 keeps 24 bits), floats to float32 precision. Values
clipped by the scaling come back as the clip bound. No-data is NaN in the scaled raster and the
source's no-data value in the unscaled one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from osgeo import gdal

from ..errors import GapfillError
from ..learned.model_card import ROLE_LABELS, BandScaling, ModelCard, read_card
from ..learned.onnx_session import LogFn, no_log
from ..learned.scaling import scale_bands, unscale_bands
from ..progress import CancelledFn, ProgressFn, never_cancelled, no_progress
from ..raster.access import (
    Grid,
    Window,
    band_descriptions,
    iter_windows,
    nodata_value,
    numpy_dtype,
    open_raster,
    read_bands,
    window_count,
)
from ..raster.fill_engine import default_nodata
from ..raster.output import GeoTiffWriter, atomic_path, cast_to
from ..raster.pipeline import run_pipeline
from ..raster.validity import BandMasks
from .patch_dataset import scaling_from_list, scaling_to_list
from .raster_statistics import BandStatistics, RasterStatistics, percent_key, read_statistics

SCALING_KEY = "GAPFILL_SCALING"  # GeoTIFF metadata item holding the scaling (JSON)
SCALING_FORMAT = "gapfill-scaling"
SCALING_VERSION = 1

StatisticsMethod = Literal["minmax", "percentile", "standardise"]
STATISTICS_METHODS: tuple[StatisticsMethod, ...] = ("minmax", "percentile", "standardise")

S2_DN = BandScaling(scale=1e-4)  # Sentinel-2 L1C/L2A digital numbers → reflectance
S1_CLIP = {"VV": -25.0, "VH": -32.5}  # lower dB bound of each polarisation; upper bound 0 dB
PRESETS = {
    "sentinel2": "Sentinel-2: DN / 10000 (reflectance)",
    "sentinel1_linear": "Sentinel-1 linear backscatter → dB, clipped (VV −25…0, VH −32.5…0) → 0…1",
    "sentinel1_db": "Sentinel-1 in dB, clipped (VV −25…0, VH −32.5…0) → 0…1",
}


@dataclass(frozen=True)
class RasterScaling:
    """What a scaled raster holds: source bands (1-based, in output order), their names and
    scalings, the source's data type and no-data, and how the scaling was chosen."""

    bands: tuple[int, ...]
    names: tuple[str, ...]
    scaling: tuple[BandScaling, ...]
    source_dtype: str
    source_nodata: float | None
    method: str

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": SCALING_FORMAT,
                "version": SCALING_VERSION,
                "method": self.method,
                "bands": list(self.bands),
                "names": list(self.names),
                "scaling": scaling_to_list(self.scaling),
                "source_dtype": self.source_dtype,
                "source_nodata": self.source_nodata,
            },
            allow_nan=False,
        )


def raster_scaling_of(dataset: gdal.Dataset) -> RasterScaling | None:
    """The scaling a scaled raster records, or None when it was not written by `scale_raster`."""
    text = dataset.GetMetadataItem(SCALING_KEY)
    if not text:
        return None
    try:
        document = json.loads(text)
        if document.get("format") != SCALING_FORMAT or document.get("version") != SCALING_VERSION:
            raise ValueError("unknown format or version")
        return RasterScaling(
            bands=tuple(int(b) for b in document["bands"]),
            names=tuple(str(n) for n in document["names"]),
            scaling=scaling_from_list(document["scaling"]),
            source_dtype=np.dtype(document["source_dtype"]).name,
            source_nodata=document["source_nodata"],
            method=str(document["method"]),
        )
    except (ValueError, KeyError, TypeError) as error:
        raise GapfillError(
            f"The scaling recorded in '{dataset.GetDescription()}' ({SCALING_KEY}) is unreadable "
            f"({error}). Scale the source again with 'Scale raster'."
        ) from error


# ---------------------------------------------------------------- where a scaling comes from


def _band_statistics(band: BandStatistics) -> BandStatistics:
    if not band.count:
        raise GapfillError(
            f"Band {band.band} ({band.name}) has no valid pixel in the statistics, so it cannot "
            "be scaled. Compute the statistics without that gap mask, or on another image."
        )
    return band


def _unit_range(low: float, high: float, band: BandStatistics, what: str) -> BandScaling:
    if not high > low:
        raise GapfillError(
            f"Band {band.band} ({band.name}) is constant between its {what} ({low:g}), so it "
            "cannot be stretched to [0, 1]; use mean/std standardisation or another method."
        )
    return BandScaling(offset=low, scale=1.0 / (high - low), clip_min=low, clip_max=high)


def scaling_from_statistics(
    statistics: RasterStatistics,
    method: StatisticsMethod,
    low: float = 2.0,
    high: float = 98.0,
) -> tuple[BandScaling, ...]:
    """One scaling per band: min–max or [low, high] percentiles → [0, 1], or (v − mean) / std."""
    if method not in STATISTICS_METHODS:
        raise GapfillError(
            f"Unknown statistics scaling '{method}'; use one of {', '.join(STATISTICS_METHODS)}."
        )
    result = []
    for band in map(_band_statistics, statistics.bands):
        if method == "minmax":
            result.append(_unit_range(band.minimum, band.maximum, band, "minimum and maximum"))
        elif method == "standardise":
            if not band.std:
                raise GapfillError(
                    f"Band {band.band} ({band.name}) has a standard deviation of 0, so it "
                    "cannot be standardised; use min–max scaling or another image."
                )
            result.append(BandScaling(offset=band.mean, scale=1.0 / band.std))
        else:
            missing = [p for p in (low, high) if p not in band.percentiles]
            if missing:
                have = ", ".join(percent_key(p) for p in band.percentiles) or "none"
                raise GapfillError(
                    f"The statistics hold no percentile {', '.join(map(percent_key, missing))} "
                    f"(they hold {have}). Compute the statistics with these percentiles, or "
                    "choose percentiles they hold."
                )
            bounds = (band.percentiles[low], band.percentiles[high])
            result.append(_unit_range(*bounds, band, f"percentiles {low:g} and {high:g}"))
    return tuple(result)


def polarisation(description: str) -> str | None:
    """'VV', 'VH' when a band description names one (e.g. 'VV', 'sigma0_vh_db'), else None."""
    found = {p for p in S1_CLIP if re.search(rf"(?<![a-z]){p}(?![a-z])", description, re.I)}
    return found.pop() if len(found) == 1 else None


def scaling_from_preset(preset: str, descriptions: Sequence[str]) -> tuple[BandScaling, ...]:
    """A named preset's scaling for a raster with these band descriptions."""
    if preset not in PRESETS:
        listing = "; ".join(f"'{name}' ({label})" for name, label in PRESETS.items())
        raise GapfillError(f"Unknown scaling preset '{preset}'. The presets are: {listing}.")
    if preset == "sentinel2":
        return (S2_DN,) * len(descriptions)
    names = [polarisation(d) for d in descriptions]
    if None in names:
        if len(descriptions) != 2:
            raise GapfillError(
                f"The Sentinel-1 preset needs the bands VV and VH; the raster has "
                f"{len(descriptions)} bands whose descriptions do not name them "
                f"({', '.join(d or '(none)' for d in descriptions)}). Give a 2-band raster "
                "(VV, VH in that order) or name the bands 'VV' and 'VH'."
            )
        names = ["VV", "VH"]  # SEN12MS-CR order
    db = preset == "sentinel1_linear"
    return tuple(
        BandScaling(
            offset=S1_CLIP[name], scale=-1.0 / S1_CLIP[name], db=db,
            clip_min=S1_CLIP[name], clip_max=0.0,
        )
        for name in names
    )


def scaling_from_card(
    card: ModelCard, role: str, path: str, descriptions: list[str], log: LogFn = no_log
) -> tuple[list[int], tuple[str, ...], tuple[BandScaling, ...]]:
    """The bands of the raster that feed the card's `role` input, their names and scalings."""
    from ..learned.onnx_fill_raster import resolve_bands

    item = card.input_for(role)
    if item is None:
        roles = ", ".join(f"{i.role} ({ROLE_LABELS.get(i.role, i.role)})" for i in card.inputs)
        raise GapfillError(
            f"The model '{card.name}' has no input with the role '{role}'; its inputs are: "
            f"{roles}."
        )
    label = ROLE_LABELS.get(role, role)
    bands = resolve_bands(path, descriptions, item.bands, None, label, log)
    return bands, item.bands, item.scaling


@dataclass(frozen=True)
class ScalingChoice:
    """The bands to scale (None: all, named as in the source) and their scalings."""

    scaling: tuple[BandScaling, ...]
    method: str
    bands: list[int] | None = None
    names: tuple[str, ...] | None = None


def choose_scaling(
    path: str,
    *,
    statistics: str | None = None,
    method: StatisticsMethod = "percentile",
    low: float = 2.0,
    high: float = 98.0,
    preset: str | None = None,
    model: str | None = None,
    role: str = "target",
    log: LogFn = no_log,
) -> ScalingChoice:
    """The scaling of `path` from exactly one of a statistics file, a preset or a model card."""
    given = [what for what, value in (("a statistics file", statistics), ("a preset", preset),
                                      ("a model", model)) if value]
    if len(given) != 1:
        raise GapfillError(
            "Give exactly one source of scaling: a statistics file, a preset or a model "
            f"({'given: ' + ' and '.join(given) if given else 'none was given'})."
        )
    descriptions = band_descriptions(open_raster(path, "raster"))
    if statistics:
        stats = read_statistics(statistics)
        if len(stats.bands) != len(descriptions):
            raise GapfillError(
                f"The statistics '{statistics}' describe {len(stats.bands)} bands but '{path}' "
                f"has {len(descriptions)}. Compute the statistics of this raster."
            )
        scaling = scaling_from_statistics(stats, method, low, high)
        return ScalingChoice(scaling, f"statistics {method} ({statistics})")
    if preset:
        return ScalingChoice(scaling_from_preset(preset, descriptions), f"preset {preset}")
    card = read_card(model)
    bands, names, scaling = scaling_from_card(card, role, path, descriptions, log)
    return ScalingChoice(scaling, f"model '{card.name}', role {role}", bands, names)


# ---------------------------------------------------------------- scaling rasters


def _transform_raster(
    source: str,
    output: str | Path,
    bands: list[int],
    names: Sequence[str],
    transform: Any,
    dtype: np.dtype,
    nodata: float,
    metadata: str | None,
    block_size: int,
    progress: ProgressFn,
    cancelled: CancelledFn,
) -> Path:
    """Read `bands` of `source` block by block, apply `transform(values, valid)`, write."""
    dataset = open_raster(source, "raster")
    grid = Grid.of(dataset)
    masks = BandMasks(dataset)

    def read(window: Window) -> tuple[np.ndarray, np.ndarray]:
        values = read_bands(dataset, window)
        valid = masks.valid(window, values)
        index = [band - 1 for band in bands]
        return values[index], valid[index]

    with atomic_path(output) as temporary:
        writer = GeoTiffWriter(temporary, grid, len(bands), dtype, nodata, list(names))
        if metadata:
            writer.dataset.SetMetadataItem(SCALING_KEY, metadata)
        try:
            run_pipeline(
                iter_windows(grid.width, grid.height, block_size),
                window_count(grid.width, grid.height, block_size),
                read,
                lambda block: transform(*block),
                writer.write,
                progress=progress,
                cancelled=cancelled,
            )
        finally:
            writer.close()
    return Path(output)


def scale_raster(
    source: str,
    output: str | Path,
    scaling: Sequence[BandScaling],
    *,
    bands: Sequence[int] | None = None,
    names: Sequence[str] | None = None,
    method: str = "",
    block_size: int = 512,
    progress: ProgressFn = no_progress,
    cancelled: CancelledFn = never_cancelled,
) -> RasterScaling:
    """Write `bands` (1-based, default all) of `source` scaled into float32, NaN = no data."""
    dataset = open_raster(source, "raster")
    descriptions = band_descriptions(dataset)
    chosen = list(bands or range(1, len(descriptions) + 1))
    if len(scaling) != len(chosen):
        raise GapfillError(
            f"{len(scaling)} band scalings were given for {len(chosen)} bands of '{source}'."
        )
    recorded = RasterScaling(
        bands=tuple(chosen),
        names=tuple(names or (descriptions[b - 1] or f"B{b}" for b in chosen)),
        scaling=tuple(scaling),
        source_dtype=numpy_dtype(dataset).name,
        source_nodata=nodata_value(dataset),
        method=method,
    )

    def scale(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
        scaled = scale_bands(values, recorded.scaling)
        scaled[~valid] = np.nan
        return scaled

    _transform_raster(
        source, output, chosen, recorded.names, scale, np.dtype(np.float32), float("nan"),
        recorded.to_json(), block_size, progress, cancelled,
    )
    return recorded


def unscale_raster(
    source: str,
    output: str | Path,
    *,
    block_size: int = 512,
    progress: ProgressFn = no_progress,
    cancelled: CancelledFn = never_cancelled,
) -> RasterScaling:
    """Invert the scaling a raster written by `scale_raster` records; NaN → the source no-data."""
    recorded = raster_scaling_of(open_raster(source, "scaled raster"))
    if recorded is None:
        raise GapfillError(
            f"'{source}' records no scaling ({SCALING_KEY} metadata): it was not written by "
            "'Scale raster', so there is nothing to invert. Give the output of 'Scale raster'."
        )
    dtype = np.dtype(recorded.source_dtype)
    nodata = recorded.source_nodata
    if nodata is None:
        nodata = default_nodata(dtype)

    def unscale(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
        raw = unscale_bands(values, recorded.scaling)
        missing = ~valid | np.isnan(raw)
        out = cast_to(np.where(missing, 0, raw), dtype)
        out[missing] = cast_to(np.array(nodata), dtype)
        return out

    bands = list(range(1, len(recorded.bands) + 1))
    _transform_raster(
        source, output, bands, recorded.names, unscale, dtype, nodata, None, block_size,
        progress, cancelled,
    )
    return recorded
