"""Evaluate filled GeoTIFFs against a reference GeoTIFF, streamed block by block.

Every image is put on the reference grid (`align_to_grid`), so a fill made on another grid can
still be judged; images whose grids cannot be aligned, or whose bands differ, are refused. Only
evaluation pixels count: an evaluation mask (1 = evaluate: the mask written by 'Simulate gaps',
or a gap mask), or, without one, the pixels where the input with gaps has no data and the
reference has. Blocks are read with an `SSIM_RADIUS` halo so SSIM equals the whole-image one, and
memory stays bounded by the block size. Small previews (RGB and absolute-error maps) are read
at reduced resolution for the report's quick-looks.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from osgeo import gdal

from ..errors import GapfillError
from ..progress import CancelledFn, ProgressFn, never_cancelled, no_progress
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
from ..raster.pipeline import run_pipeline
from ..raster.sentinel2_bands import band_indices, band_names
from ..raster.value_range import Spread, check_same_scale, sample_spread
from .metrics import (
    SENTINEL2_REFLECTANCE,
    SSIM_RADIUS,
    SSIM_SIGMA,
    Metrics,
    MetricsAccumulator,
    Scaling,
)

NDVI_BANDS = ("B4", "B8")  # red, near infrared
RGB_BANDS = ("B4", "B3", "B2")


@dataclass(frozen=True)
class FilledImage:
    """One fill to judge: the name it has in the tables and its file."""

    name: str
    path: str


@dataclass(frozen=True)
class EvaluationSettings:
    """How values are compared; `band_names` names the bands when descriptions do not."""

    scaling: Scaling = SENTINEL2_REFLECTANCE
    data_range: float = 1.0
    ndvi: bool = False
    band_names: str = ""
    block_size: int = 512
    preview_size: int = 384  # long side of the quick-looks, in pixels


@dataclass
class Previews:
    """Reduced images for the quick-looks, scaled like the metrics: RGB (3, h, w) with NaN where
    there is no data, absolute error (h, w) averaged over the bands on evaluation pixels (NaN
    elsewhere, and `unfilled` where the fill left no value)."""

    reference: np.ndarray
    gaps_input: np.ndarray | None
    filled: list[np.ndarray]
    errors: list[np.ndarray]
    unfilled: list[np.ndarray]
    evaluation: np.ndarray


@dataclass
class Evaluation:
    """The metrics of each filled image, and what the report states about the run."""

    reference: str
    filled: list[FilledImage]
    metrics: list[Metrics]
    band_labels: list[str]
    evaluation_source: str
    evaluation_pixels: int
    settings: EvaluationSettings
    ndvi_bands: tuple[str, str] | None
    rgb_bands: list[int]
    previews: Previews
    gaps_input: str | None = None
    messages: list[str] = field(default_factory=list)

    def parameters(self) -> list[tuple[str, str]]:
        """The run parameters in words, for the report (no paths of the outputs, no time)."""
        rgb = ", ".join(self.band_labels[band - 1] for band in self.rgb_bands)
        return [
            ("Reference", self.reference),
            *((f"Filled image '{f.name}'", f.path) for f in self.filled),
            ("Input with gaps", self.gaps_input or "not given"),
            ("Evaluation pixels", self.evaluation_source),
            ("Evaluation pixel count", str(self.evaluation_pixels)),
            ("Scaling", self.settings.scaling.describe()),
            ("Data range (PSNR peak, SSIM)", f"{self.settings.data_range:g}"),
            ("SSIM window", f"Gaussian σ {SSIM_SIGMA:g}, radius {SSIM_RADIUS} px"),
            ("SAM", "spectral angle over all bands, degrees, on pixels filled in every band"),
            (
                "NDVI error",
                "not asked for" if self.ndvi_bands is None
                else f"mean |ΔNDVI|, red {self.ndvi_bands[0]}, near infrared {self.ndvi_bands[1]}",
            ),
            ("Bands", ", ".join(self.band_labels)),
            ("Quick-look bands (R, G, B)", rgb),
        ]


def name_images(paths: Sequence[str], names: str = "") -> list[FilledImage]:
    """The filled images with their table names: the comma-separated `names` in order, or the
    file names, made unique ('filled', 'filled (2)') so every column can be told apart."""
    given = [part.strip() for part in names.split(",")] if names.strip() else []
    if given and (len(given) != len(paths) or not all(given)):
        raise GapfillError(
            f"The method names '{names}' do not name the {len(paths)} filled image(s): give one "
            "non-empty name per filled image, in order, separated by commas (or none)."
        )
    images: list[FilledImage] = []
    for index, path in enumerate(paths):
        base = given[index] if given else Path(path).stem
        name, copy = base, 1
        while name in {image.name for image in images}:
            copy += 1
            name = f"{base} ({copy})"
        images.append(FilledImage(name, path))
    return images


def read_values(dataset: gdal.Dataset, window: Window) -> np.ndarray:
    """(bands, h, w) float64 as stored, NaN where there is no data (no-data, alpha, outside)."""
    values = read_bands(dataset, window).astype(np.float64)
    values[:, ~read_valid(dataset, window)] = np.nan
    return values


def shrink(dataset: gdal.Dataset, width: int, height: int) -> gdal.Dataset:
    """The dataset decimated in memory (nearest neighbour keeps values and no-data as they are)."""
    if (dataset.RasterXSize, dataset.RasterYSize) == (width, height):
        return dataset
    small = gdal.Translate("", dataset, format="MEM", width=width, height=height,
                           resampleAlg="nearest")
    if small is None:
        raise GapfillError(f"Cannot read a preview of '{dataset.GetDescription()}': "
                           f"{gdal.GetLastErrorMsg()}")
    return small


@dataclass
class _Inputs:
    """The datasets of one evaluation, all on one grid."""

    reference: gdal.Dataset
    filled: list[gdal.Dataset]
    mask: gdal.Dataset | None
    gaps: gdal.Dataset | None

    def evaluation(self, window: Window) -> np.ndarray:
        """Pixels to evaluate, (h, w), or (bands, h, w) for a mask with one band per band."""
        if self.mask is not None:
            selected = (read_bands(self.mask, window) == 1) & read_valid(self.mask, window)
            return selected[0] if selected.shape[0] == 1 else selected
        return ~read_valid(self.gaps, window) & read_valid(self.reference, window)

    def shrunk(self, width: int, height: int) -> _Inputs:
        def small(dataset: gdal.Dataset | None) -> gdal.Dataset | None:
            return None if dataset is None else shrink(dataset, width, height)

        return _Inputs(
            small(self.reference), [small(d) for d in self.filled], small(self.mask),
            small(self.gaps),
        )


def _on_grid(
    path: str, grid: Grid, reference: Spread | None, bands: int, role: str, messages: list[str]
) -> gdal.Dataset:
    """An image aligned to the reference grid, with the reference's band count and scale (a
    fill in reflectance 0–1 scored against digital numbers would get a meaningless score)."""
    dataset = align_to_grid(path, grid, "nearest", role)
    if data_band_count(dataset) != bands:
        raise GapfillError(
            f"The {role} '{path}' has {data_band_count(dataset)} band(s) but the reference has "
            f"{bands}; compare images of the same product with the same bands in the same order."
        )
    check_same_scale(
        reference, sample_spread(dataset, list(range(1, bands + 1))), path, role, "reference"
    )
    if dataset.GetDescription() != str(path):  # a warped VRT, not the file itself
        messages.append(
            f"The {role} '{path}' is not on the reference grid: it was resampled to it (nearest "
            "neighbour) before being compared."
        )
    return dataset


def check_scaling_fits(spread: Spread | None, settings: EvaluationSettings, path: str) -> None:
    """Refuse a scaling that puts the reference far off the data range (reflectance 0–1
    divided by 10000, or digital numbers taken as stored): PSNR and SSIM would then be
    meaningless numbers, reported as if they were scores."""
    if spread is None:
        return
    low, high = settings.scaling.apply(np.array([spread.low, spread.high]))
    top = max(abs(low), abs(high))
    if settings.data_range / 1000 <= top <= 10 * settings.data_range:
        return
    raise GapfillError(
        f"The reference '{path}' holds values of {spread.text()} (1st to 99th percentile); "
        f"under the scaling '{settings.scaling.describe()}' they reach {top:.3g}, far from the "
        f"data range {settings.data_range:g} the scores are taken over. Choose the scaling "
        "that fits the values (e.g. 'Values as stored' for reflectance 0–1, the Sentinel-2 "
        "scaling for digital numbers 0–10000) or set the data range, and run again."
    )


def _open_mask(path: str, grid: Grid, bands: int) -> gdal.Dataset:
    mask = align_to_grid(path, grid, "nearest", "evaluation mask")
    count = data_band_count(mask)
    if count not in (1, bands):
        raise GapfillError(
            f"The evaluation mask '{path}' has {count} bands; give one band (1 = evaluate) or one "
            f"band per image band ({bands})."
        )
    return mask


def _ndvi_bands(names: list[str] | None) -> tuple[str, str] | None:
    if names is None:
        raise GapfillError(
            "The NDVI error needs to know which bands are red (B4) and near infrared (B8): the "
            "band descriptions do not say it. Give the Sentinel-2 band names in file order."
        )
    band_indices(names, list(NDVI_BANDS), "The NDVI error")
    return NDVI_BANDS


def rgb_bands(names: list[str] | None, bands: int) -> list[int]:
    """1-based bands of the quick-looks: B4, B3, B2 when known, else the first three (or one)."""
    if names is not None and all(band in names for band in RGB_BANDS):
        return [names.index(band) + 1 for band in RGB_BANDS]
    return [1, 2, 3] if bands >= 3 else [1, 1, 1]


def _sentinel2_names(descriptions: list[str], given: str) -> list[str] | None:
    """Sentinel-2 names of the bands, or None when they cannot be told (not an error here)."""
    try:
        return band_names(descriptions, given)
    except GapfillError:
        if given.strip():
            raise
        return None


def _same_file(path: str, other: str) -> bool:
    return os.path.exists(path) and os.path.exists(other) and os.path.samefile(path, other)


def evaluate_files(
    reference: str,
    filled: Sequence[FilledImage],
    *,
    evaluation_mask: str | None = None,
    gaps_input: str | None = None,
    settings: EvaluationSettings = EvaluationSettings(),
    progress: ProgressFn = no_progress,
    cancelled: CancelledFn = never_cancelled,
) -> Evaluation:
    """Metrics of every filled image on the evaluation pixels, and previews for the report."""
    if not filled:
        raise GapfillError("Give at least one filled image to evaluate.")
    names = [image.name for image in filled]
    if len(set(names)) != len(names):
        raise GapfillError(
            f"The filled images need different names to be told apart in the report (got "
            f"{', '.join(names)})."
        )
    if not settings.scaling.divisor > 0:
        raise GapfillError(
            f"The scaling divisor must be positive (got {settings.scaling.divisor:g}); e.g. "
            "10000 for Sentinel-2 DN, 1 for values as stored."
        )
    if evaluation_mask is None and gaps_input is None:
        raise GapfillError(
            "Give an evaluation mask (1 = evaluate, e.g. the one written by 'Simulate gaps', or a "
            "gap mask), or the input with gaps so that its no-data pixels are evaluated."
        )
    dataset = open_raster(reference, "reference")
    grid = Grid.of(dataset)
    descriptions = band_descriptions(dataset)
    bands = len(descriptions)
    s2_names = _sentinel2_names(descriptions, settings.band_names)
    ndvi = _ndvi_bands(s2_names) if settings.ndvi else None
    messages: list[str] = [
        f"The filled image '{image.name}' is the reference itself: its perfect score says "
        "nothing about a fill. Give the fill's output as the filled image."
        for image in filled if _same_file(image.path, reference)
    ]
    spread = sample_spread(dataset, list(range(1, bands + 1)))
    check_scaling_fits(spread, settings, reference)
    inputs = _Inputs(
        reference=dataset,
        filled=[
            _on_grid(image.path, grid, spread, bands, f"filled image '{image.name}'", messages)
            for image in filled
        ],
        mask=None if evaluation_mask is None else _open_mask(evaluation_mask, grid, bands),
        gaps=None if gaps_input is None else _on_grid(
            gaps_input, grid, spread, bands, "input with gaps", messages
        ),
    )
    ndvi_indices = None if ndvi is None else tuple(s2_names.index(band) for band in ndvi)
    accumulators = [
        MetricsAccumulator(
            bands, scaling=settings.scaling, data_range=settings.data_range,
            ndvi_bands=ndvi_indices,
        )
        for _ in filled
    ]
    selected = 0

    def read(window: Window):
        outer, inner = expand_window(window, SSIM_RADIUS, grid.width, grid.height)
        return (
            read_values(inputs.reference, outer),
            [read_values(image, outer) for image in inputs.filled],
            inputs.evaluation(outer),
            inner,
        )

    def compute(block) -> int:
        reference_values, filled_values, evaluation, inner = block
        for accumulator, values in zip(accumulators, filled_values, strict=True):
            accumulator.add(reference_values, values, evaluation, inner)
        core = crop(evaluation, inner)
        return int((core.any(axis=0) if core.ndim == 3 else core).sum())

    def write(_window: Window, count: int) -> None:
        nonlocal selected
        selected += count

    run_pipeline(
        iter_windows(grid.width, grid.height, settings.block_size),
        window_count(grid.width, grid.height, settings.block_size),
        read,
        compute,
        write,
        workers=1,  # one compute thread: the accumulators see the blocks one at a time
        progress=lambda fraction: progress(0.95 * fraction),
        cancelled=cancelled,
    )
    if selected == 0:
        source = evaluation_mask or f"the no-data of '{gaps_input}'"
        raise GapfillError(
            f"No pixel to evaluate: {source} selects no pixel where the reference has data. "
            "Give the mask of the pixels that were removed and whose true value is known "
            "(1 = evaluate), on the reference's area."
        )
    rgb = rgb_bands(s2_names, bands)
    previews = _previews(inputs, grid, settings, rgb)
    progress(1.0)
    return Evaluation(
        reference=reference,
        filled=list(filled),
        metrics=[accumulator.result() for accumulator in accumulators],
        band_labels=s2_names or [d or f"band {i + 1}" for i, d in enumerate(descriptions)],
        evaluation_source=(
            f"evaluation mask '{evaluation_mask}' (value 1)" if evaluation_mask
            else "no-data pixels of the input with gaps where the reference has data"
        ),
        evaluation_pixels=selected,
        settings=settings,
        ndvi_bands=ndvi,
        rgb_bands=rgb,
        previews=previews,
        gaps_input=gaps_input,
        messages=messages,
    )


def preview_shape(grid: Grid, size: int) -> tuple[int, int]:
    """(width, height) with the long side at most `size` pixels, aspect kept."""
    factor = max(grid.width, grid.height) / size
    if factor <= 1:
        return grid.width, grid.height
    return max(1, round(grid.width / factor)), max(1, round(grid.height / factor))


def _previews(
    inputs: _Inputs, grid: Grid, settings: EvaluationSettings, rgb: list[int]
) -> Previews:
    width, height = preview_shape(grid, settings.preview_size)
    small = inputs.shrunk(width, height)
    window = (0, 0, width, height)
    scale = settings.scaling.apply
    reference = scale(read_values(small.reference, window))
    evaluation = small.evaluation(window)
    evaluated = evaluation.any(axis=0) if evaluation.ndim == 3 else evaluation
    filled, errors, unfilled = [], [], []
    for dataset in small.filled:
        values = scale(read_values(dataset, window))
        with np.errstate(invalid="ignore"):
            error = np.abs(values - reference).mean(axis=0)
        missing = evaluated & np.isnan(values).any(axis=0)
        filled.append(values[[b - 1 for b in rgb]])
        errors.append(np.where(evaluated & ~missing, error, np.nan))
        unfilled.append(missing)
    gaps = None
    if small.gaps is not None:
        gaps = scale(read_values(small.gaps, window))[[b - 1 for b in rgb]]
    return Previews(
        reference=reference[[b - 1 for b in rgb]],
        gaps_input=gaps,
        filled=filled,
        errors=errors,
        unfilled=unfilled,
        evaluation=evaluated,
    )
