"""A PNG of the training curves: losses (training, validation) and the validation MAE and PSNR
per epoch. Drawn with matplotlib's object API when it is importable (no pyplot: no global state
inside QGIS), else with numpy and GDAL's PNG driver."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

PANELS = (
    ("Loss", (("train_loss", "training"), ("validation_loss", "validation"))),
    ("Validation MAE (gap pixels)", (("mae", "MAE"),)),
    ("Validation PSNR (dB)", (("psnr", "PSNR"),)),
)
COLOURS = ((31, 119, 180), (255, 127, 14))


def _series(history: Sequence[Mapping[str, Any]], key: str) -> tuple[list[int], list[float]]:
    epochs, values = [], []
    for row in history:
        value = row.get(key)
        if isinstance(value, (int, float)) and math.isfinite(value):
            epochs.append(int(row["epoch"]))
            values.append(float(value))
    return epochs, values


def write_curves(path: str | Path, history: Sequence[Mapping[str, Any]]) -> Path | None:
    """Write the curves of `history` (the rows of log.csv) to `path`, atomically."""
    if not history:
        return None
    path = Path(path)
    temporary = path.with_name(f".{path.stem}.partial.png")
    try:
        try:
            _matplotlib(temporary, history)
        except ImportError:
            _numpy(temporary, history)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def _matplotlib(path: Path, history: Sequence[Mapping[str, Any]]) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(12, 3.6), dpi=100)
    figure.subplots_adjust(left=0.06, right=0.98, bottom=0.14, top=0.9, wspace=0.25)
    FigureCanvasAgg(figure)
    for axes, (title, series) in zip(figure.subplots(1, len(PANELS)), PANELS, strict=True):
        for key, label in series:
            epochs, values = _series(history, key)
            if values:
                axes.plot(epochs, values, marker="o", markersize=3, label=label)
        if title == "Loss" and all(v > 0 for key, _ in series for v in _series(history, key)[1]):
            axes.set_yscale("log")
        axes.set_title(title)
        axes.set_xlabel("epoch")
        axes.grid(True, alpha=0.3)
        if len(series) > 1:
            axes.legend()
    figure.savefig(path, format="png")


def _line(canvas: np.ndarray, x0: int, y0: int, x1: int, y1: int, colour: tuple) -> None:
    steps = max(abs(x1 - x0), abs(y1 - y0), 1)
    xs = np.rint(np.linspace(x0, x1, steps + 1)).astype(int)
    ys = np.rint(np.linspace(y0, y1, steps + 1)).astype(int)
    for dx in (0, 1):
        for dy in (0, 1):
            canvas[
                :,
                np.clip(ys + dy, 0, canvas.shape[1] - 1),
                np.clip(xs + dx, 0, canvas.shape[2] - 1),
            ] = np.array(colour)[:, None]


def _numpy(path: Path, history: Sequence[Mapping[str, Any]]) -> None:
    """Panels with axes frames and lines, no text (the CSV log holds the numbers)."""
    from ..core.raster.quicklook import side_by_side, write_png

    width, height, pad = 360, 240, 20
    panels = []
    for _, series in PANELS:
        canvas = np.full((3, height, width), 255, dtype=np.uint8)
        canvas[:, pad, pad : width - pad] = canvas[:, height - pad, pad : width - pad] = 0
        canvas[:, pad : height - pad, pad] = canvas[:, pad : height - pad, width - pad] = 0
        data = [_series(history, key) for key, _ in series]
        values = [v for _, vs in data for v in vs]
        epochs = [e for es, _ in data for e in es]
        if values:
            low, high = min(values), max(values)
            high = high if high > low else low + 1
            first, last = min(epochs), max(epochs)
            last = last if last > first else first + 1
            for (xs, ys), colour in zip(data, COLOURS, strict=False):
                points = [
                    (
                        pad + round((x - first) / (last - first) * (width - 2 * pad)),
                        height - pad - round((y - low) / (high - low) * (height - 2 * pad)),
                    )
                    for x, y in zip(xs, ys, strict=True)
                ]
                for a, b in zip(points, points[1:] or points, strict=False):
                    _line(canvas, *a, *b, colour)
        panels.append(canvas)
    write_png(path, side_by_side(panels))
