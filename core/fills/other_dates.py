"""Images of other dates, aligned to the target grid, with their own gaps."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
from osgeo import gdal

from ..errors import GapfillError
from ..learned.onnx_session import LogFn, no_log
from ..masks.gap_mask import MaskSettings, build_gap_mask
from ..progress import CancelledFn, ProgressFn, never_cancelled, no_progress
from ..raster.access import (
    Window,
    band_descriptions,
    data_band_count,
    open_raster,
    read_bands,
    read_valid,
)
from ..raster.alignment import align_to_grid
from ..raster.dates import resolve_dates
from ..raster.fill_engine import TargetImage, check_mask, open_target
from ..raster.sentinel2_bands import band_names
from ..raster.validity import BandMasks
from ..raster.value_range import check_same_scale, sample_spread


@dataclass
class OtherDate:
    """One other-date image on the target grid; `usable` pixels have data and are not gaps."""

    path: str
    date: date
    dataset: gdal.Dataset
    mask: gdal.Dataset | None
    band_masks: BandMasks

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        raw = read_bands(self.dataset, window)
        usable = self.band_masks.valid(window, raw).all(axis=0)
        data = raw.astype(np.float64)
        if self.mask is not None:
            x, y, w, h = window
            usable &= self.mask.GetRasterBand(1).ReadAsArray(x, y, w, h) == 0
            usable &= read_valid(self.mask, window)
        return data, usable


def open_other_dates(
    target: TargetImage, paths: list[str], dates: list[date], mask_paths: list[str] | None = None
) -> list[OtherDate]:
    """Align every other-date image (bilinear) and its mask (nearest) to the target grid."""
    masks = mask_paths or []
    if masks and len(masks) != len(paths):
        raise GapfillError(
            f"{len(masks)} gap masks were given for {len(paths)} other-date images. Give one mask "
            "per image, in the same order, or none."
        )
    others = []
    band_numbers = list(range(1, target.bands + 1))
    target_spread = sample_spread(target.dataset, band_numbers)
    for index, (path, when) in enumerate(zip(paths, dates, strict=True)):
        if Path(path).resolve() == Path(target.path).resolve():
            raise GapfillError(
                f"The other-date image '{path}' is the target itself: it has no values for the "
                "target's gaps. Give images of the same place taken on other dates."
            )
        dataset = align_to_grid(path, target.grid, "bilinear", f"other-date image {index + 1}")
        bands = data_band_count(dataset)
        if bands != target.bands:
            raise GapfillError(
                f"The other-date image '{path}' has {bands} bands but the target has "
                f"{target.bands}. Give images of the same product with the same bands."
            )
        role = f"other-date image {index + 1}"
        check_same_scale(target_spread, sample_spread(open_raster(path, role), band_numbers), path,
                         role, "target")
        mask = None
        if masks and masks[index]:
            mask = align_to_grid(masks[index], target.grid, "nearest", f"gap mask {index + 1}")
            check_mask(mask, masks[index])
        others.append(OtherDate(path, when, dataset, mask, BandMasks(dataset)))
    return others


def open_temporal_inputs(
    target_path: str,
    mask_path: str | None,
    paths: list[str],
    mask_paths: list[str] | None = None,
    dates_text: str = "",
) -> tuple[TargetImage, date, list[OtherDate]]:
    """The target, its date and the other dates on its grid, for a fill from other dates:
    dates from `dates_text` (target first) or from each file."""
    dates = resolve_dates([target_path, *paths], dates_text)
    target = open_target(target_path, mask_path)
    return target, dates[0], open_other_dates(target, paths, dates[1:], mask_paths)


def check_temporal_inputs(
    target_path: str, mask_path: str | None, paths: list[str], dates_text: str = ""
) -> None:
    """Every check of the target and the other dates (place, bands, scale, dates), made before
    the other dates' masks are built: that takes minutes on a tile, and a date on another
    scale or place was refused only after it."""
    open_temporal_inputs(target_path, mask_path, paths, None, dates_text)


def build_other_date_masks(
    paths: list[str],
    settings: MaskSettings,
    folder: str | Path,
    *,
    progress: ProgressFn = no_progress,
    cancelled: CancelledFn = never_cancelled,
    log: LogFn = no_log,
) -> list[str]:
    """Gap masks of the other dates, built as Build gap mask builds them, each on its image's
    own grid (they are aligned to the target's when the dates are opened), into `folder`.

    With "automatic", an image whose bands are not Sentinel-2 bands gets no mask (every valid
    pixel is used), said in the log; any other method asked for fails on it with its reason.
    """
    masks = []
    for index, path in enumerate(paths):
        if settings.method == "automatic":
            try:
                band_names(band_descriptions(open_raster(path, "other-date image")),
                           settings.band_names)
            except GapfillError as error:
                log(f"Warning: no gap mask for '{path}' ({error}): all its valid pixels are used.")
                masks.append("")
                continue
        output = Path(folder) / f"other_date_mask_{index + 1}.tif"
        report = build_gap_mask(
            path,
            output,
            settings,
            progress=lambda f, i=index: progress((i + f) / len(paths)),
            cancelled=cancelled,
            log=log,
            role=f"other-date image {index + 1}",
        )
        log(f"Gap mask of '{path}': {100 * report.gap_fraction:.1f} % gaps ({report.method}).")
        masks.append(str(output))
    return masks
