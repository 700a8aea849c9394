"""The scene fill's report: what competed, what was chosen, how good it is on this scene.

`scene_report.json` for programs and `report.html` with quick-looks for people: the table of
every candidate on the selection blocks (where the choice was made) and on the report blocks
(scored once, after the choice), the seam ratio, the adapted network's training, the confidence
layer's calibration, and pictures of one validation window: the input with the simulated gaps,
the truth, the chosen fill, the best classical fill and their errors.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import GapfillError
from ...evaluate.evaluation import rgb_bands
from ...evaluate.report import (
    STYLE,
    colour_bar,
    error_colours,
    json_number,
    number_text,
    rgb_picture,
)
from ...raster.output import check_writable
from ...raster.quicklook import stretch_limits, write_png
from ...raster.sentinel2_bands import band_names
from .fill_scene import SceneResult
from .layouts import REPORT, SELECT
from .validation import Score, ValidationWindow

FORMAT = "gapfill-scene-report/1"
JSON_NAME, HTML_NAME = "scene_report.json", "report.html"
LOOK = 256  # displayed width of a quick-look, pixels


def _score_json(score: Score | None) -> dict[str, Any] | None:
    if score is None:
        return None
    metrics = score.metrics
    return {
        key: json_number(getattr(metrics, key))
        for key in ("mae", "rmse", "psnr", "ssim", "sam", "ndvi_mae")
    } | {"seam": json_number(score.seam), "evaluated": metrics.evaluated,
         "filled_fraction": metrics.filled_fraction}


def _strict(value: Any) -> Any:
    """`value` with every infinite or NaN float written as strict JSON allows ('inf', 'nan')."""
    if isinstance(value, float):
        return json_number(value)
    if isinstance(value, dict):
        return {key: _strict(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(item) for item in value]
    return value


def report_document(result: SceneResult, parameters: dict[str, Any]) -> dict[str, Any]:
    """The JSON report (no time stamps or output paths, so runs compare)."""
    return _strict({
        "format": FORMAT,
        "parameters": parameters,
        "protocol": (
            "Real cloud shapes of the scene laid on its clear pixels (pure gap filling: the "
            "scene's own pixels are the truth). Blocks split into training, selection and "
            "report; the fills that learn nothing are ranked on the training and selection "
            "blocks ('ranking', on further layouts too when the scene is small), a network is "
            "chosen on the selection blocks; the report blocks are scored once, after the "
            "choice, and were never trained on or used to choose."
        ),
        "scaling": result.scaling.describe(),
        "data_range": result.data_range,
        "windows": result.windows,
        "pixels": result.pixels,
        "source_margin": result.source_margin,
        "chosen": result.chosen,
        "best_classical": result.best_classical.name,
        "candidates": [
            {"name": c.name, "kind": c.kind, "selection": _score_json(c.selection),
             "ranking": _score_json(c.ranking), "report": _score_json(c.report)}
            for c in result.candidates
        ],
        "network": result.network,
        "confidence": result.confidence,
        "summary": result.summary(),
        "notes": result.notes,
    })


def _rows(result: SceneResult) -> list[str]:
    keys = (("mae", "MAE"), ("rmse", "RMSE"), ("psnr", "PSNR (dB)"), ("ssim", "SSIM"),
            ("sam", "SAM (°)"))
    header = ["candidate", "kind", "selection PSNR (dB)"] + [f"report {k}" for _, k in keys]
    lines = ["<table>", "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header)
             + "<th>report seam ratio</th></tr>"]
    for candidate in result.candidates:
        cells = [candidate.name + (" (chosen)" if candidate.name == result.chosen else ""),
                 candidate.kind,
                 number_text(candidate.selection.psnr) if candidate.selection else "—"]
        report = candidate.report
        cells += [number_text(getattr(report.metrics, k)) if report else "—" for k, _ in keys]
        cells.append(number_text(report.seam) if report else "—")
        lines.append("<tr>" + "".join(
            f'<td class="text">{html.escape(c)}</td>' if i < 2 else f"<td>{html.escape(c)}</td>"
            for i, c in enumerate(cells)
        ) + "</tr>")
    lines.append("</table>")
    return lines


def _pictures(
    result: SceneResult, window: ValidationWindow, descriptions: list[str], folder: Path
) -> list[tuple[str, str]]:
    try:
        names: list[str] | None = band_names(descriptions)
    except GapfillError:
        names = None
    bands = [b - 1 for b in rgb_bands(names, window.truth.shape[0])]
    truth = window.truth[bands].astype(np.float64)
    valid = np.isfinite(truth).all(axis=0)
    lower, upper = stretch_limits(np.nan_to_num(truth), valid)
    hidden = np.where(window.hidden, np.nan, truth)
    scored = window.scored(SELECT) | window.scored(REPORT)
    shown = {result.chosen, result.best_classical.name}
    pictures = [("input.png", rgb_picture(hidden, lower, upper),
                 "Input: real and simulated gaps (magenta)"),
                ("truth.png", rgb_picture(truth, lower, upper), "Truth")]
    errors = {}
    for name in sorted(shown, key=lambda n: n != result.chosen):
        values = window.predictions[name][bands].astype(np.float64)
        safe = name.replace(" ", "_")
        pictures.append((f"{safe}.png", rgb_picture(values, lower, upper), f"Filled: {name}"))
        error = np.abs(window.predictions[name] - window.truth).mean(axis=0)
        errors[name] = np.where(scored, error, np.nan)
    top = max(float(np.nanpercentile(e, 99)) for e in errors.values()) or 1.0
    grey = (64 + rgb_picture(truth, lower, upper).mean(axis=0) * 0.5).astype(np.uint8)
    for name, error in errors.items():
        picture = np.repeat(grey[None], 3, axis=0)
        measured = np.isfinite(error)
        picture[:, measured] = error_colours(error, top)[:, measured]
        pictures.append((f"error_{name.replace(' ', '_')}.png", picture,
                         f"Absolute error on the simulated gaps: {name}"))
    for file, picture, _ in pictures:
        write_png(folder / file, picture)
    write_png(folder / "colour_bar.png", colour_bar())
    return [(file, caption) for file, _, caption in pictures] + [("", number_text(top))]


def write_scene_report(
    result: SceneResult,
    windows: list[ValidationWindow],
    descriptions: list[str],
    parameters: dict[str, Any],
    folder: str | Path,
) -> Path:
    """Write scene_report.json, report.html and its pictures into `folder`; the page's path."""
    folder = Path(folder)
    check_writable(folder / HTML_NAME)
    document = report_document(result, parameters)
    (folder / JSON_NAME).write_text(
        json.dumps(document, indent=2, allow_nan=False) + "\n", encoding="utf-8"
    )
    pictures, top, (height, width) = [], "", (1, 1)
    if result.result_of(result.chosen).selection is not None:
        window = max(windows, key=lambda w: int((w.scored(SELECT) | w.scored(REPORT)).sum()))
        *pictures, (_, top) = _pictures(result, window, descriptions, folder)
        height, width = window.truth.shape[1:]
    lines = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        "<title>Gapfill: fill learned from this scene</title>", f"<style>{STYLE}</style>",
        "</head>", "<body>", "<h1>Fill gaps, learned from this scene</h1>",
        *(f"<p>{html.escape(line)}</p>" for line in result.summary()),
        f"<p>{html.escape(document['protocol'])} Values scaled as "
        f"{html.escape(document['scaling'])}. Seam ratio: the jump across the gap edge over "
        "the same jump in the truth (1 = as smooth as the real image, above 1 = a visible "
        "seam).</p>",
        "<h2>Candidates</h2>", *_rows(result),
        "<h2>Quick-looks (one validation window)</h2>", '<div class="looks">',
    ]
    for file, caption in pictures:
        lines.append(
            f'<figure><img class="look" src="{html.escape(file)}" width="{LOOK}" '
            f'height="{round(LOOK * height / width)}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
    lines += [
        "</div>",
        '<div class="bar"><span>absolute error 0</span>'
        f'<img src="colour_bar.png" width="{LOOK}" height="14" alt="error colour bar">'
        f"<span>{html.escape(top)} (and above, in the target's units)</span></div>",
    ]
    if result.network:
        network = result.network
        lines += [
            "<h2>Network adapted to the scene</h2>",
            f"<p>A correction of {html.escape(network['base'])} (with "
            f"{html.escape(str(network['second']))} as a further input), trained "
            + (f"from the saved network {html.escape(network['started_from'])} "
               if network.get("started_from") else "")
            + f"for {network['steps']} steps (stopped by {html.escape(network['stopped_by'])}), "
            f"correction scaled by {network['shrink']:g} (chosen on the selection blocks; 0 "
            "means the network added nothing).</p>",
        ]
    if result.confidence:
        report = result.confidence["report"]
        lines += [
            "<h2>Confidence layer</h2>",
            f"<p>On {report['pixels']} report pixels: rank correlation of the expected error "
            f"with the true error {report['rank_correlation']:.2f}; the 90 % upper bound holds "
            f"for {100 * report['coverage_90']:.1f} % of them; mean expected error "
            f"{report['mean_expected']:.4g}, mean true error {report['mean_actual']:.4g} (the "
            "target's units).</p>",
        ]
    if result.notes:
        lines += ["<h2>Notes</h2>", "<ul>", *(f"<li>{html.escape(n)}</li>" for n in
                                             result.notes), "</ul>"]
    lines += ["</body>", "</html>", ""]
    page = folder / HTML_NAME
    page.write_text("\n".join(lines), encoding="utf-8")
    return page
