"""Classical baselines for gaps in a gridded time series (e.g. Sentinel-5P CO, one band a day).

Every learned spatio-temporal fill (STPConv) is judged next to these: per pixel, the mean of its
valid values over time, and linear interpolation in time between its nearest valid earlier and
later values. Arrays are (time, y, x) with a boolean validity mask of the same shape; each
function returns the filled values (valid values kept exactly) and where a value exists.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import GapfillError


def _check(values: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values, valid = np.asarray(values, dtype=np.float64), np.asarray(valid, dtype=bool)
    if values.ndim != 3 or valid.shape != values.shape:
        raise GapfillError(
            f"A time series is a (time, y, x) array with a validity mask of the same shape; got "
            f"{values.shape} and {valid.shape}."
        )
    return values, valid


def temporal_mean(values: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each invalid value replaced by the mean of the pixel's valid values over time; a pixel
    never valid stays unfilled (NaN)."""
    values, valid = _check(values, valid)
    count = valid.sum(axis=0)
    total = np.where(valid, values, 0.0).sum(axis=0)
    mean = np.divide(total, count, out=np.full(count.shape, np.nan), where=count > 0)
    filled = np.where(valid, values, mean[np.newaxis])
    return filled, valid | (count > 0)[np.newaxis]


def _last_valid_index(valid: np.ndarray) -> np.ndarray:
    """Per position, the index of the latest valid time at or before it (-1: none)."""
    steps = np.arange(valid.shape[0]).reshape(-1, 1, 1)
    return np.maximum.accumulate(np.where(valid, steps, -1), axis=0)


def temporal_linear(
    values: np.ndarray, valid: np.ndarray, times: Sequence[float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Each invalid value interpolated linearly in `times` (default 0, 1, 2…) between the
    pixel's nearest valid earlier and later values; the nearest one where only one side has
    one (no extrapolation of a trend). A pixel never valid stays unfilled (NaN)."""
    values, valid = _check(values, valid)
    steps = values.shape[0]
    time = np.arange(steps, dtype=np.float64) if times is None else np.asarray(times, float)
    if time.shape != (steps,) or np.any(np.diff(time) <= 0):
        raise GapfillError(
            f"Give one increasing time per step of the series ({steps}); got {list(time)}."
        )
    before = _last_valid_index(valid)
    after = steps - 1 - _last_valid_index(valid[::-1])[::-1]
    after[after == steps] = -1  # no valid value later
    has_before, has_after = before >= 0, after >= 0
    value_before = np.take_along_axis(values, np.maximum(before, 0), axis=0)
    value_after = np.take_along_axis(values, np.maximum(after, 0), axis=0)
    now = time.reshape(-1, 1, 1)
    span = time[np.maximum(after, 0)] - time[np.maximum(before, 0)]
    both = has_before & has_after & (span > 0)
    weight = np.divide(now - time[np.maximum(before, 0)], span, out=np.zeros(span.shape),
                       where=both)
    result = np.where(has_before, value_before, value_after)
    result = np.where(both, value_before + (value_after - value_before) * weight, result)
    exists = has_before | has_after
    result = np.where(valid, values, np.where(exists, result, np.nan))
    return result, exists
