"""A per-pixel expected error of the fill, learned from the errors on the selection blocks and
checked on the report blocks.

What is known at a gap pixel says how hard it is: how far it lies from the nearest visible pixel,
how much of its neighbourhood is hidden, how many other dates see it, and how much the two best
candidates disagree there. The log of the absolute error (mean over the bands, in the target's
units) is fitted linearly on these; the spread of the residuals turns a prediction into an
expected error and an upper bound that 90 % of the errors should stay below. The report blocks,
never used to fit, say how well it ranks and how often the bound holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...raster.morphology import box_mean
from ...raster.proximity import distance_to

COVERAGE = 0.9
NEIGHBOURHOOD = 15  # radius (px) of the hidden share around a pixel
EPSILON = 1e-6
FEATURES = ("distance to visible", "hidden share", "other dates seeing it", "disagreement")


def pixel_features(
    hidden: np.ndarray,
    visible: np.ndarray,
    usable_dates: np.ndarray,
    dates: int,
    disagreement: np.ndarray,
    where: np.ndarray,
) -> np.ndarray:
    """(n, 4) features of the `where` pixels; `disagreement` is the mean absolute difference
    between the two best candidates relative to the target's spread."""
    distance = np.log1p(distance_to(visible))
    share = box_mean(hidden.astype(np.float64), NEIGHBOURHOOD)
    seen = usable_dates / dates if dates else np.zeros_like(share)
    columns = [distance, share, seen, np.log1p(disagreement)]
    return np.stack([column[where] for column in columns], axis=1)


def _ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values))
    return ranks


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's ρ (ties broken by order, enough for continuous errors)."""
    if len(a) < 3:
        return float("nan")
    ra, rb = _ranks(a), _ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = np.sqrt((ra**2).sum() * (rb**2).sum())
    return float((ra * rb).sum() / denominator) if denominator else float("nan")


@dataclass
class ConfidenceModel:
    """log(error) ≈ features · weights; `mean_factor` and `upper_factor` turn the prediction
    into the expected error and the 90 % bound; `scale` (per band) is what candidate
    disagreements are measured against."""

    weights: np.ndarray
    mean_factor: float
    upper_factor: float
    scale: np.ndarray

    @classmethod
    def fit(cls, features: np.ndarray, errors: np.ndarray, scale: np.ndarray) -> ConfidenceModel:
        design = np.column_stack([np.ones(len(errors)), features])
        target = np.log(errors + EPSILON)
        weights, *_ = np.linalg.lstsq(design, target, rcond=None)
        residuals = target - design @ weights
        return cls(
            weights,
            float(np.mean(np.exp(residuals))),
            float(np.exp(np.quantile(residuals, COVERAGE))),
            scale,
        )

    def predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(expected error, upper bound) per row of `features`."""
        central = np.exp(np.column_stack([np.ones(len(features)), features]) @ self.weights)
        return central * self.mean_factor, central * self.upper_factor

    def calibration(self, features: np.ndarray, errors: np.ndarray) -> dict[str, float]:
        """How the model does on pixels it was not fitted on."""
        expected, upper = self.predict(features)
        return {
            "pixels": int(len(errors)),
            "rank_correlation": rank_correlation(expected, errors),
            "coverage_90": float(np.mean(errors <= upper)) if len(errors) else float("nan"),
            "mean_expected": float(expected.mean()) if len(errors) else float("nan"),
            "mean_actual": float(errors.mean()) if len(errors) else float("nan"),
        }

    def to_json(self) -> dict[str, object]:
        return {
            "features": list(FEATURES),
            "weights": self.weights.tolist(),
            "mean_factor": self.mean_factor,
            "upper_factor": self.upper_factor,
        }


MIN_COVERAGE = 0.8  # of the 90 % bound on the report blocks: well below what it claims
MIN_RANK_CORRELATION = 0.2  # with the true error: barely ranks the pixels


def calibration_warning(report: dict[str, float] | None) -> str | None:
    """What to tell the user when the confidence layer failed its check on the report blocks,
    so that a layer that does not hold is not read as error bars."""
    if report is None:
        return None
    coverage, rank = report["coverage_90"], report["rank_correlation"]
    if coverage >= MIN_COVERAGE and rank >= MIN_RANK_CORRELATION:
        return None
    return (
        f"The confidence layer is poorly calibrated on this scene: on the report blocks its "
        f"90 % bound held for {100 * coverage:.0f} % of the pixels and its rank correlation with "
        f"the true error is {rank:.2f}. Read it as a rough guide to where the fill is less "
        "sure, not as error bars."
    )
