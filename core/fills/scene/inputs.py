"""Everything a scene fill reads, on the target grid, one window at a time."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

import numpy as np

from ...errors import GapfillError
from ...learned.onnx_session import LogFn, no_log
from ...raster.access import Window, crop, expand_window, read_bands
from ...raster.dates import resolve_dates
from ...raster.fill_engine import TargetImage, open_target, read_gaps
from ...raster.proximity import distance_to
from ...raster.value_range import (
    could_be_backscatter,
    looks_like_linear_backscatter,
    sample_spread,
)
from ..deep_image_prior import AuxiliarySource, open_auxiliary
from ..other_dates import OtherDate, open_other_dates
from ..temporal_interpolation import Observation


@dataclass
class SceneWindow:
    """One window of the scene: the target (float64, NaN where it has no data), its real gaps
    (no data or masked), the other dates as observations, SAR and DEM with their validity."""

    window: Window
    target: np.ndarray  # (bands, h, w)
    gap: np.ndarray  # (h, w) bool
    observations: list[Observation]
    sar: np.ndarray | None  # (channels, h, w), NaN where not valid
    dem: np.ndarray | None

    @property
    def shape(self) -> tuple[int, int]:
        return self.gap.shape

    @property
    def clear(self) -> np.ndarray:
        """Where the target is known and not a gap (nor in a source margin)."""
        return ~self.gap & np.isfinite(self.target).all(axis=0)

    def nearest(self, target_date: date, later: bool) -> np.ndarray:
        """Per pixel the nearest usable date on one side of `target_date` (bands, h, w), NaN
        where none: a model's before/after."""
        side = sorted(
            (o for o in self.observations if (o[0] > target_date) == later),
            key=lambda o: abs((o[0] - target_date).days),
        )
        composite = np.full(self.target.shape, np.nan)
        for _, data, usable in side:
            take = usable & np.isnan(composite[0])
            composite[:, take] = data[:, take]
        return composite

    def cropped(self, inner: Window) -> SceneWindow:
        """The part `inner` (relative to this window) of every array."""
        x, y, w, h = inner
        x0, y0, _, _ = self.window
        observations = [(when, crop(d, inner), crop(u, inner)) for when, d, u in self.observations]
        return SceneWindow(
            (x0 + x, y0 + y, w, h), crop(self.target, inner), crop(self.gap, inner),
            observations,
            None if self.sar is None else crop(self.sar, inner),
            None if self.dem is None else crop(self.dem, inner),
        )


@dataclass
class SceneInputs:
    """The opened scene: target and gap mask, other dates, SAR and DEM on the target grid.
    `source_margin`: clear pixels this close to a gap are read as unknown (hazy edges the gap
    mask missed, `haze_fringe`): no fill takes them as sources, and they are not gaps."""

    target: TargetImage
    target_date: date | None
    others: list[OtherDate]
    sar: AuxiliarySource | None
    dem: AuxiliarySource | None
    source_margin: int = 0

    @property
    def dated(self) -> bool:
        """Other dates with the target's date: what the temporal fills need."""
        return bool(self.others) and self.target_date is not None

    @property
    def roles(self) -> set[str]:
        """The card roles these layers can feed (for the bundled models)."""
        roles = set()
        if self.sar is not None:
            roles.add("sar")
        if self.target_date is not None and any(o.date < self.target_date for o in self.others):
            roles.add("optical_before")
        if self.target_date is not None and any(o.date > self.target_date for o in self.others):
            roles.add("optical_after")
        if self.dem is not None:
            roles.add("dem")
        return roles

    def read(self, window: Window) -> SceneWindow:
        raw, known, gap, fringe = self._read_target(window)
        target = raw.astype(np.float64)
        target[:, ~known | fringe] = np.nan
        observations = [(other.date, *other.read(window)) for other in self.others]
        return SceneWindow(
            window, target, gap, observations, _auxiliary(self.sar, window),
            _auxiliary(self.dem, window),
        )

    def read_clear(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """The target's bands over `window` and the pixels fills take as sources (for the
        pyramid's coarse levels)."""
        raw, _, gap, fringe = self._read_target(window)
        return raw, ~gap & ~fringe

    def _read_target(self, window: Window) -> tuple[np.ndarray, ...]:
        """The target's bands over `window`, where it has data, its gaps, and its clear pixels
        within `source_margin` of a gap (read with that margin around the window, so that a gap
        just outside it counts)."""
        grid = self.target.grid
        outer, inner = expand_window(window, self.source_margin, grid.width, grid.height)
        raw = read_bands(self.target.dataset, outer)
        known, gap = read_gaps(self.target, outer, raw)
        near = distance_to(gap) <= self.source_margin if self.source_margin > 0 else gap
        raw, known, gap, near = (crop(array, inner) for array in (raw, known, gap, near))
        return raw, known, gap, near & ~gap


def open_scene(
    target_path: str,
    mask_path: str | None = None,
    *,
    other_paths: list[str] | None = None,
    other_masks: list[str] | None = None,
    dates: str | None = None,
    sar_path: str | None = None,
    dem_path: str | None = None,
    log: LogFn = no_log,
) -> SceneInputs:
    """Open the target, its gap mask and every other layer on the target grid; dates come from
    `dates` (target first) or the files, and are needed only with other dates."""
    other_paths = other_paths or []
    target = open_target(target_path, mask_path)
    target_date, others = None, []
    if other_paths:
        when = resolve_dates([target_path, *other_paths], dates)
        target_date = when[0]
        others = open_other_dates(target, other_paths, when[1:], other_masks)
    sar = open_auxiliary(target, [sar_path], label="SAR image")[0] if sar_path else None
    sar = _sar_in_db(sar, log) if sar is not None else None
    dem = open_auxiliary(target, [dem_path], label="elevation model")[0] if dem_path else None
    if dem is not None and dem.bands != 1:  # an optical image given as the DEM, most likely
        raise GapfillError(
            f"The elevation model '{dem.path}' has {dem.bands} bands; an elevation model has "
            "one (heights). Give a one-band DEM (or take its band with gdal_translate -b 1)."
        )
    return SceneInputs(target, target_date, others, sar, dem)


def _sar_in_db(sar: AuxiliarySource, log: LogFn) -> AuxiliarySource:
    """The SAR as the network and the bundled models read it, in dB: linear backscatter is
    converted (and said), as the model fill does."""
    spread = sample_spread(sar.dataset, list(range(1, sar.bands + 1)))
    if spread is not None and not could_be_backscatter(spread):
        raise GapfillError(
            f"The SAR image '{sar.path}' holds values of {spread.text()}: neither backscatter "
            "in dB (about −40 to +10) nor linear backscatter (0 to about 1); an optical image "
            "given as the SAR, most likely. Give the Sentinel-1 image of the target's date "
            "(VV, VH), or leave SAR empty."
        )
    if spread is None or not looks_like_linear_backscatter(spread):
        return sar
    log(
        f"The SAR image '{sar.path}' holds values of {spread.text()}, linear backscatter: "
        "read as dB (10·log10); zero or negative backscatter has no dB value and counts as "
        "no data."
    )
    return replace(sar, linear_to_db=True)


def _auxiliary(source: AuxiliarySource | None, window: Window) -> np.ndarray | None:
    if source is None:
        return None
    data, usable = source.read(window)
    data[:, ~usable] = np.nan
    return data
