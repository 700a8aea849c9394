"""Gaps whose true values are known, so that fills can be measured.

A real gap mask (a cloud mask of another date or another place) is laid on a clear image as a
pixel pattern (flipped, shifted, tiled: its georeferencing is ignored, so a mask from anywhere
can be used); the pixels it covers are removed (set to no-data) or brightened like a cloud. The
evaluation mask holds the pixels that had data and were removed: only there is the truth known.
The STPConv convention (X, Y, MASK, VALMASK files), which already holds such gaps, is read as is.
"""

from __future__ import annotations

import math
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from osgeo import gdal

from ..errors import GapfillError
from ..masks.gap_mask import CLEAR, GAP, OUTSIDE, MaskSettings, classify
from ..progress import CancelledFn, ProgressFn, never_cancelled, no_progress
from ..raster.access import (
    Grid,
    Window,
    band_descriptions,
    crop,
    data_band_count,
    expand_window,
    iter_windows,
    nodata_value,
    numpy_dtype,
    open_raster,
    read_bands,
    read_valid,
    window_count,
)
from ..raster.fill_engine import default_nodata
from ..raster.morphology import box_mean
from ..raster.output import GeoTiffWriter, atomic_path, cast_to
from ..raster.pipeline import run_pipeline

Flip = Literal["none", "horizontal", "vertical", "both"]
FLIPS: tuple[Flip, ...] = ("none", "horizontal", "vertical", "both")
Mode = Literal["nodata", "cloud"]
MODES: tuple[Mode, ...] = ("nodata", "cloud")
CLOUD_DN = 8000.0  # a thick cloud in Sentinel-2 DN (reflectance 0.8)
DEFAULT_GAP_VALUES = MaskSettings(method="values", ranges=((1.0, math.inf),))  # 1 = cloud
STPCONV_PARTS = ("X", "Y", "MASK", "VALMASK")


@dataclass(frozen=True)
class MaskLayout:
    """How a mask's pixel pattern covers the target: flipped, then shifted by (columns right,
    rows down) wrapping around like `numpy.roll`, then repeated when smaller than the target."""

    shift: tuple[int, int] = (0, 0)
    flip: Flip = "none"
    tile: bool = True


def lay_mask(
    mask: np.ndarray,
    width: int,
    height: int,
    layout: MaskLayout = MaskLayout(),
    window: Window | None = None,
) -> np.ndarray:
    """The 2-D `mask` laid over a width×height target, restricted to `window` (default: all)."""
    check_layout(mask.shape, width, height, layout)
    rows, cols = mask.shape
    x, y, w, h = window or (0, 0, width, height)
    shift_x, shift_y = layout.shift
    row_index = (np.arange(y, y + h) - shift_y) % rows
    col_index = (np.arange(x, x + w) - shift_x) % cols
    if layout.flip in ("vertical", "both"):
        row_index = rows - 1 - row_index
    if layout.flip in ("horizontal", "both"):
        col_index = cols - 1 - col_index
    return mask[np.ix_(row_index, col_index)]


def check_layout(
    mask_shape: tuple[int, ...], width: int, height: int, layout: MaskLayout
) -> None:
    """Refuse an unknown flip, or a mask smaller than the target when tiling is off."""
    if layout.flip not in FLIPS:
        raise GapfillError(f"Unknown flip '{layout.flip}'; use one of {', '.join(FLIPS)}.")
    rows, cols = mask_shape
    if not layout.tile and (rows < height or cols < width):
        raise GapfillError(
            f"The gap mask ({cols}×{rows} px) is smaller than the target ({width}×{height} px). "
            "Allow tiling, or give a mask at least as large as the target."
        )


def cloud_opacity(gap: np.ndarray, edge: int) -> np.ndarray:
    """Opacity of a simulated cloud: 0 outside the gap, from about ½ at its edge to 1 at
    `edge` pixels inside, like the soft rim of a real cloud (a hard edge when `edge` is 0)."""
    return box_mean(gap, edge) * gap if edge > 0 else gap.astype(np.float64)


@dataclass
class SimulatedGaps:
    """The cloudy input (clear image's type), the gap mask (1 gap, 0 clear, 255 no data in the
    clear image) and the evaluation mask (had data and was removed)."""

    cloudy: np.ndarray
    gap_mask: np.ndarray
    evaluation: np.ndarray


def simulate_gaps(
    clear: np.ndarray,
    valid: np.ndarray,
    gap: np.ndarray,
    *,
    mode: Mode = "nodata",
    nodata: float = 0.0,
    cloud_value: float = CLOUD_DN,
    edge: int = 3,
    inner: Window | None = None,
) -> SimulatedGaps:
    """Remove the `gap` pixels of `clear` (bands, h, w) whose data is `valid` (h, w).

    "nodata" sets them to `nodata`; "cloud" blends them towards `cloud_value` with
    `cloud_opacity`. Outputs cover `inner` of the inputs: a block read with an `edge` halo
    gets the same soft edges as the whole image.
    """
    if mode not in MODES:
        raise GapfillError(f"Unknown gap mode '{mode}'; use one of {', '.join(MODES)}.")
    if clear.ndim != 3 or valid.shape != clear.shape[1:] or gap.shape != valid.shape:
        raise GapfillError(
            f"The clear image {clear.shape}, its validity {valid.shape} and the gaps {gap.shape} "
            "must share one grid: (bands, height, width) and (height, width)."
        )
    inner = inner or (0, 0, clear.shape[2], clear.shape[1])
    core_gap, core_valid = crop(gap, inner).astype(bool), crop(valid, inner)
    cloudy = crop(clear, inner).copy()
    if mode == "nodata":
        cloudy[:, core_gap] = cast_to(np.array(nodata), cloudy.dtype)
    else:
        opacity = crop(cloud_opacity(gap.astype(bool), edge), inner)
        blended = cloudy * (1 - opacity) + cloud_value * opacity
        removed = core_gap & core_valid
        cloudy[:, removed] = cast_to(blended[:, removed], cloudy.dtype)
    gap_mask = np.where(core_gap, GAP, CLEAR).astype(np.uint8)
    gap_mask[~core_valid] = OUTSIDE
    return SimulatedGaps(cloudy, gap_mask, core_gap & core_valid)


@dataclass
class SimulationReport:
    """Pixel counts of a simulation, for the log and the report."""

    pixels: int = 0
    outside: int = 0  # no data in the clear image
    gaps: int = 0
    evaluation: int = 0

    @property
    def evaluation_fraction(self) -> float:
        """Share of the clear image's valid pixels that were removed."""
        inside = self.pixels - self.outside
        return self.evaluation / inside if inside else 0.0


def read_mask_pattern(path: str, settings: MaskSettings) -> np.ndarray:
    """Boolean gaps of one band of a mask raster, whole (masks are one small band); its no-data
    is not a gap."""
    if settings.method not in ("scl", "probability", "values"):
        raise GapfillError(
            f"A simulated gap is read from mask values; the method '{settings.method}' cannot "
            "be used here (use 'values', 'probability' or 'scl')."
        )
    dataset = open_raster(path, "gap mask")
    bands = data_band_count(dataset)
    if not 1 <= settings.band <= bands:
        raise GapfillError(f"Band {settings.band} was asked for but the gap mask has {bands}.")
    band = dataset.GetRasterBand(settings.band)
    gap = classify(settings, band.ReadAsArray())
    if band.GetMaskFlags() != gdal.GMF_ALL_VALID:
        gap &= band.GetMaskBand().ReadAsArray() > 0
    return gap


def simulate_gap_files(
    clear_path: str,
    mask_path: str,
    cloudy_output: str | Path,
    gap_mask_output: str | Path,
    evaluation_output: str | Path,
    *,
    settings: MaskSettings = DEFAULT_GAP_VALUES,
    layout: MaskLayout = MaskLayout(),
    mode: Mode = "nodata",
    cloud_value: float = CLOUD_DN,
    edge: int = 3,
    block_size: int = 1024,
    progress: ProgressFn = no_progress,
    cancelled: CancelledFn = never_cancelled,
) -> SimulationReport:
    """Write the cloudy input, gap mask and evaluation mask (Byte, 1 = removed) of a clear image,
    as GeoTIFFs on its grid; the cloudy input keeps its type, band names and no-data value."""
    outputs = [Path(p).resolve() for p in (cloudy_output, gap_mask_output, evaluation_output)]
    if len(set(outputs)) != len(outputs):
        raise GapfillError(
            "The cloudy image, gap mask and evaluation mask need three different files."
        )
    clear = open_raster(clear_path, "clear image")
    grid = Grid.of(clear)
    pattern = read_mask_pattern(mask_path, settings)
    check_layout(pattern.shape, grid.width, grid.height, layout)
    dtype = numpy_dtype(clear)
    stored_nodata = nodata_value(clear)
    nodata = default_nodata(dtype) if stored_nodata is None else stored_nodata
    halo = edge if mode == "cloud" else 0
    descriptions = band_descriptions(clear)
    report = SimulationReport()

    def read(window: Window) -> tuple[np.ndarray, np.ndarray, np.ndarray, Window]:
        outer, inner = expand_window(window, halo, grid.width, grid.height)
        gap = lay_mask(pattern, grid.width, grid.height, layout, outer)
        return read_bands(clear, outer), read_valid(clear, outer), gap, inner

    def compute(block: tuple[np.ndarray, np.ndarray, np.ndarray, Window]) -> SimulatedGaps:
        data, valid, gap, inner = block
        return simulate_gaps(
            data, valid, gap, mode=mode, nodata=nodata, cloud_value=cloud_value, edge=edge,
            inner=inner,
        )

    with ExitStack() as stack:
        specs = [
            (len(descriptions), dtype, nodata, descriptions),
            (1, np.dtype(np.uint8), OUTSIDE, ["gap mask"]),
            (1, np.dtype(np.uint8), None, ["evaluation mask (1 = removed clear pixel)"]),
        ]
        writers = []
        for output, (bands, out_type, out_nodata, names) in zip(outputs, specs, strict=True):
            temporary = stack.enter_context(atomic_path(output))
            writer = GeoTiffWriter(temporary, grid, bands, out_type, out_nodata, names)
            stack.callback(writer.close)
            writers.append(writer)

        def write(window: Window, result: SimulatedGaps) -> None:
            cloudy_writer, mask_writer, evaluation_writer = writers
            cloudy_writer.write(window, result.cloudy)
            mask_writer.write(window, result.gap_mask)
            evaluation_writer.write(window, result.evaluation.astype(np.uint8))
            report.pixels += result.gap_mask.size
            report.outside += int((result.gap_mask == OUTSIDE).sum())
            report.gaps += int((result.gap_mask == GAP).sum())
            report.evaluation += int(result.evaluation.sum())

        run_pipeline(
            iter_windows(grid.width, grid.height, block_size),
            window_count(grid.width, grid.height, block_size),
            read,
            compute,
            write,
            progress=progress,
            cancelled=cancelled,
        )
        if report.pixels and report.outside == report.pixels:  # before the outputs appear
            raise GapfillError(
                f"The clear image '{clear_path}' has no pixel with data (every pixel is no-data "
                "or NaN): no gap can be simulated and nothing could be evaluated. Check the file "
                "and its no-data value."
            )
    return report


@dataclass
class StpconvBlock:
    """One STPConv sample as stored, (days, height, width) each: `y` the measurements with
    their real gaps, `x` the same with artificial gaps, `mask` 1 = valid in X, `valmask`
    1 = present in Y and removed in X (the evaluation pixels); `nodata` of X and Y."""

    name: str
    x: np.ndarray
    y: np.ndarray
    mask: np.ndarray
    valmask: np.ndarray
    nodata: float | None
    grid: Grid


def stpconv_names(folder: str | Path) -> list[str]:
    """Names of the complete samples (all four files present) in an STPConv folder, sorted."""
    folder = Path(folder)
    names = {path.name[2:-4] for path in folder.glob("X_*.tif")}
    return sorted(
        name for name in names if all((folder / f"{p}_{name}.tif").is_file() for p in STPCONV_PARTS)
    )


def read_stpconv(folder: str | Path, name: str) -> StpconvBlock:
    """Read the X, Y, MASK and VALMASK files of sample `name` (e.g. '0_3_12') as they are."""
    paths = {part: Path(folder) / f"{part}_{name}.tif" for part in STPCONV_PARTS}
    missing = [str(path) for path in paths.values() if not path.is_file()]
    if missing:
        raise GapfillError(
            f"The STPConv sample '{name}' is incomplete: {', '.join(missing)} not found. A sample "
            "has four files X_<name>.tif, Y_<name>.tif, MASK_<name>.tif and VALMASK_<name>.tif."
        )
    datasets = {part: open_raster(path, f"STPConv {part} file") for part, path in paths.items()}
    grid = Grid.of(datasets["Y"])
    arrays = {}
    for part, dataset in datasets.items():
        arrays[part] = read_bands(dataset, (0, 0, dataset.RasterXSize, dataset.RasterYSize))
        if arrays[part].shape != arrays["X"].shape:
            raise GapfillError(
                f"The STPConv files of '{name}' differ in size: X is {arrays['X'].shape}, "
                f"{part} is {arrays[part].shape} (bands, height, width)."
            )
    nodata = nodata_value(datasets["Y"])
    if nodata_value(datasets["X"]) != nodata:
        raise GapfillError(
            f"The STPConv files X and Y of '{name}' have different no-data values "
            f"({nodata_value(datasets['X'])} and {nodata}); they should share one."
        )
    return StpconvBlock(
        name, arrays["X"], arrays["Y"], arrays["MASK"], arrays["VALMASK"], nodata, grid
    )
