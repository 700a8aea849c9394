"""Per-band statistics of a raster, streamed by blocks, never the whole image in memory.

Pixels without data (no-data values, mask bands, NaN) and, optionally, the gaps of a gap mask
are left out. Two passes over the blocks:

1. count, minimum, maximum, mean and standard deviation: exact, from float64 moments of each
   block merged with Chan's parallel formula (no loss of precision on large images);
2. a histogram of each band between its minimum and maximum, from which the percentiles are
   read. Integer bands whose range holds at most `MAX_BINS` values get one bin per value, so
   their percentiles are exact; otherwise a percentile is at most one bin width,
   (max − min) / `MAX_BINS`, from the exact value. Each band states its bound
   (`percentile_error`, 0 when exact).

Percentiles interpolate linearly between order statistics, as `numpy.percentile` does by
default. The standard deviation is the population one (ddof = 0).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import GapfillError
from ..progress import CancelledFn, ProgressFn, check_cancelled, never_cancelled, no_progress
from ..raster.access import iter_windows, read_bands, window_count
from ..raster.fill_engine import TargetImage, open_target, read_gaps
from ..raster.output import atomic_path
from ..raster.validity import BandMasks

STATISTICS_FORMAT = "gapfill-statistics"
STATISTICS_VERSION = 1
DEFAULT_PERCENTILES = (1.0, 2.0, 98.0, 99.0)
MAX_BINS = 1 << 16


class StatisticsError(GapfillError):
    """A statistics file cannot be read, or lacks what a scaling needs."""


@dataclass(frozen=True)
class BandStatistics:
    """One band's statistics; every value is None when the band has no valid pixel."""

    band: int  # 1-based
    name: str
    count: int
    minimum: float | None = None
    maximum: float | None = None
    mean: float | None = None
    std: float | None = None
    percentiles: dict[float, float] = field(default_factory=dict)
    percentile_error: float | None = None  # bound on |approximate − exact|; 0 = exact

    def to_dict(self) -> dict[str, Any]:
        return {
            "band": self.band,
            "name": self.name,
            "count": self.count,
            "min": self.minimum,
            "max": self.maximum,
            "mean": self.mean,
            "std": self.std,
            "percentiles": {percent_key(p): v for p, v in self.percentiles.items()},
            "percentile_error": self.percentile_error,
        }


@dataclass(frozen=True)
class RasterStatistics:
    """Statistics of every data band of `source`, without the pixels of `gap_mask`."""

    source: str
    gap_mask: str | None
    percentiles: tuple[float, ...]
    bands: tuple[BandStatistics, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": STATISTICS_FORMAT,
            "version": STATISTICS_VERSION,
            "source": self.source,
            "gap_mask": self.gap_mask,
            "percentiles": list(self.percentiles),
            "bands": [band.to_dict() for band in self.bands],
        }


def percent_key(percent: float) -> str:
    """The JSON key of a percentile: 2.0 → '2', 2.5 → '2.5'."""
    return f"{percent:g}"


def parse_percentiles(text: str) -> tuple[float, ...]:
    """'1, 2, 98, 99' → (1.0, 2.0, 98.0, 99.0), checked."""
    parts = [part for part in re.split(r"[,;\s]+", text.strip()) if part]
    try:
        values = [float(part) for part in parts]
    except ValueError:
        raise GapfillError(f"'{text}' is not a list of percentiles, e.g. '1, 2, 98, 99'.") from None
    return check_percentiles(values)


def check_percentiles(percentiles: Sequence[float]) -> tuple[float, ...]:
    values = tuple(sorted({float(p) for p in percentiles}))
    if not values or any(not 0 <= p <= 100 for p in values):
        raise GapfillError(
            f"Percentiles must be between 0 and 100 (given: {list(percentiles)}), e.g. 1, 2, 98, "
            "99."
        )
    return values


# ---------------------------------------------------------------- streaming accumulators


@dataclass
class Moments:
    """Count, mean, sum of squared deviations, min and max of one band, mergeable per block."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf

    def add(self, values: np.ndarray) -> None:
        """Merge a block's values (1-D, valid only) with Chan et al.'s formula."""
        if not values.size:
            return
        block = values.astype(np.float64)
        n, mean = block.size, float(block.mean())
        m2 = float(np.square(block - mean).sum())
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.count * n / total
        self.count = total
        self.minimum = min(self.minimum, float(block.min()))
        self.maximum = max(self.maximum, float(block.max()))


class Histogram:
    """Bins of one band between its min and max; one bin per value for narrow integer ranges."""

    def __init__(self, minimum: float, maximum: float, integer: bool) -> None:
        self.minimum, self.maximum = minimum, maximum
        span = maximum - minimum
        if integer:
            self.width = float(max(1, math.ceil((span + 1) / MAX_BINS)))
            bins = int(span // self.width) + 1
        else:
            self.width = span / MAX_BINS if span > 0 else 1.0
            bins = MAX_BINS if span > 0 else 1
        self.exact = integer and self.width == 1
        self.counts = np.zeros(bins, dtype=np.int64)

    def add(self, values: np.ndarray) -> None:
        index = np.floor((values.astype(np.float64) - self.minimum) / self.width)
        index = np.clip(index, 0, self.counts.size - 1).astype(np.int64)
        self.counts += np.bincount(index, minlength=self.counts.size)

    @property
    def error(self) -> float:
        return 0.0 if self.exact else self.width

    def order_statistic(self, cumulative: np.ndarray, k: int) -> float:
        """The k-th smallest value (0-based): exact for one-value bins, else the bin's middle."""
        if k == 0:
            return self.minimum
        if k == cumulative[-1] - 1:
            return self.maximum
        b = int(np.searchsorted(cumulative, k, side="right"))
        if self.exact:
            return self.minimum + b
        return min(self.maximum, self.minimum + (b + 0.5) * self.width)

    def percentiles(self, percents: Sequence[float]) -> dict[float, float]:
        cumulative = np.cumsum(self.counts)
        n = int(cumulative[-1])
        result = {}
        for percent in percents:
            rank = percent / 100 * (n - 1)
            low = math.floor(rank)
            value = self.order_statistic(cumulative, low)
            if rank > low:
                upper = self.order_statistic(cumulative, low + 1)
                value += (rank - low) * (upper - value)
            result[percent] = value
        return result


# ---------------------------------------------------------------- the passes


def _valid_blocks(
    image: TargetImage,
    block_size: int,
    progress: ProgressFn,
    cancelled: CancelledFn,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (values, valid) per block: valid = band has data and the pixel is not a gap."""
    grid = image.grid
    masks = BandMasks(image.dataset)
    total = window_count(grid.width, grid.height, block_size)
    for done, window in enumerate(iter_windows(grid.width, grid.height, block_size), start=1):
        check_cancelled(cancelled)
        values = read_bands(image.dataset, window)
        valid = masks.valid(window, values)
        if image.mask is not None:
            _, gap = read_gaps(image, window)
            valid &= ~gap
        yield values, valid
        progress(done / total)


def compute_statistics(
    path: str,
    *,
    gap_mask: str | None = None,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    block_size: int = 512,
    progress: ProgressFn = no_progress,
    cancelled: CancelledFn = never_cancelled,
) -> RasterStatistics:
    """Statistics of every data band of `path`, without no-data and the gaps of `gap_mask`."""
    percents = check_percentiles(percentiles)
    image = open_target(path, gap_mask, every_band=False)  # statistics band by band
    moments = [Moments() for _ in range(image.bands)]
    first = _valid_blocks(image, block_size, lambda f: progress(f / 2), cancelled)
    for values, valid in first:
        for band, plane, mask in zip(moments, values, valid, strict=True):
            band.add(plane[mask])
    if not any(band.count for band in moments):  # a file of empty statistics scales nothing
        where = f" outside the gaps of '{gap_mask}'" if gap_mask else ""
        raise GapfillError(
            f"'{path}' has no valid pixel{where}: there is nothing to take statistics of. "
            "Give a gap mask that leaves clear pixels (or none), or an image with data."
        )
    integer = np.issubdtype(image.dtype, np.integer)
    histograms = [
        Histogram(band.minimum, band.maximum, integer) if band.count else None for band in moments
    ]
    if any(histograms):
        second = _valid_blocks(image, block_size, lambda f: progress(0.5 + f / 2), cancelled)
        for values, valid in second:
            for histogram, plane, mask in zip(histograms, values, valid, strict=True):
                if histogram is not None:
                    histogram.add(plane[mask])
    progress(1.0)
    bands = []
    for index, (band, histogram) in enumerate(zip(moments, histograms, strict=True)):
        name = image.descriptions[index] or f"B{index + 1}"
        if histogram is None:
            bands.append(BandStatistics(index + 1, name, 0))
            continue
        bands.append(
            BandStatistics(
                band=index + 1,
                name=name,
                count=band.count,
                minimum=band.minimum,
                maximum=band.maximum,
                mean=band.mean,
                std=math.sqrt(band.m2 / band.count),
                percentiles=histogram.percentiles(percents),
                percentile_error=histogram.error,
            )
        )
    return RasterStatistics(str(path), gap_mask or None, percents, tuple(bands))


# ---------------------------------------------------------------- JSON


def write_statistics(statistics: RasterStatistics, path: str | Path) -> Path:
    """Write the statistics as JSON; the file appears only when complete."""
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(statistics.to_dict(), indent=2, allow_nan=False))
    return Path(path)


def _number(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise StatisticsError(f"{where} must be a number or null, not {json.dumps(value)[:40]}")
    return float(value)


def _what_is_wrong(error: Exception) -> str:
    """A malformed file's fault in words, not as a Python exception's repr."""
    if isinstance(error, KeyError):
        return f"the field {error.args[0]!r} is missing"
    if isinstance(error, (TypeError, AttributeError)):
        return "a field holds a value of the wrong kind (the bands must be a list of objects)"
    return str(error)


def read_statistics(path: str | Path) -> RasterStatistics:
    """Read a statistics file written by `write_statistics`, with clear errors otherwise."""
    hint = "Compute it with 'Raster statistics'."
    try:
        document = json.loads(Path(path).read_text())
    except OSError as error:
        raise StatisticsError(
            f"The statistics file '{path}' cannot be read ({error.strerror}). {hint}"
        ) from error
    except json.JSONDecodeError as error:
        raise StatisticsError(
            f"The statistics file '{path}' is not valid JSON ({error}). {hint}"
        ) from error
    if not isinstance(document, dict) or document.get("format") != STATISTICS_FORMAT:
        raise StatisticsError(f"'{path}' is not a Gapfill statistics file. {hint}")
    if document.get("version") != STATISTICS_VERSION:
        raise StatisticsError(
            f"The statistics file '{path}' has version {document.get('version')}; this version "
            f"of Gapfill reads version {STATISTICS_VERSION}. {hint}"
        )
    try:
        bands = tuple(
            BandStatistics(
                band=int(item["band"]),
                name=str(item["name"]),
                count=int(item["count"]),
                minimum=_number(item["min"], f"band {item['band']} min"),
                maximum=_number(item["max"], f"band {item['band']} max"),
                mean=_number(item["mean"], f"band {item['band']} mean"),
                std=_number(item["std"], f"band {item['band']} std"),
                percentiles={
                    float(key): _number(value, f"band {item['band']} percentile {key}")
                    for key, value in item["percentiles"].items()
                },
                percentile_error=_number(item["percentile_error"], "percentile_error"),
            )
            for item in document["bands"]
        )
        percents = tuple(float(p) for p in document["percentiles"])
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise StatisticsError(
            f"The statistics file '{path}' is incomplete or malformed ({_what_is_wrong(error)})."
            f" {hint}"
        ) from error
    return RasterStatistics(document.get("source", ""), document.get("gap_mask"), percents, bands)


def raster_statistics(
    path: str,
    output: str | Path,
    **options: Any,
) -> RasterStatistics:
    """Compute the statistics of `path` (options of `compute_statistics`) and write them."""
    statistics = compute_statistics(path, **options)
    write_statistics(statistics, output)
    return statistics


def describe_statistics(statistics: RasterStatistics) -> list[str]:
    """One line per band, for the log."""
    lines = []
    for band in statistics.bands:
        if not band.count:
            lines.append(f"{band.name}: no valid pixel")
            continue
        shown = ", ".join(f"p{percent_key(p)} {v:.6g}" for p, v in band.percentiles.items())
        lines.append(
            f"{band.name}: {band.count} px, min {band.minimum:.6g}, max {band.maximum:.6g}, "
            f"mean {band.mean:.6g}, std {band.std:.6g}, {shown}"
        )
    return lines

