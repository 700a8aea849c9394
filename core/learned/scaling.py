"""Per-band scaling between raw pixel values and network values, as the model card defines it.

Arrays are (bands, ...) and come back as new float32 arrays. No-data travels as NaN: NaN stays
NaN both ways, and a dB band turns non-positive linear values (no backscatter: no data) into NaN.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .model_card import BandScaling


def _check_bands(values: np.ndarray, scalings: Sequence[BandScaling]) -> None:
    if values.shape[0] != len(scalings):
        raise ValueError(f"{values.shape[0]} bands given for {len(scalings)} band scalings")


def _per_band(scalings: Sequence[BandScaling], ndim: int) -> dict[str, np.ndarray | None]:
    """Offsets, scales and clip bounds as float32 arrays that broadcast over (bands, ...): one
    whole-array operation each instead of one per band. None where the step changes nothing
    for any band (offset 0, scale 1, no bound), so that it costs no pass over the data."""
    shape = (len(scalings),) + (1,) * (ndim - 1)

    def column(values: list[float], identity: float) -> np.ndarray | None:
        if all(value == identity for value in values):
            return None
        return np.array(values, dtype=np.float32).reshape(shape)

    return {
        "offset": column([s.offset for s in scalings], 0.0),
        "scale": column([s.scale for s in scalings], 1.0),
        "low": column([-np.inf if s.clip_min is None else s.clip_min for s in scalings], -np.inf),
        "high": column([np.inf if s.clip_max is None else s.clip_max for s in scalings], np.inf),
    }


def _apply(out: np.ndarray, ufunc: np.ufunc, operand: np.ndarray | None) -> None:
    if operand is not None:
        ufunc(out, operand, out=out)


def decibels_in_place(values: np.ndarray) -> np.ndarray:
    """Linear backscatter → dB (10·log10), in place in a float array; zero or negative
    backscatter has no dB value and becomes NaN (no data)."""
    values[values <= 0] = np.nan
    np.log10(values, out=values)
    values *= 10
    return values


def scale_bands(
    values: np.ndarray, scalings: Sequence[BandScaling], *, in_place: bool = False
) -> np.ndarray:
    """Raw values → network values: dB conversion, clipping, then (v − offset) · scale.

    `in_place`: scale a float32 array the caller no longer needs without copying it.
    """
    _check_bands(values, scalings)
    if in_place and values.dtype == np.float32 and values.flags.writeable:
        out = values
    else:
        out = np.array(values, dtype=np.float32, copy=True)
    for band, scaling in zip(out, scalings, strict=True):
        if scaling.db:
            decibels_in_place(band)
    bands = _per_band(scalings, out.ndim)
    _apply(out, np.maximum, bands["low"])  # NaN stays NaN
    _apply(out, np.minimum, bands["high"])
    _apply(out, np.subtract, bands["offset"])
    _apply(out, np.multiply, bands["scale"])
    return out


def unscale_bands(values: np.ndarray, scalings: Sequence[BandScaling]) -> np.ndarray:
    """Network values → raw values: the inverse of `scale_bands`, clipped to the same bounds."""
    _check_bands(values, scalings)
    out = np.array(values, dtype=np.float32, copy=True)
    bands = _per_band(scalings, out.ndim)
    _apply(out, np.divide, bands["scale"])
    _apply(out, np.add, bands["offset"])
    _apply(out, np.maximum, bands["low"])  # NaN stays NaN
    _apply(out, np.minimum, bands["high"])
    for band, scaling in zip(out, scalings, strict=True):
        if scaling.db:
            band /= 10
            np.power(np.float32(10), band, out=band)
    return out
