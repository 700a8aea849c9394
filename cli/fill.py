"""`gapfill fill METHOD IMAGE -o OUTPUT`: the fills of the Fill group, one sub-command each.

A method is one `FillMethod`: its options and the core call that writes the output. Adding
one is a function adding its options, a function making the core call, and one more entry in
`METHODS`; the target, its gap mask, the output checks, the progress bar, the pixel counts,
`--json` and the errors are shared. The methods are those of the Fill group: temporal,
spatial, model, and scene (Fill gaps, learned from this scene).
"""

from __future__ import annotations

import argparse
import functools
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.fills.pyramid_fill import fill_by_pyramid
from ..core.fills.spatial_fill import fill_spatially
from ..core.progress import CancelledFn, ProgressFn
from ..core.raster.fill_engine import FillReport, open_target
from .options import DEVICES, budget, check_output, margin, non_negative, positive
from .session import Session

Facts = dict[str, Any]  # what the result says beyond the pixel counts (dates, model used)
Call = Callable[[argparse.Namespace, Session, ProgressFn, CancelledFn], tuple[FillReport, Facts]]


@dataclass(frozen=True)
class FillMethod:
    """One fill: `add_arguments` adds its own options; `fill` runs it into `arguments.output`
    and returns its report and facts; `inputs` lists the rasters it reads besides the image
    and its gap mask (the output may never overwrite one)."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    fill: Call
    inputs: Callable[[argparse.Namespace], list[str]] = lambda _arguments: []
    outputs: Callable[[argparse.Namespace], list[str]] = lambda _arguments: []  # besides -o
    gap_mask_default: str = "the image's no-data"


# --- from other dates -------------------------------------------------------------------------


def temporal_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--other-dates", nargs="+", required=True, metavar="RASTER",
        help="images of the same place at other dates (any CRS, resolution or extent)",
    )
    parser.add_argument(
        "--other-masks", nargs="+", default=[], metavar="MASK",
        help="gap masks of the other dates, in the same order (default: built with "
        "--other-mask-method)",
    )
    parser.add_argument(
        "--other-mask-method", choices=("automatic", "none", "spectral", "ukis", "s2cloudless"),
        default="automatic",
        help="how the other dates' gap masks are built when not given, as `gapfill mask` "
        "builds them; none: every valid pixel is used (default: %(default)s)",
    )
    parser.add_argument(
        "--method", choices=("interpolation", "histogram", "weighted", "regression", "similar"),
        default="interpolation",
        help="temporal linear interpolation; the nearest clear date with local histogram "
        "matching; every clear date so matched, weighted by its fit to the target around "
        "the gap; the nearest clear date with local linear regression; or every clear date "
        "through similar pixels (a date's value plus the change of the pixels most like it "
        "on that date; needs scipy) (default: %(default)s)",
    )
    parser.add_argument(
        "--dates", default="",
        help="dates, target first (e.g. '2018-05-06, 2018-04-26'); default: from each file",
    )
    parser.add_argument(
        "--edge-correction", action="store_true",
        help="correct the fill to the clear pixels around each gap (their difference to the "
        "fill, interpolated into the gap)",
    )
    parser.add_argument("--window-radius", type=positive, default=15,
                        help="histogram matching window radius in pixels (default: %(default)s)")
    parser.add_argument("--min-pixels", type=positive, default=50,
                        help="histogram matching: minimum common clear pixels in a window "
                        "(default: %(default)s)")


def temporal_fill(
    arguments: argparse.Namespace, session: Session, progress: ProgressFn, cancelled: CancelledFn
) -> tuple[FillReport, Facts]:
    from ..core.fills.histogram_matched_fill import fill_by_histogram_matching
    from ..core.fills.other_dates import (
        build_other_date_masks,
        check_temporal_inputs,
        open_temporal_inputs,
    )
    from ..core.fills.similar_pixels import fill_by_similar_pixels
    from ..core.fills.temporal_interpolation import fill_by_temporal_interpolation
    from ..core.masks.gap_mask import MaskSettings

    masks = arguments.other_masks
    with tempfile.TemporaryDirectory(prefix="gapfill-other-masks-") as scratch:
        if not masks and arguments.other_mask_method != "none":
            check_temporal_inputs(
                arguments.image, arguments.gap_mask, arguments.other_dates, arguments.dates
            )
            session.info("No gap masks of the other dates given: building them.")
            masks = build_other_date_masks(
                arguments.other_dates, MaskSettings(arguments.other_mask_method), scratch,
                cancelled=cancelled, log=session.info,
            )
        target, target_date, others = open_temporal_inputs(
            arguments.image, arguments.gap_mask, arguments.other_dates, masks, arguments.dates
        )
        dates = [str(target_date), *(str(other.date) for other in others)]
        session.info(f"Target date {dates[0]}; other dates: {', '.join(dates[1:])}.")
        common = dict(
            edge_correction=arguments.edge_correction, progress=progress, cancelled=cancelled
        )
        if arguments.method == "interpolation":
            report = fill_by_temporal_interpolation(
                target, target_date, others, arguments.output, **common
            )
        elif arguments.method == "similar":
            report = fill_by_similar_pixels(target, others, arguments.output, **common)
        else:
            report = fill_by_histogram_matching(
                target, target_date, others, arguments.output, radius=arguments.window_radius,
                min_pixels=arguments.min_pixels, weighted=arguments.method == "weighted",
                regression=arguments.method == "regression", **common,
            )
        del target, others  # close the masks' datasets before their folder goes
    return report, {"dates": dates}


# --- spatial ----------------------------------------------------------------------------------


def spatial_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--method", choices=("idw", "pyramid"), default="pyramid",
        help="pyramid interpolation (pull-push, better on large gaps: BENCHMARKS.md) or "
        "inverse distance from the gap edges (GDAL FillNodata) (default: %(default)s)",
    )
    parser.add_argument("--max-distance", type=positive, default=100,
                        help="pixels farther than this from any clear pixel stay no-data "
                        "(default: %(default)s)")
    parser.add_argument("--smoothing", type=non_negative, default=0,
                        help="smoothing passes of inverse distance (default: %(default)s)")


def spatial_fill(
    arguments: argparse.Namespace, _session: Session, progress: ProgressFn, cancelled: CancelledFn
) -> tuple[FillReport, Facts]:
    target = open_target(arguments.image, arguments.gap_mask)
    common = dict(max_distance=arguments.max_distance, progress=progress, cancelled=cancelled)
    if arguments.method == "pyramid":
        return fill_by_pyramid(target, arguments.output, **common), {}
    return fill_spatially(target, arguments.output, smoothing=arguments.smoothing, **common), {}


# --- with a model -----------------------------------------------------------------------------

ROLE_OPTIONS = (
    ("sar", "sar", "SAR image at the target's date (e.g. Sentinel-1 VV, VH)"),
    ("before", "optical_before", "optical image of an earlier date"),
    ("after", "optical_after", "optical image of a later date"),
    ("dem", "dem", "digital elevation model"),
)


def model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="",
                        help="ONNX model with a Gapfill card (default: the bundled model that "
                        "fits the layers given)")
    for option, _, text in ROLE_OPTIONS:
        parser.add_argument(f"--{option}", metavar="RASTER", help=text)
    parser.add_argument("--band-mapping", default="",
                        help="1-based bands per role when band descriptions do not name the "
                        "card's bands, e.g. 'sar: 1, 2'")
    parser.add_argument("--tile-size", type=non_negative, default=0,
                        help="tile size in pixels (0 = the model's recommendation)")
    parser.add_argument("--margin", type=int, default=-1,
                        help="context margin in pixels (-1 = the model's)")
    parser.add_argument("--batch-size", type=non_negative, default=0,
                        help="tiles per batch (0 = 1 on the CPU, 4 on the GPU)")
    parser.add_argument("--device", choices=DEVICES, default="auto",
                        help="CUDA when available with auto (default: %(default)s)")
    parser.add_argument("--full-reconstruction", action="store_true",
                        help="replace every pixel, not only the gaps")


def roles(arguments: argparse.Namespace) -> dict[str, str]:
    return {
        role: getattr(arguments, option)
        for option, role, _ in ROLE_OPTIONS
        if getattr(arguments, option)
    }


def model_fill(
    arguments: argparse.Namespace, session: Session, progress: ProgressFn, cancelled: CancelledFn
) -> tuple[FillReport, Facts]:
    from ..core.learned.baselines import fill_messages
    from ..core.learned.model_card import read_card
    from ..core.learned.onnx_fill_raster import fill_raster_with_model, parse_band_mapping
    from ..core.raster.access import data_band_count, open_raster

    model = arguments.model
    if not model:
        from ..core.learned.bundled_models import choose_bundled_model

        bands = data_band_count(open_raster(arguments.image, "target image"))
        chosen = choose_bundled_model(set(roles(arguments)), bands)
        session.info(chosen.choice_message())
        model = str(chosen.path)
    described, warnings = fill_messages(read_card(model).validation_metrics, roles(arguments))
    if described:
        session.info(described)
    for warning in warnings:
        session.warn(warning)
    report = fill_raster_with_model(
        model,
        arguments.image,
        arguments.output,
        roles(arguments),
        gap_mask_path=arguments.gap_mask,
        band_mapping=parse_band_mapping(arguments.band_mapping),
        tile_size=arguments.tile_size or None,
        margin=None if arguments.margin < 0 else arguments.margin,
        batch_size=arguments.batch_size,
        device=arguments.device,
        full_reconstruction=arguments.full_reconstruction,
        progress=progress,
        cancelled=cancelled,
        log=session.info,
    )
    return report, {"model": model}


# --- learned from this scene ------------------------------------------------------------------


def scene_arguments(parser: argparse.ArgumentParser) -> None:
    from ..core.fills.scene.fill_scene import DEFAULT_SETTINGS as DEFAULT

    parser.add_argument("--other-dates", nargs="+", default=[], metavar="RASTER",
                        help="images of the same place at other dates (optional)")
    parser.add_argument("--other-masks", nargs="+", default=[], metavar="MASK",
                        help="gap masks of the other dates, in the same order (default: built)")
    parser.add_argument("--dates", default="",
                        help="dates, target first (default: from each file)")
    parser.add_argument("--sar", metavar="RASTER", help="SAR image at the target's date")
    parser.add_argument("--dem", metavar="RASTER", help="digital elevation model")
    parser.add_argument("--budget", type=budget, default=DEFAULT.budget_minutes,
                        help="time budget for learning, minutes; the final fill comes on top "
                        "(default: %(default)s)")
    parser.add_argument("--device", choices=DEVICES, default=DEFAULT.device,
                        help="for the networks (default: %(default)s)")
    parser.add_argument("--seed", type=non_negative, default=DEFAULT.seed,
                        help="random seed (default: %(default)s)")
    parser.add_argument("--max-steps", type=non_negative, default=0,
                        help="training steps at most; with a seed, the same result every run on "
                        "the CPU (0 = until the budget or no progress)")
    parser.add_argument("--windows", type=positive, default=DEFAULT.windows,
                        help="validation windows of 512 px in large scenes (default: %(default)s)")
    parser.add_argument("--no-bundled", action="store_true",
                        help="the bundled models do not compete")
    parser.add_argument("--source-margin", type=margin, default=-1, metavar="PX",
                        help="clear pixels this close to a gap that no fill reads (-1: as far "
                        "as haze is measured around the gaps; 0: none; default: %(default)s)")
    parser.add_argument("--no-adapt", action="store_true",
                        help="no network adapted to the scene (no torch needed)")
    parser.add_argument("--start-network", metavar="FILE",
                        help="start the adapted network from this one (a .pt saved by an "
                        "earlier run on a neighbouring scene of the same date)")
    parser.add_argument("--save-network", metavar="FILE",
                        help="save the adapted network with its card to this .pt file")
    parser.add_argument("--confidence", metavar="RASTER",
                        help="also write the confidence layer (expected absolute error, 90 %% "
                        "upper bound) to this GeoTIFF")
    parser.add_argument("--report", metavar="FOLDER",
                        help="also write the HTML and JSON report into this folder")


def scene_outputs(arguments: argparse.Namespace) -> list[str]:
    from ..core.fills.scene.report import JSON_NAME

    report = [str(Path(arguments.report) / JSON_NAME)] if arguments.report else []
    return [*filter(None, [arguments.confidence, arguments.save_network]), *report]


def scene_fill(
    arguments: argparse.Namespace, session: Session, progress: ProgressFn, cancelled: CancelledFn
) -> tuple[FillReport, Facts]:
    from ..core.fills.scene.fill_scene import SceneSettings, margin_setting
    from ..core.fills.scene.report import report_document
    from ..core.fills.scene.run import fill_scene_files

    settings = SceneSettings(
        budget_minutes=arguments.budget, max_steps=arguments.max_steps or None,
        seed=arguments.seed, device=arguments.device, windows=arguments.windows,
        bundled=not arguments.no_bundled, adapt=not arguments.no_adapt,
        source_margin=margin_setting(arguments.source_margin),
    )
    result = fill_scene_files(
        arguments.image, arguments.output, gap_mask=arguments.gap_mask,
        other_dates=arguments.other_dates, other_masks=arguments.other_masks,
        dates=arguments.dates, sar=arguments.sar, dem=arguments.dem, settings=settings,
        report_folder=arguments.report, confidence_output=arguments.confidence,
        start_network=arguments.start_network, save_network_to=arguments.save_network,
        progress=progress, cancelled=cancelled, log=session.info,
    )
    for note in result.notes:
        session.warn(note)
    document = report_document(result, {})
    facts = {key: document[key] for key in SCENE_FACTS}
    return result.fill, facts | {"confidence_output": result.confidence_layer,
                                 "report_folder": arguments.report,
                                 "saved_network": arguments.save_network}


# what the JSON result tells of the scene fill (the report's JSON has it all, with the protocol)
SCENE_FACTS = ("chosen", "best_classical", "candidates", "summary", "pixels", "windows",
               "scaling", "network", "confidence", "source_margin")


METHODS = (
    FillMethod(
        "temporal", "from images of other dates (classical)", temporal_arguments, temporal_fill,
        lambda arguments: [*arguments.other_dates, *arguments.other_masks],
    ),
    FillMethod(
        "spatial", "from the clear pixels around the gaps (classical)", spatial_arguments,
        spatial_fill,
    ),
    FillMethod(
        "model", "with an ONNX model (SAR, other dates, DEM as its card asks)", model_arguments,
        model_fill, lambda arguments: list(roles(arguments).values()),
    ),
    FillMethod(
        "scene", "by the fill that works best on this scene, self-validated (learned from it)",
        scene_arguments, scene_fill,
        lambda arguments: [*arguments.other_dates, *arguments.other_masks, arguments.sar,
                           arguments.dem, arguments.start_network],
        scene_outputs, "built as `gapfill mask` builds it (the automatic method) for a "
        "Sentinel-2 image, else its no-data",
    ),
)


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    fill = commands.add_parser(
        "fill", help="fill the gaps of an image",
        description="Fill the gap pixels of an image; clear pixels are copied bit-exactly and "
        "gaps no source covers stay no-data. The output is a tiled, compressed GeoTIFF on the "
        "image's grid, written only when complete.",
    )
    methods = fill.add_subparsers(dest="method_name", required=True, metavar="METHOD")
    for method in METHODS:
        parser = methods.add_parser(method.name, help=method.help, parents=[common],
                                    description=f"Fill gaps {method.help}.")
        parser.add_argument("image", help="the image with gaps")
        parser.add_argument("-o", "--output", required=True, help="GeoTIFF to write")
        parser.add_argument("--gap-mask",
                            help=f"gap mask, 1 = gap (default: {method.gap_mask_default})")
        parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
        method.add_arguments(parser)
        parser.set_defaults(run=functools.partial(run_fill, method))


def run_fill(
    method: FillMethod, arguments: argparse.Namespace, session: Session
) -> tuple[dict[str, Any], list[str]]:
    inputs = [arguments.image, arguments.gap_mask, *method.inputs(arguments)]
    for output in (arguments.output, *method.outputs(arguments)):
        check_output(output, inputs, arguments.overwrite,
                     raster=not output.endswith((".json", ".pt")))
    with session.progress(f"fill {method.name}") as (progress, cancelled):
        report, facts = method.fill(arguments, session, progress, cancelled)
    for message in report.messages:
        session.warn(message)
    if report.unfilled:
        session.warn(
            f"{report.unfilled} gap pixels could not be filled and are no-data in the output."
        )
    share = f" ({100 * report.filled / report.gaps:.1f} %)" if report.gaps else ""
    result = {
        "command": "fill",
        "method": method.name,
        "output": arguments.output,
        "pixels": report.pixels,
        "gap_pixels": report.gaps,
        "filled_pixels": report.filled,
        "unfilled_pixels": report.unfilled,
        **facts,
    }
    summary = [
        f"Wrote {arguments.output}: {report.filled} of {report.gaps} gap pixels filled{share}."
    ]
    return result, summary
