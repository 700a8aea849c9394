"""Field-made cloud detectors (ukis-csmask, s2cloudless) streamed over whole scenes.

Each detector runs at its own recommended resolution: blocks of the target are read with a
context halo, averaged into cells of `factor × factor` pixels (30 m for ukis-csmask, 20 m for
s2cloudless), classified, and the class probabilities interpolated back to the target grid
(bilinear), where the threshold, the classes to flag and the haze buffer apply. Block and halo
are multiples of the factor, so every block sees the same cells: the mask has no seams, and
memory follows the block size, not the scene.

The "automatic" method takes the best detector installed that the bands allow, else the
spectral score, and says which ran and why.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
from osgeo import gdal

from ..errors import GapfillError
from ..learned.onnx_session import Device, LogFn
from ..raster.access import Window, read_bands, read_valid
from ..raster.resampling import pool_mean, upsample_bilinear
from ..raster.sentinel2_bands import L2A, band_indices
from . import s2cloudless_probability, ukis_csmask

Level = Literal["auto", "l1c", "l2a"]
LEVELS: tuple[Level, ...] = ("auto", "l1c", "l2a")
CLASSES = ("cloud", "shadow")
BLOCK_CELLS = 512  # detector cells per block side (a block of 1536 px at 10 m for 30 m cells)
BLOCK_PIXELS = 1536  # at most this many target pixels per block side: memory follows pixels
LEVEL_WORDS = {"l2a": ("LEVEL-2A", "L2A", "MSIL2A"), "l1c": ("LEVEL-1C", "L1C", "MSIL1C")}
INSTALL_MASKS = (
    "install it with Gapfill's 'Install dependencies' algorithm, option 'Cloud detectors "
    "(masks)'"
)


class Detector(Protocol):
    """What the streaming needs from a detector."""

    name: str
    bands: list[str]  # Sentinel-2 bands in the order `probabilities` takes them
    classes: tuple[str, ...]  # what its probabilities are, in order
    recommended_metres: float
    context_cells: int

    def probabilities(self, reflectance: np.ndarray, valid: np.ndarray) -> np.ndarray: ...


def installed(*modules: str) -> bool:
    """True when every module can be imported (looked up without importing it)."""
    for module in modules:
        try:
            if importlib.util.find_spec(module) is None:
                return False
        except (ImportError, ValueError):  # a module blocked in sys.modules, a broken parent
            return False
    return True


def product_level(dataset: gdal.Dataset, names: list[str], asked: Level, log: LogFn) -> str:
    """L1C or L2A: as asked, else from the metadata or file name, else from the bands (only
    L1C has B10; L2A's 12 bands), else L1C, said in the log."""
    if asked != "auto":
        return asked
    name = Path(dataset.GetDescription()).name  # the file's, not its folders'
    text = " ".join([name, *(dataset.GetMetadata() or {}).values()]).upper()
    for level, words in LEVEL_WORDS.items():
        if any(re.search(rf"(?<![A-Z0-9]){word}(?![A-Z0-9])", text) for word in words):
            return level
    if "B10" in names:
        return "l1c"
    if names == L2A:
        return "l2a"
    log(
        "Product level not found in the metadata or the bands: the image is taken as L1C "
        "(top-of-atmosphere reflectance). Set the product level for L2A images."
    )
    return "l1c"


def choose_method(method: str, names: list[str], level: str, log: LogFn) -> str:
    """The method "automatic" stands for: ukis-csmask (clouds and shadows, best on the
    labelled data of BENCHMARKS.md), else s2cloudless (clouds only, L1C), else the spectral
    score. Any other method is returned as it is."""
    if method != "automatic":
        return method
    reasons = []
    if not installed("onnxruntime", "ukis_csmask"):
        reasons.append(f"ukis-csmask is not installed ({INSTALL_MASKS})")
    elif all(band in names for band in ukis_csmask.FOUR):
        log("Automatic mask method: ukis-csmask (clouds and shadows).")
        return "ukis"
    else:
        reasons.append("ukis-csmask needs B2, B3, B4 and B8")
    if not installed("s2cloudless"):
        reasons.append(f"s2cloudless is not installed ({INSTALL_MASKS})")
    elif level == "l1c" and all(band in names for band in s2cloudless_probability.BANDS):
        log("Automatic mask method: s2cloudless (clouds only; ukis-csmask " + reasons[0] + ").")
        return "s2cloudless"
    else:
        reasons.append("s2cloudless needs the 10 L1C bands " + ", ".join(
            s2cloudless_probability.BANDS))
    log("Automatic mask method: the spectral cloud/shadow score (" + "; ".join(reasons) + ").")
    return "spectral"


def open_detector(
    method: str, names: list[str], level: str, ukis_bands: int, device: Device, log: LogFn
) -> tuple[Detector, dict[str, int]]:
    """The detector and the 0-based index of each band it reads, or a clear error."""
    if method == "ukis":
        bands = ukis_bands or (6 if all(b in names for b in ukis_csmask.SIX) else 4)
        if bands not in (4, 6):
            raise GapfillError(f"ukis-csmask has 4- and 6-band models, not {bands}-band ones.")
        wanted = ukis_csmask.SIX if bands == 6 else ukis_csmask.FOUR
        indices = band_indices(names, wanted, f"The {bands}-band ukis-csmask model")
        detector: Detector = ukis_csmask.UkisCsmask(bands, level, device, log)
    else:
        if level == "l2a":
            raise GapfillError(
                "s2cloudless was trained on L1C top-of-atmosphere reflectances and needs B10, "
                "which L2A products lack. Use ukis-csmask (it has L2A models) for L2A images."
            )
        indices = band_indices(names, s2cloudless_probability.BANDS, "s2cloudless")
        detector = s2cloudless_probability.S2Cloudless(log)
    return detector, {band: indices[band] for band in detector.bands}


def block_pixels(factor: int) -> int:
    """Target pixels per block side for cells of `factor` px: `BLOCK_CELLS` cells, but never
    more than about `BLOCK_PIXELS` pixels (coarse cells, e.g. s2cloudless at 160 m, would
    otherwise read blocks of 8192 px), and a whole number of cells."""
    return factor * max(1, min(BLOCK_CELLS, BLOCK_PIXELS // factor))


@dataclass
class DetectorSource:
    """Reads blocks of the target's reflectances and turns them into gap pixels."""

    dataset: gdal.Dataset
    detector: Detector
    bands: dict[str, int]
    factor: int
    threshold: float
    flag: tuple[str, ...]
    offset: float = 0.0
    scale: float = 10000.0

    @property
    def halo(self) -> int:
        """Context in target pixels: the detector's, and one cell for the interpolation."""
        return (self.detector.context_cells + 1) * self.factor

    @property
    def block_size(self) -> int:
        return block_pixels(self.factor)

    def read(self, outer: Window) -> tuple[np.ndarray, np.ndarray]:
        raw = read_bands(self.dataset, outer, [i + 1 for i in self.bands.values()])
        reflectance = (raw.astype(np.float32) + np.float32(self.offset)) / np.float32(self.scale)
        return reflectance, read_valid(self.dataset, outer)

    def gaps(self, payload: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(gap, outside) over the block read."""
        reflectance, valid = payload
        cells, cells_valid = pool_mean(reflectance, valid, self.factor)
        probability = self.detector.probabilities(cells, cells_valid)
        height, width = valid.shape
        fine = upsample_bilinear(probability, self.factor, height, width)
        # cloud: at the threshold, which decides how much haze around clouds is flagged;
        # shadow: the rest where shadow is at least as likely as clear (so that the seam
        # between a cloud and its shadow, where neither wins, is not left clear)
        cloud = fine[0] >= self.threshold
        gap = cloud.copy() if "cloud" in self.flag else np.zeros(valid.shape, dtype=bool)
        if "shadow" in self.flag and "shadow" in self.detector.classes:
            gap |= ~cloud & (fine[1] >= 1.0 - fine[0] - fine[1])
        return gap & valid, ~valid

    def describe(self) -> str:
        """One log line on what is computed."""
        cell = f"cells of {self.factor} × {self.factor} px" if self.factor > 1 else "its pixels"
        return (
            f"{self.detector.name} on {cell}, cloud probability threshold {self.threshold:g}"
        )
