"""The Whittaker smoother (Eilers 2003) for gaps in time series, vectorised over pixels.

For one pixel with values y, weights w (0 on gaps, 1 on observations) and smoothing λ, the
smoothed series z minimises Σ wᵢ (yᵢ − zᵢ)² + λ Σ (Δᵈ z)ᵢ², i.e. solves (W + λ DᵀD) z = W y with
D the d-th order difference matrix. The matrix is banded (half-bandwidth d), so each pixel is
solved by a banded Cholesky factorisation; the loops run over time and band offsets, every step
works on all pixels at once. Equal spacing in time is assumed (one step per band) unless
`times` are given: then D takes divided differences in time (Eilers 2003, section on uneven
sampling), with times rescaled so that the median step is 1 (λ keeps its meaning, and equally
spaced times give exactly the unit-step smoother).

P. H. C. Eilers, "A perfect smoother", Analytical Chemistry 75 (14), 2003.
"""

from __future__ import annotations

import numpy as np

from ..errors import GapfillError
from .timeseries_baselines import temporal_mean


def difference_penalty(steps: int, order: int, times=None) -> np.ndarray:
    """DᵀD for the `order`-th differences of a series of `steps` values (dense, for checks);
    with `times`, divided differences on the times rescaled to a median step of 1."""
    if times is None:
        difference = np.diff(np.eye(steps), n=order, axis=0)
        return difference.T @ difference
    time = _unit_times(times, steps)
    difference = np.eye(steps)
    for level in range(1, order + 1):
        span = (time[level:] - time[:-level]) / level
        difference = np.diff(difference, axis=0) / span[:, np.newaxis]
    return difference.T @ difference


def _unit_times(times, steps: int) -> np.ndarray:
    time = np.asarray(times, dtype=np.float64)
    if time.shape != (steps,) or np.any(np.diff(time) <= 0):
        raise GapfillError(
            f"Give one increasing time per step of the series ({steps}); got {list(time)}."
        )
    return (time - time[0]) / np.median(np.diff(time)) if steps > 1 else time


def _penalty_band(steps: int, order: int) -> np.ndarray:
    """The lower band of DᵀD: band[k, i] = (DᵀD)[i, i − k] for k = 0…order (0 off the matrix)."""
    band = np.zeros((order + 1, steps))
    coefficients = np.diff(np.eye(order + 1), n=order, axis=0)[0]  # e.g. [1, -2, 1]
    for row in range(steps - order):  # each difference row touches order+1 consecutive values
        for a in range(order + 1):
            for b in range(a + 1):
                band[a - b, row + a] += coefficients[a] * coefficients[b]
    return band


def whittaker_smooth(
    values: np.ndarray, weights: np.ndarray, lam: float = 10.0, order: int = 2, times=None
) -> np.ndarray:
    """Smoothed series of every pixel: `values` and `weights` are (time, …) arrays; returns
    float64 of the same shape (`times`: one increasing time per step, default equal steps).
    Pixels whose weighted points cannot fix the solution (fewer than
    `order` with weight > 0) get NaN; the caller decides what to do with them."""
    values = np.asarray(values, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    if values.shape != weights.shape or values.ndim < 1:
        raise GapfillError(f"Values {values.shape} and weights {weights.shape} differ in shape.")
    if lam <= 0 or order < 1:
        raise GapfillError(f"The Whittaker smoother needs λ > 0 and order ≥ 1 (λ={lam}).")
    steps = values.shape[0]
    shape = values.shape[1:]
    y = np.where(weights > 0, values, 0.0).reshape(steps, -1)
    w = weights.reshape(steps, -1)
    solvable = (w > 0).sum(axis=0) >= max(order, 1)
    order = min(order, steps - 1) if steps > 1 else 0
    if order == 0:
        return np.where(solvable, values.reshape(steps, -1), np.nan).reshape(values.shape)
    if times is None:
        band = lam * _penalty_band(steps, order)
    else:
        penalty = difference_penalty(steps, order, times)
        band = np.zeros((order + 1, steps))
        for k in range(order + 1):
            band[k, k:] = np.diagonal(penalty, -k)
        band *= lam
    pixels = y.shape[1]
    # A = W + λ DᵀD in lower-band form: a[k, i] = A[i, i − k].
    a = np.repeat(band[:, :, np.newaxis], pixels, axis=2)
    a[0] += w
    a[0, :, ~solvable] += 1.0  # keep the factorisation defined; those pixels become NaN
    factor = np.zeros_like(a)  # factor[k, i] = L[i, i − k]
    for i in range(steps):
        for k in range(min(order, i), -1, -1):
            j = i - k
            total = a[k, i].copy()
            for m in range(max(0, i - order), j):  # Σ L[i, m] L[j, m]
                total -= factor[i - m, i] * factor[j - m, j]
            if k == 0:
                factor[0, i] = np.sqrt(np.maximum(total, 1e-300))
            else:
                factor[k, i] = total / factor[0, j]
    rhs = w * y
    forward = np.zeros_like(rhs)  # L f = W y
    for i in range(steps):
        total = rhs[i].copy()
        for k in range(1, min(order, i) + 1):
            total -= factor[k, i] * forward[i - k]
        forward[i] = total / factor[0, i]
    smooth = np.zeros_like(rhs)  # Lᵀ z = f
    for i in range(steps - 1, -1, -1):
        total = forward[i].copy()
        for k in range(1, min(order, steps - 1 - i) + 1):
            total -= factor[k, i + k] * smooth[i + k]
        smooth[i] = total / factor[0, i]
    smooth[:, ~solvable] = np.nan
    return smooth.reshape((steps, *shape))


def whittaker_fill(
    values: np.ndarray, valid: np.ndarray, lam: float = 10.0, order: int = 2, times=None
) -> tuple[np.ndarray, np.ndarray]:
    """Gaps of a (time, y, x) series filled from the Whittaker smoother with weights 0 on gaps and
    1 on observations; observations are kept exactly. A pixel with fewer than `order` valid
    values gets its temporal mean (one value: that value); a pixel never valid stays NaN.
    Returns the filled values and where a value exists (as `timeseries_baselines`)."""
    values = np.asarray(values, dtype=np.float64)
    valid = np.asarray(valid, dtype=bool)
    if values.ndim != 3 or valid.shape != values.shape:
        raise GapfillError(
            f"A time series is a (time, y, x) array with a validity mask of the same shape; got "
            f"{values.shape} and {valid.shape}."
        )
    smooth = whittaker_smooth(values, valid.astype(np.float64), lam, order, times)
    mean, exists = temporal_mean(values, valid)
    smooth = np.where(np.isnan(smooth), mean, smooth)
    filled = np.where(valid, values, np.where(exists, smooth, np.nan))
    return filled, exists
