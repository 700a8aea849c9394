"""Haze around real clouds that their masks missed (BENCHMARKS.md, "Haze around the real clouds").

For every partly cloudy sample of sen12mscr (c): the visible brightness (mean of B2-B4) by
distance to the cloud mask on the cloudy image and on the clear date at the same pixels (and how
far apart the two dates are on the clear pixels); the
pyramid fill from the clear pixels at least N px from the mask, scored on the gap pixels
against the clear date (SEN12MS-CR protocol) and against the image itself with the mask laid on
it (gap filling); the margin `measure_haze_fringe` finds on both. Then the margins it finds on
the 36 pairs of sen12mscr_pairs (f), cloudy and clear, under their spectral masks (dilated
2 px, as bench_quality builds them). Last, the labelled scene of cloud_labels under its mask of
clouds and shadows (labels 4 and 0), where the ring is measured beside the clouds only.

    GAPFILL_DATA=../shared/data PYTHONPATH=benchmarks python benchmarks/bench_haze.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from osgeo import gdal

from harness import data_folder, make_plugin_importable

make_plugin_importable()
from gapfill.core.fills.pyramid_fill import pyramid_fill_arrays  # noqa: E402
from gapfill.core.masks.gap_mask import MaskSettings, build_gap_mask  # noqa: E402
from gapfill.core.masks.haze_fringe import measure_haze_fringe  # noqa: E402
from gapfill.core.raster.proximity import distance_to  # noqa: E402

PARTLY_CLOUDY = ("2729", "4287", "4294", "4433", "5254", "5278", "5349", "6553", "7264")
BLUE, RED = 1, 3
PROFILE = ((0, 1.5), (1.5, 3), (3, 5), (5, 8), (8, 12), (12, 16), (16, 24), (24, 32), (32, 64))
MARGINS = (0, 8, 16)


def read(path: Path) -> np.ndarray:
    return gdal.Open(str(path)).ReadAsArray().astype(np.float64)


def psnr(filled: np.ndarray, truth: np.ndarray, where: np.ndarray) -> float:
    error = np.clip(filled[:, where] / 1e4, 0, 1) - np.clip(truth[:, where] / 1e4, 0, 1)
    return float(-10 * np.log10((error**2).mean()))


def brightness(values: np.ndarray, distance: np.ndarray) -> str:
    visible = values[1:4].mean(axis=0) / 1e4
    cells = []
    for low, high in PROFILE:
        inside = (distance > low) & (distance <= high)
        cells.append(f"{np.median(visible[inside]):.3f}" if inside.sum() > 20 else "–")
    return " ".join(cells)


def pyramid_scores(source: np.ndarray, truth: np.ndarray, gap: np.ndarray) -> str:
    distance = distance_to(gap)
    scores = []
    for margin in MARGINS:
        clear = distance > margin
        filled = np.nan_to_num(pyramid_fill_arrays(source, clear)[0])
        scores.append(f"{psnr(filled, truth, gap):.2f}")
    return " / ".join(scores)


def margin_text(values: np.ndarray, gap: np.ndarray, blue: int = BLUE, red: int = RED) -> str:
    fringe = measure_haze_fringe([(values, gap)], blue, red)
    edge = "not measured" if fringe.excess is None else f"{fringe.excess[0]:+.1f} at the edge"
    return f"{fringe.margin} px ({edge}, around the {fringe.around})"


def sen12mscr(folder: Path) -> None:
    print("sample | cover | clear pixels: PSNR against the clear date (dB) | cloudy: brightness "
          "by distance | clear date: same pixels | "
          f"pyramid N = {MARGINS} px, SEN12MS-CR | the same, gap filling | margin cloudy | "
          "margin clear")
    print("distance bins (px):", " ".join(f"{lo}-{hi}" for lo, hi in PROFILE))
    for name in PARTLY_CLOUDY:
        cloudy = read(folder / f"{name}_s2_cloudy.tif")
        clear = read(folder / f"{name}_s2_clear.tif")
        gap = read(folder / f"{name}_cloudmask.tif") > 0
        distance = distance_to(gap)
        row = [name, f"{gap.mean():.2f}", f"{psnr(cloudy, clear, ~gap):.2f}",
               brightness(cloudy, distance), brightness(clear, distance)]
        if gap.mean() < 0.95:
            row += [pyramid_scores(cloudy, clear, gap), pyramid_scores(clear, clear, gap)]
        else:
            row += ["–", "–"]
        row += [margin_text(cloudy, gap), margin_text(clear, gap)]
        print(" | ".join(row), flush=True)


def pairs(folder: Path) -> None:
    found = {"cloudy": [], "clear": []}
    with tempfile.TemporaryDirectory() as scratch:
        for cloudy_path in sorted(folder.glob("*_s2_cloudy.tif")):
            name = cloudy_path.name[: -len("_s2_cloudy.tif")]
            mask = Path(scratch) / f"{name}.tif"
            build_gap_mask(str(cloudy_path), mask, MaskSettings(method="spectral", dilation=2))
            gap = read(mask) == 1
            for image in found:
                values = read(folder / f"{name}_s2_{image}.tif")
                fringe = measure_haze_fringe([(values, gap)], BLUE, RED)
                found[image].append((name, fringe))
    for image, fringes in found.items():
        margins = [(n, f.margin, f.around) for n, f in fringes if f.margin]
        edges = [f.excess[0] for _, f in fringes if f.excess is not None]
        print(f"pairs, {image} images: a margin on {len(margins)} of {len(fringes)} {margins}; "
              f"measured on {len(edges)}, largest excess at the edge {max(edges):+.1f} spreads")


def cloud_labels(folder: Path) -> None:
    values = read(folder / "s2_l1c_6band.tif")  # B2, B3, B4, B8, B11, B12
    labels = read(folder / "labels.tif")
    for name, gap in (("clouds and shadows", (labels == 4) | (labels == 0)),
                      ("clouds", labels == 4)):
        print(f"cloud_labels, mask of {name}: margin {margin_text(values, gap, 0, 2)}")


def main() -> None:
    sen12mscr(data_folder("sen12mscr") / "sen12mscr")
    pairs(data_folder("sen12mscr_pairs") / "sen12mscr_pairs")
    cloud_labels(data_folder("cloud_labels") / "cloud_labels")


if __name__ == "__main__":
    main()
