"""Neighbourhood operations on 2-D arrays with numpy only (QGIS's Python may lack scipy)."""

from __future__ import annotations

import numpy as np


def box_sum(array: np.ndarray, radius: int) -> np.ndarray:
    """Sum over a (2r+1)² window around each pixel, truncated at the borders (integral image)."""
    height, width = array.shape
    integral = np.zeros((height + 1, width + 1))
    np.cumsum(np.cumsum(array, axis=0), axis=1, out=integral[1:, 1:])
    # Edge padding clamps the window's corners to the image, so every corner is a plain slice.
    padded = np.pad(integral, ((radius, radius + 1), (radius, radius + 1)), mode="edge")
    low_y, high_y = slice(0, height), slice(2 * radius + 1, 2 * radius + 1 + height)
    low_x, high_x = slice(0, width), slice(2 * radius + 1, 2 * radius + 1 + width)
    inside = padded[high_y, high_x] - padded[low_y, high_x]
    return inside - padded[high_y, low_x] + padded[low_y, low_x]


def box_mean(array: np.ndarray, radius: int) -> np.ndarray:
    """Mean over the (2r+1)² window, counting only pixels inside the array."""
    ones = np.ones(array.shape)
    return box_sum(array.astype(np.float64), radius) / box_sum(ones, radius)


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Grow True regions by `radius` pixels (a disk), as clouds have soft edges."""
    if radius <= 0:
        return mask.copy()
    out = mask.copy()
    height, width = mask.shape
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dx * dx + dy * dy > radius * radius or (dx == 0 and dy == 0):
                continue
            if abs(dy) >= height or abs(dx) >= width:  # reaches past the array: nothing moves
                continue
            ys, yd = (slice(0, height - dy), slice(dy, height)) if dy >= 0 else (
                slice(-dy, height), slice(0, height + dy))
            xs, xd = (slice(0, width - dx), slice(dx, width)) if dx >= 0 else (
                slice(-dx, width), slice(0, width + dx))
            out[yd, xd] |= mask[ys, xs]
    return out
