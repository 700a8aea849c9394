"""Quick-look pictures (PNG through GDAL, so no plotting library is needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from osgeo import gdal

from ..errors import GapfillError


def stretch_limits(image: np.ndarray, valid: np.ndarray, low: float = 2, high: float = 98):
    """Per-band percentiles over valid pixels: one stretch shared by all panels of a picture."""
    pixels = image[:, valid] if valid.any() else image.reshape(image.shape[0], -1)
    return np.percentile(pixels, low, axis=1), np.percentile(pixels, high, axis=1)


def to_bytes(image: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """(bands, h, w) → uint8 with a linear stretch between per-band limits."""
    span = np.maximum(upper - lower, 1e-9)[:, None, None]
    scaled = (image.astype(np.float64) - lower[:, None, None]) / span
    return (np.clip(scaled, 0, 1) * 255).round().astype(np.uint8)


def side_by_side(panels: list[np.ndarray], gap: int = 8) -> np.ndarray:
    """Panels (3, h, w) uint8 next to each other on a white background."""
    height = max(p.shape[1] for p in panels)
    width = sum(p.shape[2] for p in panels) + gap * (len(panels) - 1)
    canvas = np.full((3, height, width), 255, dtype=np.uint8)
    x = 0
    for panel in panels:
        canvas[:, : panel.shape[1], x : x + panel.shape[2]] = panel
        x += panel.shape[2] + gap
    return canvas


def write_png(path: str | Path, rgb: np.ndarray) -> Path:
    """Write a (3, h, w) uint8 array as PNG."""
    memory = gdal.GetDriverByName("MEM").Create("", rgb.shape[2], rgb.shape[1], 3, gdal.GDT_Byte)
    for index in range(3):
        memory.GetRasterBand(index + 1).WriteArray(rgb[index])
    if gdal.GetDriverByName("PNG").CreateCopy(str(path), memory) is None:
        raise GapfillError(f"Cannot write the quick-look '{path}': {gdal.GetLastErrorMsg()}")
    aux = Path(f"{path}.aux.xml")
    if aux.exists():
        aux.unlink()
    return Path(path)
