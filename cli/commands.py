"""`gapfill mask`, `timeseries`, `evaluate` and `describe`: one core call each, like the
Processing algorithms of the same names."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

from ..core.errors import GapfillError
from .options import DEVICES, check_output, non_negative, positive
from .session import Session

Result = tuple[dict[str, Any], list[str]]
STYLES = Path(__file__).resolve().parent.parent / "styles"


# --- mask -------------------------------------------------------------------------------------


def mask_arguments(parser: argparse.ArgumentParser) -> None:
    from ..core.learned.onnx_session import DEVICES
    from ..core.masks.detectors import CLASSES, LEVELS
    from ..core.masks.gap_mask import DEFAULT_SCL_GAPS, METHODS

    parser.add_argument("image", help="the image whose gaps are marked (the mask's grid)")
    parser.add_argument("-o", "--output", required=True, help="gap mask GeoTIFF to write")
    parser.add_argument("--method", choices=METHODS, default="automatic",
                        help="automatic (the best cloud detector installed: ukis-csmask, else "
                        "s2cloudless for L1C, else the spectral score), ukis, s2cloudless, the "
                        "spectral cloud/shadow score, Scene Classification classes, cloud "
                        "probability, values or ranges, or the image's no-data "
                        "(default: %(default)s)")
    detectors = parser.add_argument_group("cloud-detecting methods (automatic, ukis, "
                                          "s2cloudless, spectral)")
    detectors.add_argument("--flag", nargs="+", choices=CLASSES, default=list(CLASSES),
                           help="classes that are gaps (default: cloud shadow)")
    detectors.add_argument("--level", choices=LEVELS, default="auto",
                           help="Sentinel-2 product level (default: from metadata, file name, "
                           "bands)")
    detectors.add_argument("--cloud-threshold", type=float,
                           help="cloud probability 0–1 (ukis, s2cloudless) or smoothed score "
                           "(spectral); default: the method's own")
    detectors.add_argument("--haze-buffer", type=float,
                           help="metres grown around clouds and shadows; default: the "
                           "method's measured one")
    detectors.add_argument("--resolution", type=float,
                           help="detector resolution in m (default: ukis 30, s2cloudless 20)")
    detectors.add_argument("--pixel-size", type=float,
                           help="pixel size in m of an image without georeference")
    detectors.add_argument("--ukis-bands", type=int, choices=(0, 4, 6), default=0,
                           help="ukis-csmask model: 4 or 6 bands (0: 6 when B11, B12 exist)")
    detectors.add_argument("--dn-offset", type=float, default=0.0,
                           help="added to the numbers before / 10000 (-1000 for processing "
                           "baseline 04.00 or later read as stored)")
    detectors.add_argument("--device", choices=DEVICES, default="auto",
                           help="device of ukis-csmask (default: %(default)s)")
    parser.add_argument("--source", help="mask source: SCL, cloud probability or labelled "
                        "raster (default: the image itself)")
    parser.add_argument("--source-band", type=positive, default=1,
                        help="band of the mask source (default: %(default)s)")
    parser.add_argument("--classes", default=", ".join(map(str, DEFAULT_SCL_GAPS)),
                        help="Scene Classification classes that are gaps (default: %(default)s)")
    parser.add_argument("--threshold", type=float, default=40.0,
                        help="cloud probability threshold (default: %(default)s)")
    parser.add_argument("--values", default="",
                        help="values or ranges that are gaps, e.g. '4, 0' or '1-3'")
    parser.add_argument("--band-names", default="",
                        help="Sentinel-2 band names in file order, when band descriptions and "
                        "the band count do not tell them (e.g. 'B2,B3,B4,B8,B11,B12')")
    parser.add_argument("--dilation", type=non_negative, default=0,
                        help="grow the gaps by this many pixels (default: %(default)s)")
    parser.add_argument("--no-style", action="store_true",
                        help="do not write the QGIS style beside the mask (MASK.qml: gap, "
                        "clear, no data, which QGIS applies when it opens the mask)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")


def run_mask(arguments: argparse.Namespace, session: Session) -> Result:
    from ..core.masks.gap_mask import (
        MaskSettings,
        build_gap_mask,
        check_scl_classes,
        parse_integer_list,
        parse_value_ranges,
    )

    inputs = [arguments.image, arguments.source]
    check_output(arguments.output, inputs, arguments.overwrite)
    style = None if arguments.no_style else Path(arguments.output).with_suffix(".qml")
    if style is not None:
        check_output(str(style), inputs, arguments.overwrite, raster=False)
    settings = MaskSettings(
        method=arguments.method,
        band=arguments.source_band,
        band_names=arguments.band_names,
        dilation=arguments.dilation,
        threshold=arguments.threshold,
        flag=tuple(arguments.flag),
        level=arguments.level,
        cloud_threshold=arguments.cloud_threshold,
        buffer_metres=arguments.haze_buffer,
        resolution_metres=arguments.resolution,
        pixel_metres=arguments.pixel_size,
        ukis_bands=arguments.ukis_bands,
        reflectance_offset=arguments.dn_offset,
        device=arguments.device,
    )
    if arguments.method == "scl":
        settings.classes = tuple(check_scl_classes(parse_integer_list(arguments.classes)))
    if arguments.method == "values":
        settings.ranges = tuple(parse_value_ranges(arguments.values))
    with session.progress("mask") as (progress, cancelled):
        report = build_gap_mask(
            arguments.image, arguments.output, settings, source_path=arguments.source,
            progress=progress, cancelled=cancelled, log=session.info,
        )
    if style is not None:  # beside the output only, once it is complete
        shutil.copyfile(STYLES / "gap_mask.qml", style)
    result = {
        "command": "mask",
        "method": report.method,
        "output": arguments.output,
        "pixels": report.pixels,
        "gap_pixels": report.gaps,
        "outside_pixels": report.outside,
        "gap_fraction": report.gap_fraction,
        "style": str(style) if style else None,
    }
    summary = [
        f"Wrote {arguments.output}: {report.gaps} gap pixels ({100 * report.gap_fraction:.1f} % "
        f"of the pixels with data), {report.outside} pixels without data."
    ]
    return result, summary


# --- time series ------------------------------------------------------------------------------


def timeseries_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rasters", nargs="+", metavar="RASTER",
                        help="one stack whose bands are dates, or several single-date rasters "
                        "(band 1 of each, stacked on the first one's grid, sorted by date)")
    parser.add_argument("-o", "--output", required=True, help="filled stack GeoTIFF to write")
    parser.add_argument("--method", choices=("linear", "whittaker", "model"), default="linear",
                        help="linear in time, the Whittaker smoother, or an STPConv ONNX model "
                        "(default: %(default)s)")
    parser.add_argument("--lam", type=float, default=10.0,
                        help="Whittaker smoothing λ; larger is smoother (default: %(default)s)")
    parser.add_argument("--model", default="",
                        help="time-series ONNX model, e.g. the bundled models/stpconv-s5p-co.onnx")
    parser.add_argument("--gap-mask", help="gap mask stack: one band per date, or one band")
    parser.add_argument("--equal-spacing", action="store_true",
                        help="ignore the band dates; treat the dates as equally spaced")
    parser.add_argument("--device", choices=DEVICES, default="auto",
                        help="for the model (default: %(default)s)")
    parser.add_argument("--block", type=non_negative, default=256,
                        help="block size in pixels (0 = the model's tile; default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")


def run_timeseries(arguments: argparse.Namespace, session: Session) -> Result:
    from ..core.fills.timeseries_fill import fill_time_series

    rasters = arguments.rasters
    check_output(arguments.output, [*rasters, arguments.gap_mask], arguments.overwrite)
    with session.progress(f"timeseries {arguments.method}") as (progress, cancelled):
        report = fill_time_series(
            rasters[0] if len(rasters) == 1 else rasters,
            arguments.output,
            method=arguments.method,
            mask_path=arguments.gap_mask,
            lam=arguments.lam,
            use_dates=not arguments.equal_spacing,
            model_path=arguments.model or None,
            device=arguments.device,
            block=arguments.block,
            log=session.info,
            progress=progress,
            cancelled=cancelled,
        )
    for message in report.messages:
        session.warn(message)
    result = {
        "command": "timeseries",
        "method": arguments.method,
        "output": arguments.output,
        "pixels": report.pixels,
        "gap_pixels": report.gaps,
        "filled_pixels": report.filled,
        "unfilled_pixels": report.unfilled,
    }
    summary = [f"Wrote {arguments.output}: {report.filled} of {report.gaps} gaps filled."]
    return result, summary


# --- evaluate ---------------------------------------------------------------------------------


def evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    from ..core.evaluate.metrics import SCALING_PRESETS

    parser.add_argument("reference", help="the true image")
    parser.add_argument("filled", nargs="+", help="filled image(s) to compare, side by side")
    parser.add_argument("-o", "--output", required=True,
                        help="report folder: metrics.csv, metrics.json, report.html")
    parser.add_argument("--mask", help="evaluation mask, 1 = evaluate (a gap mask works too)")
    parser.add_argument("--gaps-input", help="the input with gaps: quick-look, and the default "
                        "evaluation pixels (its no-data)")
    parser.add_argument("--names", default="", help="method names, in order, e.g. 'temporal, "
                        "spatial' (default: the file names)")
    parser.add_argument("--scaling", choices=tuple(SCALING_PRESETS), default="sentinel2",
                        help="how values are scaled before comparing (default: %(default)s, DN "
                        "/ 10000 clipped to [0, 1])")
    parser.add_argument("--divisor", type=float, help="custom scaling: divisor")
    parser.add_argument("--offset", type=float, help="custom scaling: offset added first")
    parser.add_argument("--no-clip", action="store_true", help="custom scaling: do not clip")
    parser.add_argument("--data-range", type=float, default=1.0,
                        help="data range of the scaled values, PSNR peak (default: %(default)s)")
    parser.add_argument("--ndvi", action="store_true", help="also the NDVI error (B4, B8)")
    parser.add_argument("--band-names", default="",
                        help="Sentinel-2 band names in file order, for NDVI and quick-looks")


def run_evaluate(arguments: argparse.Namespace, session: Session) -> Result:
    from ..core.evaluate.evaluation import EvaluationSettings, evaluate_files, name_images
    from ..core.evaluate.metrics import SCALING_PRESETS, Scaling
    from ..core.evaluate.report import json_number, metric_fields, write_report

    scaling = SCALING_PRESETS[arguments.scaling]
    if arguments.divisor is not None or arguments.offset is not None or arguments.no_clip:
        scaling = Scaling(
            divisor=scaling.divisor if arguments.divisor is None else arguments.divisor,
            offset=scaling.offset if arguments.offset is None else arguments.offset,
            clip=None if arguments.no_clip else scaling.clip,
        )
    settings = EvaluationSettings(
        scaling=scaling, data_range=arguments.data_range, ndvi=arguments.ndvi,
        band_names=arguments.band_names,
    )
    images = name_images(arguments.filled, arguments.names)
    with session.progress("evaluate") as (progress, cancelled):
        evaluation = evaluate_files(
            arguments.reference, images, evaluation_mask=arguments.mask,
            gaps_input=arguments.gaps_input, settings=settings, progress=progress,
            cancelled=cancelled,
        )
    files = write_report(evaluation, arguments.output)
    for message in evaluation.messages:
        session.warn(message)
    methods = {
        image.name: {key: json_number(value) if isinstance(value, float) else value
                     for key, value in metric_fields(metrics).items()}
        for image, metrics in zip(evaluation.filled, evaluation.metrics, strict=True)
    }
    result = {
        "command": "evaluate",
        "scaling": scaling.describe(),
        "evaluation_pixels": evaluation.evaluation_pixels,
        "methods": methods,
        "csv": str(files.csv),
        "json": str(files.json),
        "html": str(files.html),
    }
    summary = [f"{evaluation.evaluation_pixels} evaluation pixels; values scaled as "
               f"{scaling.describe()}."]
    summary += [
        f"{image.name}: MAE {metrics.mae:.4g}, RMSE {metrics.rmse:.4g}, PSNR {metrics.psnr:.4g} "
        f"dB, SSIM {metrics.ssim:.4g}, filled {100 * metrics.filled_fraction:.1f} %."
        for image, metrics in zip(evaluation.filled, evaluation.metrics, strict=True)
    ]
    summary.append(f"Report: {files.html}")
    return result, summary


# --- describe ---------------------------------------------------------------------------------


def describe_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?",
                        help="ONNX model with a Gapfill card, or an adapted network (.pt) the "
                        "scene fill saved (default: list the bundled models)")


def run_describe(arguments: argparse.Namespace, _session: Session) -> Result:
    from ..core.learned.model_card import card_to_dict, describe_card, read_card

    if arguments.model:
        if not Path(arguments.model).is_file():
            raise GapfillError(f"The model '{arguments.model}' does not exist.")
        if Path(arguments.model).suffix == ".pt":  # an adapted network the scene fill saved
            from ..core.fills.scene.saved_network import load_network

            saved = load_network(arguments.model)
            result = {"command": "describe", "model": arguments.model, "card": saved.card}
            return result, [saved.describe()]
        card = read_card(arguments.model)
        result = {"command": "describe", "model": arguments.model, "card": card_to_dict(card)}
        return result, [describe_card(card)]
    from ..core.learned.bundled_models import bundled_models

    models = bundled_models()
    result = {
        "command": "describe",
        "bundled": [
            {"model": str(model.path), "needs": model.needs(), "card": card_to_dict(model.card)}
            for model in models
        ],
    }
    summary = ["Bundled models (details: gapfill describe MODEL):"]
    summary += [f"  {model.path}: {model.card.description} Needs {model.needs()}."
                for model in models]
    return result, summary


COMMANDS = (
    ("mask", "build a gap mask (1 = gap, 0 = clear, 255 = no data)", mask_arguments, run_mask),
    ("timeseries", "fill every gap of a time series stack", timeseries_arguments,
     run_timeseries),
    ("evaluate", "measure filled images against a reference; CSV, JSON, HTML report",
     evaluate_arguments, run_evaluate),
    ("describe", "show what a model needs (its card), or the bundled models",
     describe_arguments, run_describe),
)


def register(commands: Any, common: argparse.ArgumentParser, names: tuple[str, ...]) -> None:
    for name, text, add_arguments, run in (entry for entry in COMMANDS if entry[0] in names):
        parser = commands.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".",
                                     parents=[common])
        add_arguments(parser)
        parser.set_defaults(run=run)
