"""Haze around the gaps that the gap mask missed, measured so that fills do not copy it.

A cloud mask ends where its detector's threshold ends, but a cloud's thin edge and the haze
around it reach further: the pixels just outside the mask are brighter in blue than the ground
below them, and a fill that continues them paints that haze into the gap. The Haze Optimised
Transform (Zhang, Guindon and Cihlar, 2002) tells haze from bright ground: clear pixels lie on
a line in the blue-red plane, haze lifts blue above it. Its median by distance to the gaps,
against the pixels far from them and in units of its spread there, says whether the ring
around the gaps is hazy and how far the haze reaches: that is the margin of clear pixels a
fill should not take as sources (they stay as they are; only gap pixels are ever written).

Where the gaps hold clouds (gap pixels far brighter than any clear ground), the ring is
measured beside them only: a mask of clouds and their shadows (or no-data) has rings with no
haze around the shadows, and pooled with those the clouds' hazy ring was lost (the labelled
scene of `cloud_labels`: +1.9 spreads at the whole mask's edge, +6.5 beside the clouds). A mask
laid on clear ground holds no clouds, and every ring counts, as before.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..raster.proximity import distance_to

HAZE_BANDS = ("B2", "B4")  # blue and red: the transform's plane
DISTANCE_BINS = ((0, 2), (2, 4), (4, 8), (8, 12), (12, 16))  # px from the nearest gap
FAR_DISTANCE = 24  # beyond: the reference pixels, far from every gap
MIN_FAR_PIXELS = 1000  # fewer: too few reference pixels to measure against
MIN_BIN_PIXELS = 30
HAZE_AT_EDGE = 3.0  # spreads above the far pixels at the gaps' edge: a hazy fringe
HAZE_REACH = 1.0  # the fringe ends at the first distance bin below this
# nor does the margin take more than a quarter of the clear pixels: a fill from that far away,
# validated on the few pixels left, loses more than the haze costs
MIN_SOURCE_SHARE = 0.75
# Gap pixels brighter (blue + red) than the clear pixels' 99th percentile, by as much again as
# that is above their median, are cloud: no ground under a mask laid on clear images is
# (at most 1.5 % of the gap pixels, against 3.3 % to 81 % in the cloudy images measured).
CLOUD_QUANTILE = 0.99
MIN_CLOUD_SHARE = 0.03  # fewer such gap pixels: no clouds under the mask, every ring counts


@dataclass(frozen=True)
class HazeFringe:
    """What was measured: the margin in pixels (0: no fringe), and the transform's excess
    over the far pixels in spreads, per distance bin (None: it could not be measured)."""

    margin: int
    excess: tuple[float, ...] | None
    around: str = "gaps"  # "clouds": measured beside the clouds the gaps hold, not their shadows

    def message(self) -> str:
        if self.excess is None:
            return (
                "Haze around the gaps not measured (too few clear pixels far from the gaps, or "
                "no blue and red bands named B2 and B4): every clear pixel is a source."
            )
        profile = ", ".join(
            f"{low}-{high} px {value:+.1f}"
            for (low, high), value in zip(DISTANCE_BINS, self.excess, strict=False)
        )
        if self.margin == 0:
            return (
                f"No haze around the {self.around} (haze index over far pixels, in spreads: "
                f"{profile})."
            )
        return (
            f"Haze around the {self.around}: the haze index is {self.excess[0]:.1f} spreads "
            f"above the far pixels at their edge ({profile}), so the clear pixels within "
            f"{self.margin} px of the gaps are not used as sources (they are kept as they are). "
            f"The gap mask misses the clouds' hazy edges: grow it by {self.margin} px (Build gap "
            "mask's dilation) to fill them too, or set the source margin yourself."
        )


def haze_index(values: np.ndarray, blue: int, red: int, line: tuple[float, float]) -> np.ndarray:
    """The transform: blue above the clear line blue = offset + slope × red."""
    offset, slope = line
    return values[blue] - (offset + slope * values[red])


def measure_haze_fringe(
    windows: list[tuple[np.ndarray, np.ndarray]], blue: int, red: int
) -> HazeFringe:
    """The fringe around the gaps of `windows`, each (values (bands, h, w), NaN where the
    image has no data; gap (h, w) bool): pooled over the windows, the clear line fitted on
    their far pixels; beside the clouds only, where the gaps hold clouds. The margin reaches
    at most the last distance bin's end, and leaves at least `MIN_SOURCE_SHARE` of the clear
    pixels as sources."""
    if not windows:
        return HazeFringe(0, None)
    planes = [values[[blue, red]] for values, _ in windows]
    gaps = [gap for _, gap in windows]
    brightness = [plane.sum(axis=0) for plane in planes]
    clear = [~gap & np.isfinite(plane).all(axis=0) for plane, gap in zip(planes, gaps, strict=True)]
    ground = np.concatenate([b[c] for b, c in zip(brightness, clear, strict=True)])
    if ground.size == 0:
        return HazeFringe(0, None)
    median, high = np.median(ground), np.quantile(ground, CLOUD_QUANTILE)
    cloud_level = high + (high - median)
    cloud = sum(int((g & (b > cloud_level)).sum()) for g, b in zip(gaps, brightness, strict=True))
    beside_clouds = cloud >= MIN_CLOUD_SHARE * max(sum(int(g.sum()) for g in gaps), 1)
    distances, to_gap, pooled = [], [], []
    for plane, gap, bright, usable in zip(planes, gaps, brightness, clear, strict=True):
        distance = distance_to(gap)
        to_gap.append(distance[usable])
        if beside_clouds:  # not the rings of shadows and no-data (darker than most ground)
            dark = gap & ~(bright >= median)
            beside_dark = distance_to(dark) < distance_to(gap & ~dark)
            usable = usable & ~(beside_dark & (distance <= FAR_DISTANCE))
        distances.append(distance[usable])
        pooled.append(plane[:, usable])
    fringe = _fringe(
        np.concatenate(distances), np.concatenate(pooled, axis=1), np.concatenate(to_gap)
    )
    return replace(fringe, around="clouds") if beside_clouds else fringe


def _fringe(distance: np.ndarray, pooled: np.ndarray, every_clear: np.ndarray) -> HazeFringe:
    """The margin that the measured clear pixels' blue and red values (`pooled`) call for by
    their `distance` to the nearest gap; `every_clear`: the distance of every clear pixel, of
    which the margin may take no more than its share."""
    far = distance > FAR_DISTANCE
    if far.sum() < MIN_FAR_PIXELS or np.ptp(pooled[1, far]) == 0:
        return HazeFringe(0, None)
    slope, offset = np.polyfit(pooled[1, far], pooled[0, far], 1)
    index = haze_index(pooled, 0, 1, (offset, slope))
    reference = np.median(index[far])
    spread = np.median(np.abs(index[far] - reference))
    if spread <= 0:
        return HazeFringe(0, None)
    excess = []
    for low, high in DISTANCE_BINS:
        inside = (distance > low) & (distance <= high)
        if inside.sum() < MIN_BIN_PIXELS:
            break
        excess.append(float((np.median(index[inside]) - reference) / spread))
    if not excess:
        return HazeFringe(0, None)
    margin = 0
    if excess[0] >= HAZE_AT_EDGE:
        for (_, high), value in zip(DISTANCE_BINS, excess, strict=False):
            if value < HAZE_REACH or (every_clear > high).mean() < MIN_SOURCE_SHARE:
                break
            margin = high
    return HazeFringe(margin, tuple(excess))
