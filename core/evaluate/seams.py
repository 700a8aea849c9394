"""How visible the edge of a filled gap is: the jump across the gap boundary, against the same
jump in the reference.

A fill can score well on average and still draw a hard line around every gap (a flat blob, a
colour offset). For every pair of 4-neighbours with one filled pixel and one clear pixel, the
absolute difference is averaged over the pairs and the bands, once in the filled image and once
in the reference; their ratio is 1 when the boundary is as smooth as in the true image, above 1
when the fill leaves a seam.
"""

from __future__ import annotations

import math

import numpy as np


def boundary_jump(values: np.ndarray, filled: np.ndarray, clear: np.ndarray) -> tuple[float, int]:
    """(sum of |difference| over the bands, count of pairs × bands) across the boundary between
    `filled` and `clear` pixels (h, w) of `values` (bands, h, w)."""
    total, count = 0.0, 0
    for axis in (1, 2):
        ahead = [slice(None)] * 3
        behind = [slice(None)] * 3
        ahead[axis], behind[axis] = slice(1, None), slice(None, -1)
        a, b = tuple(ahead), tuple(behind)
        pairs = (filled[a[1:]] & clear[b[1:]]) | (clear[a[1:]] & filled[b[1:]])
        difference = np.abs(values[a] - values[b])[:, pairs]
        finite = np.isfinite(difference)
        total += float(difference[finite].sum())
        count += int(finite.sum())
    return total, count


def seam_ratio(
    reference: np.ndarray, filled_image: np.ndarray, filled: np.ndarray, clear: np.ndarray
) -> float:
    """Mean boundary jump of the filled image over that of the reference (NaN without pairs)."""
    jump, pairs = boundary_jump(filled_image, filled, clear)
    truth, truth_pairs = boundary_jump(reference, filled, clear)
    if not pairs or not truth_pairs or truth == 0:
        return math.nan
    return (jump / pairs) / (truth / truth_pairs)
