"""The evaluation written for people and for programs: CSV, JSON and a self-contained HTML page.

Nothing in the files depends on when or where they were written (no time stamps, no output
paths), so identical inputs give identical files and reports can be compared across versions.
Infinite PSNR (a perfect fill) is written "inf", a metric that could not be measured "nan", one
that does not apply is left empty (CSV) or null (JSON). Pictures are PNGs beside the page, made
with numpy and GDAL (no plotting library).
"""

from __future__ import annotations

import csv
import html
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..raster.output import check_writable
from ..raster.quicklook import stretch_limits, to_bytes, write_png
from .evaluation import Evaluation
from .metrics import BandMetrics, Metrics

FORMAT = "gapfill-evaluation/1"
CSV_NAME, JSON_NAME, HTML_NAME = "metrics.csv", "metrics.json", "report.html"
COLUMNS = (
    "method", "band", "band_name", "evaluated", "unfilled", "filled_fraction", "mae", "rmse",
    "psnr", "ssim", "bias", "sam", "ndvi_mae", "scaling", "data_range",
)
# Anchors of an inferno-like colour map: dark = small error, bright yellow = large.
ERROR_COLOURS = np.array(
    [[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], dtype=np.float64
)
NO_DATA_COLOUR = (255, 0, 255)  # magenta, like the demo's quick-look gaps
UNFILLED_COLOUR = (0, 255, 255)  # cyan: an evaluation pixel the fill left without a value
ERROR_PERCENTILE = 99  # the colour bar ends there, shared by every method
LOOK_WIDTH = 256  # pixels a quick-look takes on the page at least


@dataclass(frozen=True)
class ReportFiles:
    csv: Path
    json: Path
    html: Path


def number_text(value: float | None) -> str:
    """A metric as text: 'inf' for a perfect PSNR, 'nan' when unmeasured, '' when not applicable."""
    if value is None:
        return ""
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if math.isnan(value):
        return "nan"
    return f"{value:.6g}"


def json_number(value: float | None) -> float | str | None:
    """Strict JSON has no infinity or NaN: they are written as the strings 'inf' and 'nan'."""
    if value is None or math.isfinite(value):
        return value
    return number_text(value)


def _fraction(evaluated: int, unfilled: int) -> float:
    total = evaluated + unfilled
    return evaluated / total if total else math.nan


def metric_fields(metrics: Metrics | BandMetrics) -> dict[str, float | int | None]:
    """The numbers of one table row, overall or per band (SAM and NDVI only overall)."""
    overall = isinstance(metrics, Metrics)
    return {
        "evaluated": metrics.evaluated,
        "unfilled": metrics.unfilled,
        "filled_fraction": _fraction(metrics.evaluated, metrics.unfilled),
        "mae": metrics.mae,
        "rmse": metrics.rmse,
        "psnr": metrics.psnr,
        "ssim": metrics.ssim,
        "bias": metrics.bias,
        "sam": metrics.sam if overall else None,
        "ndvi_mae": metrics.ndvi_mae if overall else None,
    }


def table_rows(evaluation: Evaluation) -> list[dict[str, object]]:
    """One row per method overall ('all') then one per band, in the order of COLUMNS."""
    scaling = evaluation.settings.scaling.describe()
    rows = []
    for image, metrics in zip(evaluation.filled, evaluation.metrics, strict=True):
        common = {"scaling": scaling, "data_range": evaluation.settings.data_range}
        rows.append({"method": image.name, "band": "all", "band_name": "all",
                     **metric_fields(metrics), **common})
        for band in metrics.bands:
            rows.append({
                "method": image.name, "band": band.band,
                "band_name": evaluation.band_labels[band.band - 1], **metric_fields(band), **common,
            })
    return rows


def write_csv(evaluation: Evaluation, path: Path) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in table_rows(evaluation):
            writer.writerow(
                number_text(row[c]) if isinstance(row[c], float) or row[c] is None else row[c]
                for c in COLUMNS
            )
    return path


def write_json(evaluation: Evaluation, path: Path) -> Path:
    def clean(fields: dict[str, float | int | None]) -> dict[str, object]:
        return {key: json_number(value) if isinstance(value, float) else value
                for key, value in fields.items()}

    document = {
        "format": FORMAT,
        "scaling": evaluation.settings.scaling.describe(),
        "data_range": evaluation.settings.data_range,
        "parameters": dict(evaluation.parameters()),
        "messages": evaluation.messages,
        "methods": [
            {
                "name": image.name,
                "file": image.path,
                "overall": clean(metric_fields(metrics)),
                "bands": [
                    {"band": band.band, "band_name": evaluation.band_labels[band.band - 1],
                     **clean(metric_fields(band))}
                    for band in metrics.bands
                ],
            }
            for image, metrics in zip(evaluation.filled, evaluation.metrics, strict=True)
        ],
    }
    path.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return path


def error_colours(error: np.ndarray, top: float) -> np.ndarray:
    """(h, w) errors in [0, top] → (3, h, w) uint8 along ERROR_COLOURS (NaN → black)."""
    position = np.clip(np.nan_to_num(error / top), 0, 1) * (len(ERROR_COLOURS) - 1)
    low = np.minimum(position.astype(int), len(ERROR_COLOURS) - 2)
    weight = (position - low)[..., None]
    colours = ERROR_COLOURS[low] * (1 - weight) + ERROR_COLOURS[low + 1] * weight
    return np.moveaxis(colours.round().astype(np.uint8), -1, 0)


def colour_bar(width: int = LOOK_WIDTH, height: int = 14) -> np.ndarray:
    """The error colour map from 0 (left) to the top value (right), as a (3, h, w) picture."""
    ramp = np.tile(np.linspace(0, 1, width), (height, 1))
    return error_colours(ramp, 1.0)


def error_top(evaluation: Evaluation) -> float:
    """Error at the colour bar's end: a high percentile of every method's errors, so the maps
    compare; the data range when every error is 0 (a perfect fill is all dark)."""
    values = np.concatenate([e[np.isfinite(e)] for e in evaluation.previews.errors])
    top = float(np.percentile(values, ERROR_PERCENTILE)) if values.size else 0.0
    return top if top > 0 else evaluation.settings.data_range


def _paint(picture: np.ndarray, where: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    picture[:, where] = np.array(colour, dtype=np.uint8)[:, None]
    return picture


def rgb_picture(image: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """(3, h, w) values → stretched uint8 RGB, no-data pixels magenta."""
    missing = np.isnan(image).any(axis=0)
    return _paint(to_bytes(np.nan_to_num(image), lower, upper), missing, NO_DATA_COLOUR)


def _error_map(evaluation: Evaluation, index: int, top: float, grey: np.ndarray) -> np.ndarray:
    """Error colours on evaluation pixels over the reference in dimmed grey for context."""
    previews = evaluation.previews
    picture = np.repeat(grey[None], 3, axis=0)
    errors = previews.errors[index]
    measured = np.isfinite(errors)
    picture[:, measured] = error_colours(errors, top)[:, measured]
    return _paint(picture, previews.unfilled[index], UNFILLED_COLOUR)


def write_pictures(evaluation: Evaluation, folder: Path, top: float) -> list[tuple[str, str]]:
    """The quick-look PNGs (file name, caption), one shared stretch from the reference; error
    colours from 0 to `top`."""
    previews = evaluation.previews
    reference = previews.reference
    lower, upper = stretch_limits(np.nan_to_num(reference), ~np.isnan(reference).any(axis=0))
    reference_rgb = rgb_picture(reference, lower, upper)
    grey = (64 + reference_rgb.mean(axis=0) * 0.5).astype(np.uint8)
    pictures: list[tuple[str, np.ndarray, str]] = []
    if previews.gaps_input is not None:
        gaps = rgb_picture(previews.gaps_input, lower, upper)
        pictures.append(("input.png", gaps, "Input with gaps"))
    for index, image in enumerate(evaluation.filled, start=1):
        filled = rgb_picture(previews.filled[index - 1], lower, upper)
        pictures.append((f"filled_{index}.png", filled, f"Filled: {image.name}"))
    pictures.append(("reference.png", reference_rgb, "Reference"))
    for index, image in enumerate(evaluation.filled, start=1):
        error = _error_map(evaluation, index - 1, top, grey)
        pictures.append((f"error_{index}.png", error, f"Absolute error: {image.name}"))
    for name, picture, _ in pictures:
        write_png(folder / name, picture)
    write_png(folder / "colour_bar.png", colour_bar())
    return [(name, caption) for name, _, caption in pictures]


STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #bbb; padding: 0.2em 0.6em; text-align: right; }
th { background: #eee; } td.text, th.text { text-align: left; }
.looks { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; } figcaption { font-size: 0.9em; text-align: center; }
img.look { image-rendering: pixelated; }
.bar { display: flex; align-items: center; gap: 0.5em; }
"""
HEADERS = (
    ("band_name", "band"), ("mae", "MAE"), ("rmse", "RMSE"), ("psnr", "PSNR (dB)"),
    ("ssim", "SSIM"), ("sam", "SAM (°)"), ("bias", "bias"), ("ndvi_mae", "NDVI MAE"),
    ("filled_fraction", "filled"), ("evaluated", "evaluated values"),
)


def _cell(value: object) -> str:
    if isinstance(value, float) or value is None:
        return html.escape(number_text(value) or "—")
    return html.escape(str(value))


def _table(rows: list[dict[str, object]], first: tuple[str, str]) -> list[str]:
    headers = (first, *HEADERS[1:])
    titles = [f'<th class="text">{html.escape(first[1])}</th>']
    titles += [f"<th>{html.escape(label)}</th>" for _, label in headers[1:]]
    lines = ["<table>", "<tr>" + "".join(titles) + "</tr>"]
    for row in rows:
        cells = [f'<td class="text">{_cell(row[first[0]])}</td>']
        cells += [f"<td>{_cell(row[key])}</td>" for key, _ in headers[1:]]
        lines.append("<tr>" + "".join(cells) + "</tr>")
    lines.append("</table>")
    return lines


def write_html(evaluation: Evaluation, folder: Path) -> Path:
    """The page: run parameters, quick-looks side by side, a summary and one table per method."""
    top = error_top(evaluation)
    pictures = write_pictures(evaluation, folder, top)
    height, width = evaluation.previews.evaluation.shape
    shown = max(LOOK_WIDTH, width)
    scaling = evaluation.settings.scaling.describe()
    rows = table_rows(evaluation)
    lines = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        "<title>Gapfill evaluation</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        "<h1>Gapfill evaluation</h1>",
        f"<p>Metrics on evaluation pixels only, values scaled as {html.escape(scaling)} "
        f"(data range {evaluation.settings.data_range:g}).</p>",
        "<h2>Quick-looks</h2>",
        '<div class="looks">',
    ]
    for name, caption in pictures:
        lines.append(
            f'<figure><img class="look" src="{html.escape(name)}" width="{shown}" '
            f'height="{round(shown * height / width)}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
    lines += [
        "</div>",
        '<div class="bar"><span>absolute error 0</span>'
        f'<img src="colour_bar.png" width="{LOOK_WIDTH}" height="14" alt="error colour bar">'
        f"<span>{number_text(top)} (and above)</span></div>",
        "<p>Magenta: no data. Cyan: evaluation pixel left unfilled. Grey: not evaluated. "
        "Errors are averaged over the bands; the colours are shared by every method.</p>",
        "<h2>Summary</h2>",
        *_table([r for r in rows if r["band"] == "all"], ("method", "method")),
    ]
    for image in evaluation.filled:
        lines.append(f"<h2>{html.escape(image.name)}</h2>")
        lines += _table([r for r in rows if r["method"] == image.name], ("band_name", "band"))
    lines += ["<h2>Run parameters</h2>", "<table>"]
    for label, value in evaluation.parameters():
        lines.append(
            f'<tr><th class="text">{html.escape(label)}</th>'
            f'<td class="text">{html.escape(value)}</td></tr>'
        )
    lines.append("</table>")
    if evaluation.messages:
        lines += ["<h2>Notes</h2>", "<ul>"]
        lines += [f"<li>{html.escape(message)}</li>" for message in evaluation.messages]
        lines.append("</ul>")
    lines += ["</body>", "</html>", ""]
    path = folder / HTML_NAME
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def write_report(evaluation: Evaluation, folder: str | Path) -> ReportFiles:
    """Write metrics.csv, metrics.json, report.html and its PNGs into `folder`."""
    folder = Path(folder)
    check_writable(folder / HTML_NAME)
    return ReportFiles(
        csv=write_csv(evaluation, folder / CSV_NAME),
        json=write_json(evaluation, folder / JSON_NAME),
        html=write_html(evaluation, folder),
    )
