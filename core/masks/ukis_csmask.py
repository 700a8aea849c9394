"""Clouds and cloud shadows from the ukis-csmask networks (DLR; Wieland et al. 2019, 2022).

ukis-csmask 1.0.0 ships U-Net/EfficientNet-B4 models in ONNX for Sentinel-2 L1C and L2A, with
4 bands (blue, green, red, NIR) or 6 (and SWIR 1.6 µm, 2.2 µm), trained on CloudSEN12+ and
SPARCS; they work best at about 30 m. The package is used as installed: its models and their
normalisation statistics are read from its folder, never copied. Its own `CSmask` runs a whole
image at once in memory with a session of its own; here the same networks run through
Gapfill's ONNX Runtime session (CUDA when present, the log says which) on blocks of a scene,
in tiles of the networks' fixed 256 px with a context margin, softmax probabilities blended
with smooth weights, so memory follows the block, not the scene.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np

from ..dependencies import require
from ..errors import GapfillError
from ..learned.onnx_session import CUDA, Device, LogFn, create_session, no_log
from ..learned.tiling import plan_tiles, read_tile

Level = Literal["l1c", "l2a"]
BAND_OF = {"blue": "B2", "green": "B3", "red": "B4", "nir": "B8", "swir16": "B11",
           "swir22": "B12"}  # fmt: skip
SIX = ["B2", "B3", "B4", "B8", "B11", "B12"]
FOUR = SIX[:4]
MARGIN = 32  # context pixels (at the network's resolution) discarded around each tile's core
SIZE_MULTIPLE = 32  # EfficientNet-B4 halves the size five times
CLOUD, SHADOW = 1, 2  # the networks' classes: 0 clear, 1 cloud, 2 cloud shadow
PURPOSE = "The ukis-csmask cloud and shadow mask"


def model_files(bands: int, level: Level) -> tuple[Path, dict]:
    """The installed package's ONNX model and its metadata (normalisation, bands, tile size)."""
    require("onnxruntime", PURPOSE)
    package = require("ukis_csmask", PURPOSE, "ukis-csmask")
    model = Path(package.__file__).resolve().parent / f"model_{bands}b_{level}.onnx"
    if not model.is_file():
        raise GapfillError(
            f"The installed ukis-csmask has no {bands}-band {level.upper()} model ({model}). "
            "Reinstall it: Gapfill expects ukis-csmask 1.0.0."
        )
    return model, json.loads(model.with_suffix(".json").read_text(encoding="utf-8"))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities along axis 1."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


class UkisCsmask:
    """One ukis-csmask network in one ONNX Runtime session; probabilities of blocks."""

    classes = ("cloud", "shadow")
    recommended_metres = 30.0  # the package's README: best at about 30 m
    context_cells = MARGIN

    def __init__(
        self, bands: int, level: Level, device: Device = "auto", log: LogFn = no_log
    ) -> None:
        model, metadata = model_files(bands, level)
        statistics = metadata["data"]["dataset_statistics"]
        self.bands = [BAND_OF[name] for name in statistics["band_names"]]
        mean, std = (np.array(v, dtype=np.float32)[:, None, None] for v in statistics["img"])
        self.mean, self.std = mean, std
        self.tile = int(metadata["data"]["target_size"][0])
        self.version = metadata["model"]["version"]
        self.session = create_session(model, device, log=log)
        self.input = self.session.get_inputs()[0].name
        self.batch = 8 if self.session.get_providers()[0] == CUDA else 1
        self.name = f"ukis-csmask {bands}-band {level.upper()} model ({self.version})"

    def probabilities(self, reflectance: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """(cloud, shadow) probabilities (2, h, w) of reflectances (bands in `self.bands`
        order, h, w); pixels without data are fed as the training mean."""
        normalised = ((reflectance - self.mean) / self.std).astype(np.float32)
        normalised[:, ~valid] = 0.0
        height, width = valid.shape
        grid = plan_tiles(width, height, self.tile, MARGIN, SIZE_MULTIPLE, fixed=True)
        sums = np.zeros((2, height, width), dtype=np.float32)
        weight = np.zeros((height, width), dtype=np.float32)
        blend = grid.weights()
        tiles = list(grid.tiles())
        for start in range(0, len(tiles), self.batch):
            batch = tiles[start : start + self.batch]
            feed = np.stack([read_tile(normalised, grid.read_window(tile)) for tile in batch])
            probability = softmax(self.session.run(None, {self.input: feed})[0])
            for tile, tile_probability in zip(batch, probability, strict=True):
                x, y, w, h = grid.core_window(tile)
                core = tile_probability[[CLOUD, SHADOW], MARGIN : MARGIN + h, MARGIN : MARGIN + w]
                sums[:, y : y + h, x : x + w] += core * blend[:h, :w]
                weight[y : y + h, x : x + w] += blend[:h, :w]
        return sums / weight
