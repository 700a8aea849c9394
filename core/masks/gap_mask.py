"""Gap masks on the target grid: 1 = gap, 0 = clear, 255 = no data (outside image or source).

Sources: a Sentinel-2 Scene Classification layer, a cloud-probability raster, value lists or
ranges of any raster, the target's own no-data, or a spectral cloud/shadow score computed on the
target's Sentinel-2 bands. Every source is aligned (nearest neighbour) to the target grid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from osgeo import gdal

from ..errors import GapfillError
from ..progress import CancelledFn, ProgressFn, check_cancelled, never_cancelled, no_progress
from ..raster.access import (
    Grid,
    Window,
    band_descriptions,
    crop,
    data_band_count,
    expand_window,
    iter_windows,
    open_raster,
    read_bands,
    read_valid,
    window_count,
)
from ..raster.alignment import align_to_grid
from ..raster.morphology import dilate
from ..raster.output import GeoTiffWriter, atomic_path
from ..raster.pipeline import run_pipeline
from ..raster.sentinel2_bands import band_indices, band_names
from .spectral_cloud_score import (
    BANDS_NEEDED,
    REFLECTANCE_SCALE,
    SMOOTH_RADIUS,
    ShadowThresholds,
    clouds,
    clouds_and_shadows,
    shadow_index,
)

Method = Literal["scl", "probability", "values", "nodata", "spectral"]
METHODS: tuple[Method, ...] = ("scl", "probability", "values", "nodata", "spectral")
GAP, CLEAR, OUTSIDE = 1, 0, 255

SCL_CLASSES = {
    0: "no data",
    1: "saturated or defective",
    2: "dark area pixels",
    3: "cloud shadows",
    4: "vegetation",
    5: "not vegetated",
    6: "water",
    7: "unclassified",
    8: "cloud medium probability",
    9: "cloud high probability",
    10: "thin cirrus",
    11: "snow",
}
DEFAULT_SCL_GAPS = (0, 1, 3, 8, 9, 10)
NUMBER = r"-?\d+(?:\.\d+)?"
RANGE = re.compile(rf"^({NUMBER})\s*(?:-|:|to|\.\.)\s*({NUMBER})$")


def parse_integer_list(text: str) -> list[int]:
    """'0, 1, 3 8' → [0, 1, 3, 8]."""
    try:
        return [int(part) for part in re.split(r"[,;\s]+", text.strip()) if part]
    except ValueError as error:
        raise GapfillError(
            f"'{text}' is not a list of class numbers, e.g. '3, 8, 9, 10'."
        ) from error


def check_scl_classes(classes: list[int]) -> list[int]:
    unknown = [c for c in classes if c not in SCL_CLASSES]
    if unknown or not classes:
        listing = "; ".join(f"{k} {v}" for k, v in SCL_CLASSES.items())
        raise GapfillError(
            f"Scene Classification classes {unknown or classes} do not exist"
            f"{'' if classes else ' (the list is empty)'}. The classes are: {listing}."
        )
    return classes


def parse_value_ranges(text: str) -> list[tuple[float, float]]:
    """'4, 0, 10-20' → [(4, 4), (0, 0), (10, 20)]; ranges are inclusive."""
    ranges = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if match := RANGE.match(part):
            low, high = float(match.group(1)), float(match.group(2))
            ranges.append((min(low, high), max(low, high)))
        elif re.fullmatch(NUMBER, part):
            ranges.append((float(part), float(part)))
        else:
            raise GapfillError(
                f"'{part}' is neither a value nor a range; write e.g. '4, 0, 10-20'."
            )
    if not ranges:
        raise GapfillError("Give the values that mark gaps, e.g. '4, 0' or '1-3'.")
    return ranges


@dataclass
class MaskSettings:
    """What decides a gap, already validated."""

    method: Method
    classes: tuple[int, ...] = DEFAULT_SCL_GAPS
    threshold: float = 40.0
    ranges: tuple[tuple[float, float], ...] = ()
    band: int = 1
    band_names: str = ""
    dilation: int = 0


@dataclass
class MaskReport:
    pixels: int = 0
    gaps: int = 0
    outside: int = 0

    @property
    def gap_fraction(self) -> float:
        inside = self.pixels - self.outside
        return self.gaps / inside if inside else 0.0


def spectral_bands(dataset: gdal.Dataset, given_names: str) -> dict[str, int]:
    names = band_names(band_descriptions(dataset), given_names)
    optional = [b for b in ("B1", "B10") if b in names]
    return band_indices(names, BANDS_NEEDED + optional, "The spectral cloud score")


def reflectances(
    dataset: gdal.Dataset, window: Window, bands: dict[str, int]
) -> dict[str, np.ndarray]:
    data = read_bands(dataset, window, [i + 1 for i in bands.values()]).astype(np.float64)
    return {name: data[k] / REFLECTANCE_SCALE for k, name in enumerate(bands)}


def shadow_thresholds(
    dataset: gdal.Dataset, bands: dict[str, int], cancelled: CancelledFn
) -> ShadowThresholds:
    """First pass: min and mean of the shadow index and the blue band over valid pixels that
    are not clouds (all valid pixels when the image is entirely cloudy)."""
    csi_min = blue_min = np.inf
    csi_sum = blue_sum = 0.0
    count = 0
    width, height = dataset.RasterXSize, dataset.RasterYSize
    for clear_only in (True, False):
        for window in iter_windows(width, height, 1024):
            check_cancelled(cancelled)
            outer, inner = expand_window(window, SMOOTH_RADIUS, width, height)
            values = reflectances(dataset, outer, bands)
            valid = read_valid(dataset, outer)
            if clear_only:
                valid &= ~clouds(values)
            valid = crop(valid, inner)
            if not valid.any():
                continue
            core = {name: crop(band, inner) for name, band in values.items()}
            csi, blue = shadow_index(core)[valid], core["B2"][valid]
            csi_min, blue_min = min(csi_min, csi.min()), min(blue_min, blue.min())
            csi_sum, blue_sum = csi_sum + csi.sum(), blue_sum + blue.sum()
            count += valid.sum()
        if count:
            break
    if count == 0:
        raise GapfillError("The target has no valid pixel: nothing to compute a cloud score on.")
    return ShadowThresholds.from_statistics(csi_min, csi_sum / count, blue_min, blue_sum / count)


def classify(settings: MaskSettings, values: np.ndarray) -> np.ndarray:
    """Gap pixels of one source band for the value-based methods."""
    if settings.method == "scl":
        return np.isin(values, settings.classes)
    if settings.method == "probability":
        return values >= settings.threshold
    gap = np.zeros(values.shape, dtype=bool)
    for low, high in settings.ranges:
        gap |= (values >= low) & (values <= high)
    return gap


def build_gap_mask(
    target_path: str,
    output: str | Path,
    settings: MaskSettings,
    *,
    source_path: str | None = None,
    block_size: int = 1024,
    progress: ProgressFn = no_progress,
    cancelled: CancelledFn = never_cancelled,
) -> MaskReport:
    """Write the Byte gap mask of the target (1 gap, 0 clear, 255 no data) to `output`."""
    target = open_raster(target_path, "target image")
    grid = Grid.of(target)
    source = target
    if settings.method in ("scl", "probability", "values") and source_path:
        source = align_to_grid(source_path, grid, "nearest", "mask source")
    if settings.method in ("scl", "probability", "values"):
        bands = data_band_count(source)
        if not 1 <= settings.band <= bands:
            raise GapfillError(
                f"Band {settings.band} was asked for but the mask source has {bands} band(s)."
            )
    spectral = spectral_bands(target, settings.band_names) if settings.method == "spectral" else {}
    thresholds = shadow_thresholds(target, spectral, cancelled) if spectral else None
    halo = settings.dilation + (SMOOTH_RADIUS if spectral else 0)
    report = MaskReport()

    def read(window: Window):
        outer, inner = expand_window(window, halo, grid.width, grid.height)
        target_valid = read_valid(target, outer)
        if settings.method == "nodata":
            return inner, target_valid, None, None
        if spectral:
            return inner, target_valid, reflectances(target, outer, spectral), None
        values = read_bands(source, outer, [settings.band])[0]
        return inner, target_valid, values, read_valid(source, outer)

    def compute(payload) -> np.ndarray:
        inner, target_valid, values, source_valid = payload
        if settings.method == "nodata":
            gap, outside = ~target_valid, np.zeros_like(target_valid)
        elif spectral:
            cloud, shadow = clouds_and_shadows(values, thresholds)
            gap, outside = (cloud | shadow) & target_valid, ~target_valid
        else:
            outside = ~target_valid | ~source_valid
            gap = classify(settings, values) & ~outside
        gap = dilate(gap, settings.dilation) & ~outside
        mask = np.where(gap, GAP, CLEAR).astype(np.uint8)
        mask[outside] = OUTSIDE
        return crop(mask, inner)

    with atomic_path(output) as temporary:
        writer = GeoTiffWriter(temporary, grid, 1, np.dtype(np.uint8), OUTSIDE, ["gap mask"])

        def write(window: Window, mask: np.ndarray) -> None:
            writer.write(window, mask)
            report.pixels += mask.size
            report.gaps += int((mask == GAP).sum())
            report.outside += int((mask == OUTSIDE).sum())

        try:
            run_pipeline(
                iter_windows(grid.width, grid.height, block_size),
                window_count(grid.width, grid.height, block_size),
                read,
                compute,
                write,
                progress=progress,
                cancelled=cancelled,
            )
        finally:
            writer.close()
    return report
