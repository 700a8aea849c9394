"""The fills a job can run, one `JobMethod` entry each: its options with their defaults (those
of the command line and the Processing algorithms), the inputs it needs, the core call, and
whether it fills a tile of a mosaic exactly as the whole image (fills on the shared block
engine, `raster.fill_engine`, whose region is then the tile).

Adding a fill is one entry in `METHODS`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from ..errors import GapfillError
from ..learned.onnx_session import LogFn, no_log
from ..progress import CancelledFn, ProgressFn, never_cancelled, no_progress
from ..raster.access import Window
from ..raster.fill_engine import FillReport, TargetImage

if TYPE_CHECKING:
    from .jobs import Job

Facts = dict[str, Any]


@dataclass(frozen=True)
class Hooks:
    """Progress, cancel and log of one task."""

    progress: ProgressFn = no_progress
    cancelled: CancelledFn = never_cancelled
    log: LogFn = no_log

    def calls(self, log: bool = True) -> dict[str, Any]:
        """The keyword arguments of a core call."""
        calls = {"progress": self.progress, "cancelled": self.cancelled}
        return calls | {"log": self.log} if log else calls


FillCall = Callable[["Job", str, "Window | None", Hooks], tuple[FillReport, Facts]]
INPUTS = ("other_dates", "other_masks", "sar", "dem")


@dataclass(frozen=True)
class JobMethod:
    """One fill a job may name. `run(job, output, region, hooks)` writes `output` (with a
    region: only that window of the target's grid, for a method that `tiles`)."""

    name: str
    help: str
    run: FillCall
    defaults: Mapping[str, Any] = field(default_factory=dict)
    needs: tuple[str, ...] = ()  # inputs that must be given
    uses: tuple[str, ...] = ()  # inputs that may be given
    tiles: bool = False
    builds_own_masks: bool = False  # builds the masks it needs itself ("build" is then None)
    stack_mask: bool = False  # its mask is a stack of one band per date: never built

    def check(self, job: Job) -> None:
        """Refuse a job without the inputs this fill needs, or with inputs it would ignore."""
        for name in self.needs:
            if not getattr(job, name):
                raise GapfillError(f"the method '{self.name}' needs {name.replace('_', ' ')}.")
        for name in INPUTS:
            if getattr(job, name) and name not in self.needs + self.uses:
                raise GapfillError(
                    f"the method '{self.name}' does not use {name.replace('_', ' ')} (methods "
                    f"that do: {', '.join(m.name for m in METHODS.values() if m.reads(name))})."
                )
        if self.stack_mask and job.mask == "build":
            raise GapfillError(
                f"the method '{self.name}' takes a gap-mask stack (one band per date); "
                "'build' makes masks of single images. Give the stack, or no mask."
            )

    def reads(self, name: str) -> bool:
        return name in self.needs + self.uses


def parse_options(method: JobMethod, text: str) -> dict[str, Any]:
    """`name=value; …` into the method's options, typed like their defaults, the others at
    their defaults. Names may be written with dashes as on the command line."""
    options = dict(method.defaults)
    for item in filter(None, (part.strip() for part in text.split(";"))):
        name, equals, value = (part.strip() for part in item.partition("="))
        name = name.replace("-", "_")
        if not equals or name not in options:
            known = ", ".join(f"{key}={value}" for key, value in method.defaults.items())
            raise GapfillError(
                f"'{item}' is not an option of the method '{method.name}' "
                f"({known or 'it has none'}); write options as name=value; name=value."
            )
        options[name] = typed(value, method.defaults[name], name)
    return options


def typed(text: str, default: Any, name: str) -> Any:
    kind = type(default)
    try:
        if kind is bool:
            if text.lower() not in ("true", "false", "yes", "no", "1", "0"):
                raise ValueError(text)
            return text.lower() in ("true", "yes", "1")
        return kind(text)
    except ValueError as error:
        wanted = {bool: "true or false", int: "a whole number", float: "a number"}
        raise GapfillError(
            f"The option {name}={text} is not {wanted.get(kind, kind.__name__)} "
            f"(default: {default})."
        ) from error


# --- the fills ----------------------------------------------------------------------------------


def on_region(target: TargetImage, region: Window | None) -> TargetImage:
    return dataclasses.replace(target, region=region)


def temporal_inputs(job: Job, region: Window | None):
    from ..fills.other_dates import open_temporal_inputs

    target, target_date, others = open_temporal_inputs(
        job.target, job.mask, list(job.other_dates), list(job.other_masks) or None,
        job.options["dates"],
    )
    dates = [str(target_date), *(str(other.date) for other in others)]
    return on_region(target, region), target_date, others, {"dates": dates}


def temporal_fill(job: Job, output: str, region: Window | None, hooks: Hooks):
    from ..fills.temporal_interpolation import fill_by_temporal_interpolation

    target, target_date, others, facts = temporal_inputs(job, region)
    report = fill_by_temporal_interpolation(
        target, target_date, others, output, **hooks.calls(log=False)
    )
    return report, facts


def histogram_fill(job: Job, output: str, region: Window | None, hooks: Hooks):
    from ..fills.histogram_matched_fill import fill_by_histogram_matching

    target, target_date, others, facts = temporal_inputs(job, region)
    report = fill_by_histogram_matching(
        target, target_date, others, output, radius=job.options["window_radius"],
        min_pixels=job.options["min_pixels"], weighted=job.options["weighted"],
        regression=job.options["regression"], **hooks.calls(log=False),
    )
    return report, facts


def similar_fill(job: Job, output: str, region: Window | None, hooks: Hooks):
    from ..fills.similar_pixels import fill_by_similar_pixels

    target, _, others, facts = temporal_inputs(job, region)
    report = fill_by_similar_pixels(target, others, output, **hooks.calls(log=False))
    return report, facts


def spatial_fill(job: Job, output: str, region: Window | None, hooks: Hooks):
    from ..fills.spatial_fill import fill_spatially
    from ..raster.fill_engine import open_target

    target = on_region(open_target(job.target, job.mask), region)
    report = fill_spatially(
        target, output, max_distance=job.options["max_distance"],
        smoothing=job.options["smoothing"], **hooks.calls(log=False),
    )
    return report, {}


def pyramid_fill(job: Job, output: str, region: Window | None, hooks: Hooks):
    from ..fills.pyramid_fill import fill_by_pyramid
    from ..raster.fill_engine import open_target

    target = on_region(open_target(job.target, job.mask), region)
    report = fill_by_pyramid(
        target, output, max_distance=job.options["max_distance"], **hooks.calls(log=False)
    )
    return report, {}


def model_roles(job: Job) -> dict[str, str]:
    """The card's roles from the job: SAR, DEM, and of the other dates the nearest before and
    the nearest after the target's date."""
    roles = {"sar": job.sar, "dem": job.dem}
    if job.other_dates:
        from ..raster.dates import resolve_dates

        target_date, *dates = resolve_dates([job.target, *job.other_dates], job.options["dates"])

        def nearest(side: Callable[[date], bool]) -> str | None:
            found = [(abs((when - target_date).days), path)
                     for when, path in zip(dates, job.other_dates, strict=True) if side(when)]
            return min(found)[1] if found else None

        roles["optical_before"] = nearest(lambda when: when < target_date)
        roles["optical_after"] = nearest(lambda when: when > target_date)
    return {role: path for role, path in roles.items() if path}


def model_fill(job: Job, output: str, _region: Window | None, hooks: Hooks):
    from ..learned.onnx_fill_raster import fill_raster_with_model, parse_band_mapping

    options, roles = job.options, model_roles(job)
    model = options["model"]
    if not model:
        from ..learned.bundled_models import choose_bundled_model
        from ..raster.access import data_band_count, open_raster

        bands = data_band_count(open_raster(job.target, "target image"))
        chosen = choose_bundled_model(set(roles), bands)
        hooks.log(chosen.choice_messages()[0])
        model = str(chosen.path)
    report = fill_raster_with_model(
        model, job.target, output, roles, gap_mask_path=job.mask,
        band_mapping=parse_band_mapping(options["band_mapping"]),
        tile_size=options["tile_size"] or None,
        margin=None if options["margin"] < 0 else options["margin"],
        batch_size=options["batch_size"], device=options["device"],
        full_reconstruction=options["full_reconstruction"], **hooks.calls(),
    )
    return report, {"model": model, "roles": roles}


def scene_fill(job: Job, output: str, _region: Window | None, hooks: Hooks):
    """The scene-adaptive fill: learns on the scene itself, builds the masks not given."""
    from ..fills.scene.fill_scene import SceneSettings, budget_setting, margin_setting
    from ..fills.scene.run import fill_scene_files

    options = job.options
    settings = SceneSettings(
        budget_minutes=budget_setting(options["budget_minutes"]),
        max_steps=options["max_steps"] or None,
        seed=options["seed"], device=options["device"], bundled=options["bundled"],
        adapt=options["adapt"], source_margin=margin_setting(options["source_margin"]),
    )
    result = fill_scene_files(
        job.target, output, gap_mask=job.mask, other_dates=list(job.other_dates),
        other_masks=list(job.other_masks), dates=options["dates"] or None, sar=job.sar,
        dem=job.dem, settings=settings, **hooks.calls(),
    )
    return result.fill, {"chosen": result.chosen}


def time_series_fill(smoother: str) -> FillCall:
    def fill(job: Job, output: str, _region: Window | None, hooks: Hooks):
        from ..fills.timeseries_fill import fill_time_series

        rasters = [job.target, *job.other_dates]
        report = fill_time_series(
            rasters[0] if len(rasters) == 1 else rasters, output, method=smoother,
            mask_path=job.mask, lam=job.options.get("lam", 10.0),
            use_dates=not job.options["equal_spacing"], block=job.options["block"],
            **hooks.calls(),
        )
        return report, {}

    return fill


TEMPORAL = {"dates": ""}
MODEL = {"model": "", "band_mapping": "", "tile_size": 0, "margin": -1, "batch_size": 0,
         "device": "auto", "full_reconstruction": False, "dates": ""}
SERIES = {"equal_spacing": False, "block": 256}
SCENE = {"dates": "", "budget_minutes": 5.0, "max_steps": 0, "seed": 0, "device": "auto",
         "bundled": True, "adapt": True, "source_margin": -1}
# SceneSettings' defaults; max_steps 0: no limit; source_margin -1: measured

METHODS: dict[str, JobMethod] = {
    method.name: method
    for method in (
        JobMethod("temporal", "temporal linear interpolation from other dates", temporal_fill,
                  TEMPORAL, needs=("other_dates",), uses=("other_masks",), tiles=True),
        JobMethod("histogram", "the nearest clear date with local histogram matching "
                  "(weighted=true: every clear date, weighted by its fit; regression=true: "
                  "the nearest date's local linear regression)", histogram_fill,
                  TEMPORAL | {"window_radius": 15, "min_pixels": 50, "weighted": False,
                              "regression": False},
                  needs=("other_dates",), uses=("other_masks",), tiles=True),
        JobMethod("spatial", "inverse distance from the gap edges (GDAL FillNodata)",
                  spatial_fill, {"max_distance": 100, "smoothing": 0}, tiles=True),
        JobMethod("pyramid", "pyramid interpolation (pull-push)", pyramid_fill,
                  {"max_distance": 100}, tiles=True),
        JobMethod("model", "an ONNX model (SAR, the nearest other dates, DEM as its card asks)",
                  model_fill, MODEL, uses=("other_dates", "sar", "dem")),
        JobMethod("scene", "the scene-adaptive fill (learns on the scene, reports its quality)",
                  scene_fill, SCENE, uses=("other_dates", "other_masks", "sar", "dem"),
                  builds_own_masks=True),
        JobMethod("timeseries", "a time series (target and other dates, or one stack), linear",
                  time_series_fill("linear"), SERIES, uses=("other_dates",), stack_mask=True),
        JobMethod("whittaker", "a time series with the Whittaker smoother", time_series_fill(
                  "whittaker"), SERIES | {"lam": 10.0}, uses=("other_dates",), stack_mask=True),
        # last: Processing's enum of the default method keeps its earlier indices
        JobMethod("similar", "every clear date through similar pixels (a date's value plus the "
                  "change of the pixels most like it on that date)", similar_fill, TEMPORAL,
                  needs=("other_dates",), uses=("other_masks",), tiles=True),
    )
}
