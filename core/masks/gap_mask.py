"""Gap masks on the target grid: 1 = gap, 0 = clear, 255 = no data (outside image or source).

Sources: a Sentinel-2 Scene Classification layer, a cloud-probability raster, value lists or
ranges of any raster, the target's own no-data, a spectral cloud/shadow score computed on the
target's Sentinel-2 bands, or a field-made detector run on them (ukis-csmask, s2cloudless; see
`detectors`). "automatic" takes the best detector installed, else the spectral score. Every
source is aligned (nearest neighbour) to the target grid.

Haze: a mask that stops at the bright core of a cloud leaves its hazy rim, which a fill then
keeps (its pixels count as clear) and copies from other dates (histogram matching learns from
it, IDW starts from it). Each method's cloud threshold and haze buffer (`RECOMMENDED`) were
chosen on the real data by the haze left outside the mask against the pixels lost
(BENCHMARKS.md, "Gap masks").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from osgeo import gdal

from ..errors import GapfillError
from ..learned.onnx_session import Device, LogFn, no_log
from ..learned.tiling import round_up
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
from ..raster.resampling import pixel_size_metres, resolution_factor
from ..raster.sentinel2_bands import band_indices, band_names
from .detectors import (
    CLASSES,
    DetectorSource,
    Level,
    choose_method,
    open_detector,
    product_level,
)
from .spectral_cloud_score import (
    BANDS_NEEDED,
    CLOUD_THRESHOLD,
    REFLECTANCE_SCALE,
    SMOOTH_RADIUS,
    ShadowThresholds,
    clouds,
    clouds_and_shadows,
    shadow_index,
)

Method = Literal[
    "scl", "probability", "values", "nodata", "spectral", "automatic", "ukis", "s2cloudless"
]
METHODS: tuple[Method, ...] = (
    "scl", "probability", "values", "nodata", "spectral", "automatic", "ukis", "s2cloudless"
)  # fmt: skip
VALUE_METHODS = ("scl", "probability", "values")
DETECTORS = ("ukis", "s2cloudless")
GAP, CLEAR, OUTSIDE = 1, 0, 255
ASSUMED_PIXEL_METRES = 10.0  # Sentinel-2's finest bands, for images without georeference

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


@dataclass(frozen=True)
class Recommended:
    """A cloud-detecting method's defaults: its cloud threshold (a probability for the
    detectors, the smoothed score for the spectral method) and the haze buffer (metres)."""

    threshold: float
    buffer_metres: float


# On 25 SEN12MS-CR cloudy/clear pairs (benchmarks/bench_masks.py): at each method's threshold
# (ukis-csmask's own decision, Sentinel Hub's 0.4, DSen2-CR's 0.2; lower ones flag more haze
# but lose precision on the labels of cloud_labels), the buffer that leaves the least haze for
# at most 5 points more pixels flagged. The spectral score's speckle makes any buffer costly.
RECOMMENDED = {
    "spectral": Recommended(CLOUD_THRESHOLD, 0.0),
    "ukis": Recommended(0.5, 60.0),
    "s2cloudless": Recommended(0.4, 150.0),
}


@dataclass
class MaskSettings:
    """What decides a gap, already validated. The cloud-detecting methods (spectral,
    automatic, ukis, s2cloudless) also take the classes to flag, the product level, the cloud
    threshold and haze buffer (None: `RECOMMENDED`), the detector's resolution (None: its
    recommended one), the pixel size of images without georeference, a DN offset
    (reflectance = (DN + offset) / 10000) and the device."""

    method: Method
    classes: tuple[int, ...] = DEFAULT_SCL_GAPS
    threshold: float = 40.0
    ranges: tuple[tuple[float, float], ...] = ()
    band: int = 1
    band_names: str = ""
    dilation: int = 0
    flag: tuple[str, ...] = CLASSES
    level: Level = "auto"
    cloud_threshold: float | None = None
    buffer_metres: float | None = None
    resolution_metres: float | None = None
    pixel_metres: float | None = None
    ukis_bands: int = 0  # 0: 6 when B11 and B12 exist, else 4
    reflectance_offset: float = 0.0
    device: Device = "auto"


@dataclass
class MaskReport:
    pixels: int = 0
    gaps: int = 0
    outside: int = 0
    method: str = ""  # what ran, in words

    @property
    def gap_fraction(self) -> float:
        inside = self.pixels - self.outside
        return self.gaps / inside if inside else 0.0


def spectral_bands(names: list[str]) -> dict[str, int]:
    optional = [b for b in ("B1", "B10") if b in names]
    return band_indices(names, BANDS_NEEDED + optional, "The spectral cloud score")


def reflectances(
    dataset: gdal.Dataset, window: Window, bands: dict[str, int], offset: float = 0.0
) -> dict[str, np.ndarray]:
    data = read_bands(dataset, window, [i + 1 for i in bands.values()]).astype(np.float64)
    return {name: (data[k] + offset) / REFLECTANCE_SCALE for k, name in enumerate(bands)}


def shadow_thresholds(
    dataset: gdal.Dataset, bands: dict[str, int], offset: float, cancelled: CancelledFn
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
            values = reflectances(dataset, outer, bands, offset)
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


def check_flag(flag: tuple[str, ...], method: str) -> None:
    unknown = [name for name in flag if name not in CLASSES]
    if unknown or not flag:
        raise GapfillError(
            f"Classes to flag {list(flag)} are not valid: choose one or both of "
            f"{', '.join(CLASSES)}."
        )
    if method == "s2cloudless" and "cloud" not in flag:
        raise GapfillError(
            "s2cloudless detects clouds only, not shadows: flag 'cloud', or use ukis-csmask "
            "or the spectral score for cloud shadows."
        )


def pixel_metres(grid: Grid, settings: MaskSettings) -> float | None:
    """The target's pixel size in metres: from its georeference, else as given."""
    return pixel_size_metres(grid) or settings.pixel_metres or None


def buffer_pixels(settings: MaskSettings, method: str, grid: Grid, log: LogFn) -> int:
    """The haze buffer of a cloud-detecting method in target pixels."""
    metres = settings.buffer_metres
    if metres is None:
        metres = RECOMMENDED[method].buffer_metres
    if metres <= 0:
        return 0
    size = pixel_metres(grid, settings)
    if size is None:
        log(
            f"The target has no georeference and no pixel size was given: the haze buffer of "
            f"{metres:g} m assumes {ASSUMED_PIXEL_METRES:g} m pixels."
        )
        size = ASSUMED_PIXEL_METRES
    return max(1, round(metres / size))


def detector_source(
    target: gdal.Dataset,
    grid: Grid,
    settings: MaskSettings,
    method: str,
    names: list[str],
    level: str,
    log: LogFn,
) -> DetectorSource:
    detector, bands = open_detector(
        method, names, level, settings.ukis_bands, settings.device, log
    )
    wanted = settings.resolution_metres or detector.recommended_metres
    size = pixel_metres(grid, settings)
    if size is None:
        log(
            f"The target has no georeference and no pixel size was given: {detector.name} "
            f"runs on its pixels, not at {wanted:g} m. Give the pixel size to run it there."
        )
    threshold = settings.cloud_threshold
    return DetectorSource(
        target,
        detector,
        bands,
        resolution_factor(size, wanted),
        RECOMMENDED[method].threshold if threshold is None else threshold,
        settings.flag,
        settings.reflectance_offset,
        REFLECTANCE_SCALE,
    )


def build_gap_mask(
    target_path: str,
    output: str | Path,
    settings: MaskSettings,
    *,
    source_path: str | None = None,
    block_size: int | None = None,
    progress: ProgressFn = no_progress,
    cancelled: CancelledFn = never_cancelled,
    log: LogFn = no_log,
    role: str = "target image",
) -> MaskReport:
    """Write the Byte gap mask of the target (1 gap, 0 clear, 255 no data) to `output`.

    `block_size`: pixels per block side (default 1024, or the detector's), rounded up to a
    multiple of a detector's cell; `role`: what the image is, for messages."""
    target = open_raster(target_path, role)
    grid = Grid.of(target)
    method = settings.method
    names: list[str] = []
    level = "l1c"
    if method not in VALUE_METHODS + ("nodata",):
        names = band_names(band_descriptions(target), settings.band_names)
        level = product_level(target, names, settings.level, log)
        method = choose_method(method, names, level, log)
        check_flag(settings.flag, method)
    source = target
    if method in VALUE_METHODS and source_path:
        source = align_to_grid(source_path, grid, "nearest", "mask source")
    if method in VALUE_METHODS:
        bands = data_band_count(source)
        if not 1 <= settings.band <= bands:
            raise GapfillError(
                f"Band {settings.band} was asked for but the mask source has {bands} band(s)."
            )
    detector = (
        detector_source(target, grid, settings, method, names, level, log)
        if method in DETECTORS
        else None
    )
    spectral = spectral_bands(names) if method == "spectral" else {}
    offset = settings.reflectance_offset
    thresholds = shadow_thresholds(target, spectral, offset, cancelled) if spectral else None
    cloud_threshold = settings.cloud_threshold
    if spectral and cloud_threshold is None:
        cloud_threshold = RECOMMENDED["spectral"].threshold
    buffer = buffer_pixels(settings, method, grid, log) if method in RECOMMENDED else 0
    dilation = settings.dilation + buffer
    factor = detector.factor if detector else 1
    context = detector.halo if detector else SMOOTH_RADIUS if spectral else 0
    halo = round_up(dilation + context, factor)
    block = round_up(block_size or (detector.block_size if detector else 1024), factor)
    report = MaskReport(method=describe_method(method, detector, cloud_threshold, buffer))
    log(f"Gap mask: {report.method}.")

    def read(window: Window):
        outer, inner = expand_window(window, halo, grid.width, grid.height)
        if detector:
            return inner, detector.read(outer)
        target_valid = read_valid(target, outer)
        if method == "nodata":
            return inner, target_valid
        if spectral:
            return inner, (target_valid, reflectances(target, outer, spectral, offset))
        values = read_bands(source, outer, [settings.band])[0]
        return inner, (target_valid, values, read_valid(source, outer))

    def compute(payload) -> np.ndarray:
        inner, data = payload
        if detector:
            gap, outside = detector.gaps(data)
        elif method == "nodata":
            gap, outside = ~data, np.zeros_like(data)
        elif spectral:
            target_valid, values = data
            cloud, shadow = clouds_and_shadows(values, thresholds, cloud_threshold)
            flagged = (cloud if "cloud" in settings.flag else False) | (
                shadow if "shadow" in settings.flag else False
            )
            gap, outside = flagged & target_valid, ~target_valid
        else:
            target_valid, values, source_valid = data
            outside = ~target_valid | ~source_valid
            gap = classify(settings, values) & ~outside
        gap = dilate(gap, dilation) & ~outside
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
                iter_windows(grid.width, grid.height, block),
                window_count(grid.width, grid.height, block),
                read,
                compute,
                write,
                workers=1 if detector else 2,  # a detector's session already uses every core
                progress=progress,
                cancelled=cancelled,
            )
        finally:
            writer.close()
        missing = report.gaps if method == "nodata" else report.outside  # pixels without data
        if report.pixels and missing == report.pixels:  # refused before the mask appears
            raise GapfillError(
                f"The {role} '{target_path}' has no pixel with data (every pixel is "
                "no-data, NaN or masked): there is nothing to mask. Check the file and its "
                "no-data value."
            )
    return report


def describe_method(
    method: str, detector: DetectorSource | None, threshold: float | None, buffer: int
) -> str:
    """What computes the mask, for the log and the report."""
    if detector:
        text = detector.describe()
    elif method == "spectral":
        text = f"spectral cloud/shadow score, cloud threshold {threshold:g}"
    else:
        text = {"scl": "Scene Classification classes", "probability": "cloud probability",
                "values": "values or ranges", "nodata": "the target's no-data"}[method]
    return text + (f", haze buffer {buffer} px" if buffer else "")
