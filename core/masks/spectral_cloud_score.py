"""Cloud and cloud-shadow detection from Sentinel-2 bands alone, for images without a mask product.

The heuristic is the one DSen2-CR (Meraner et al. 2020) uses to build its loss mask, after
Schmitt et al. 2019: a cloud score is the minimum of several "looks like cloud" ramps, each
rescaled to [0, 1] between two reflectances:

| test | band(s) | ramp (reflectance) | why |
|---|---|---|---|
| bright in blue | B2 | 0.10 → 0.50 | clouds are bright |
| bright in aerosol (when B1 exists) | B1 | 0.10 → 0.30 | clouds are bright |
| cirrus (when B1 and B10 exist) | B1 + B10 | 0.15 → 0.20 | high, thin clouds |
| bright in the visible | B2 + B3 + B4 | 0.20 → 0.80 | clouds are white |
| moisture index | (B8 − B11) / (B8 + B11) | −0.10 → 0.10 | clouds are not dry soil |
| not snow | (B3 − B11) / (B3 + B11) | 0.80 → 0.60 | snow is bright too, but dark in SWIR |

The score is smoothed by a 7×7 mean (`SMOOTH_RADIUS`) and pixels above `CLOUD_THRESHOLD` are
clouds. Shadows are dark in the NIR/SWIR and in the blue: the cloud-shadow index
CSI = (B8 + B11) / 2 below min + 1/2 (mean − min), and B2 below min + 3/4 (mean − min).
Those statistics come from a first pass over the image's valid, cloud-free pixels. DSen2-CR
uses 3/4 and 5/6 over the whole image, clouds included; on cloudy scenes the clouds raise the
mean so far that a third of the clear land becomes "shadow". With clear-pixel statistics and
the fractions above, agreement with the labelled scene of `cloud_labels` rose from 91.9 % to
92.7 % of pixels, and false shadows on clear dates of `sen12mscr_ts` fell from 6–15 % to 1–3 %.
Water is dark in the NIR/SWIR too and is often flagged as shadow: use another mask source
(Scene Classification) over large water bodies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..raster.morphology import box_mean

REFLECTANCE_SCALE = 10000.0  # Sentinel-2 L1C/L2A digital numbers
CLOUD_THRESHOLD = 0.2
SMOOTH_RADIUS = 3
SHADOW_CSI_FRACTION = 1 / 2
SHADOW_BLUE_FRACTION = 3 / 4
BANDS_NEEDED = ["B2", "B3", "B4", "B8", "B11"]


def ramp(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """0 at `low`, 1 at `high`, linear between, clipped (works for decreasing ramps too)."""
    return np.clip((values - low) / (high - low), 0.0, 1.0)


def normalised_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    total = a + b
    return np.where(np.abs(total) > 1e-9, (a - b) / np.where(total == 0, 1, total), 0.0)


def cloud_score(bands: dict[str, np.ndarray]) -> np.ndarray:
    """Unsmoothed cloud score in [0, 1] from reflectances keyed by band name."""
    blue, green, red = bands["B2"], bands["B3"], bands["B4"]
    nir, swir = bands["B8"], bands["B11"]
    score = ramp(blue, 0.1, 0.5)
    if "B1" in bands:
        score = np.minimum(score, ramp(bands["B1"], 0.1, 0.3))
        if "B10" in bands:
            score = np.minimum(score, ramp(bands["B1"] + bands["B10"], 0.15, 0.2))
    score = np.minimum(score, ramp(red + green + blue, 0.2, 0.8))
    score = np.minimum(score, ramp(normalised_difference(nir, swir), -0.1, 0.1))
    return np.minimum(score, ramp(normalised_difference(green, swir), 0.8, 0.6))


@dataclass(frozen=True)
class ShadowThresholds:
    """Image-wide thresholds on the cloud-shadow index and the blue band (reflectance)."""

    csi: float
    blue: float

    @classmethod
    def from_statistics(
        cls, csi_min: float, csi_mean: float, blue_min: float, blue_mean: float
    ) -> ShadowThresholds:
        return cls(
            csi_min + SHADOW_CSI_FRACTION * (csi_mean - csi_min),
            blue_min + SHADOW_BLUE_FRACTION * (blue_mean - blue_min),
        )


def shadow_index(bands: dict[str, np.ndarray]) -> np.ndarray:
    return (bands["B8"] + bands["B11"]) / 2.0


def clouds(bands: dict[str, np.ndarray], threshold: float = CLOUD_THRESHOLD) -> np.ndarray:
    """Boolean cloud map: the smoothed score above the threshold."""
    return box_mean(cloud_score(bands), SMOOTH_RADIUS) > threshold


def clouds_and_shadows(
    bands: dict[str, np.ndarray],
    thresholds: ShadowThresholds,
    cloud_threshold: float = CLOUD_THRESHOLD,
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean cloud and shadow maps (shadow excludes cloud)."""
    cloud = clouds(bands, cloud_threshold)
    shadow = (shadow_index(bands) < thresholds.csi) & (bands["B2"] < thresholds.blue) & ~cloud
    return cloud, shadow
