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


def _per_band(scalings: Sequence[BandScaling], ndim: int) -> dict[str, np.ndarray]:
    """Offsets, scales and clip bounds as float32 arrays that broadcast over (bands, ...): one
    whole-array operation each instead of one per band (no clip: ±inf)."""
    shape = (len(scalings),) + (1,) * (ndim - 1)

    def column(values: list[float]) -> np.ndarray:
        return np.array(values, dtype=np.float32).reshape(shape)

    return {
        "offset": column([s.offset for s in scalings]),
        "scale": column([s.scale for s in scalings]),
        "low": column([-np.inf if s.clip_min is None else s.clip_min for s in scalings]),
        "high": column([np.inf if s.clip_max is None else s.clip_max for s in scalings]),
    }


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
            band[band <= 0] = np.nan
            np.log10(band, out=band)
            band *= 10
    bands = _per_band(scalings, out.ndim)
    np.maximum(out, bands["low"], out=out)  # NaN stays NaN
    np.minimum(out, bands["high"], out=out)
    out -= bands["offset"]
    out *= bands["scale"]
    return out


def unscale_bands(values: np.ndarray, scalings: Sequence[BandScaling]) -> np.ndarray:
    """Network values → raw values: the inverse of `scale_bands`, clipped to the same bounds."""
    _check_bands(values, scalings)
    out = np.array(values, dtype=np.float32, copy=True)
    bands = _per_band(scalings, out.ndim)
    out /= bands["scale"]
    out += bands["offset"]
    np.maximum(out, bands["low"], out=out)  # NaN stays NaN
    np.minimum(out, bands["high"], out=out)
    for band, scaling in zip(out, scalings, strict=True):
        if scaling.db:
            band /= 10
            np.power(np.float32(10), band, out=band)
    return out
