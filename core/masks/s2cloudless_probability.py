"""Cloud probability from s2cloudless (Sentinel Hub; LightGBM on 10 Sentinel-2 L1C bands).

The package is used as installed (its model file, CC-BY-SA-4.0, stays in its folder). It
classifies each pixel alone from its top-of-atmosphere reflectances in B1, B2, B4, B5, B8,
B8A, B9, B10, B11, B12, so blocks need no context but the averaging disk. Sentinel Hub trained
it on 10 m pixels and runs it in production on 160 m cells (band means) for speed, with the
probability averaged over a disk of 4 cells and a threshold of 0.4 (its CLM/CLP layers). Here
it runs on 20 m cells (the resolution of B5, B8A, B11, B12): on the SEN12MS-CR samples 160 m
cells turn small clouds into blobs or miss them (BENCHMARKS.md, "Gap masks"). The probability
is averaged over the package's own disk of 4 cells.
"""

from __future__ import annotations

import numpy as np

from ..dependencies import require
from ..learned.onnx_session import LogFn, no_log

BANDS = ["B1", "B2", "B4", "B5", "B8", "B8A", "B9", "B10", "B11", "B12"]
AVERAGE_OVER = 4  # disk radius in cells for the probability average (Sentinel Hub's)
PURPOSE = "The s2cloudless cloud probability"


class S2Cloudless:
    """The s2cloudless pixel classifier and its averaging disk; probabilities of blocks."""

    classes = ("cloud",)
    recommended_metres = 20.0
    context_cells = AVERAGE_OVER + 1
    bands = BANDS

    def __init__(self, log: LogFn = no_log) -> None:
        package = require("s2cloudless", PURPOSE)
        self.cv2 = require("cv2", PURPOSE, "opencv-python-headless")
        self.detector = package.S2PixelCloudDetector(
            all_bands=False, average_over=AVERAGE_OVER, dilation_size=0
        )
        self.name = f"s2cloudless {package.__version__} (LightGBM, 10 bands)"
        log(f"{self.name} runs on the CPU (LightGBM).")

    def probabilities(self, reflectance: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """(1, h, w) cloud probability of reflectances (bands in `BANDS` order, h, w), averaged
        over the disk; pixels without data count as clear."""
        pixels = np.ascontiguousarray(reflectance.transpose(1, 2, 0)[np.newaxis])
        probability = self.detector.get_cloud_probability_maps(pixels)[0]
        probability[~valid] = 0.0
        averaged = self.cv2.filter2D(
            probability, -1, self.detector.conv_filter, borderType=self.cv2.BORDER_REFLECT
        )
        return averaged[np.newaxis].astype(np.float32)
