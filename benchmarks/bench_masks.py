"""How good each gap-mask method is on the real data, and how it handles haze.

Methods: the spectral score, ukis-csmask with its 4- and 6-band models, s2cloudless, each at
its recommended settings (core/masks/gap_mask.py RECOMMENDED), through the core engine
(`build_gap_mask`, the code behind gapfill:buildgapmask).

(1) cloud_labels: IoU, precision, recall of the cloud and the shadow class against the
    labelled map (4 = cloud, 0 = shadow). It is ukis-csmask's own test image (from its
    repository), so ukis-csmask may have seen it or its like; s2cloudless needs 10 bands,
    the image has 6. Run on the image's own pixels (no georeference; the fields' size says
    about 30 m, ukis-csmask's resolution), without haze buffer (the labels measure the
    detector); the cloud class also at each cloud threshold of (4).
(2) sen12mscr: agreement of the cloud class with the samples' own cloud masks (1 = cloud;
    how they were made is not documented: agreement, not accuracy), all 14 samples pooled,
    10 m pixels, without and with the haze buffer a user gets by default.
(3) eolearn_slovenia: agreement with the s2cloudless masks of cloud_mask.tif for the dates
    that have images (the 5 reference scenes, dated in bench_quality.SLOVENIA_DATES).
(4) haze: on the 50 SEN12MS-CR pairs (sen12mscr and sen12mscr_pairs: a cloudy and a clear
    image of the same place), a pixel is hazy when its blue (B2) TOA reflectance exceeds the
    clear image's by more than 0.02, and by more than its red (B4) does (scattering brightens
    blue most; a changed surface rarely does so), both above the sample's offset (the median
    difference over the pixels 30 m or more from any mask of the grid; samples with less than
    5 % of such pixels are left out). For every cloud threshold and haze buffer: the share of
    the pixels a mask leaves clear that are hazy (what a fill keeps and copies), and the share
    of all pixels it flags (what a fill must invent).
(5) quick-looks of sen12mscr_ts (the cloudy dates) and sen12mscr_pairs, one row per image:
    RGB, then each method's gaps (magenta = cloud and shadow as flagged), for looking at.
(6) the target of `make demo` (sen12mscr_ts 2018-03-07): the haze of (4) left among the pixels
    that its mask and a neighbouring date's mask (built the same way) both leave clear, against
    each neighbour of the demo; each method at its recommended settings, and the former demo's
    spectral mask dilated by 3 px.

    python benchmarks/bench_masks.py --output bench-output/masks
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from bench_quality import SLOVENIA_DATES
from demo import NEIGHBOURS as DEMO_NEIGHBOURS
from demo import TARGET as DEMO_TARGET
from osgeo import gdal

from harness import data_folder, machine, make_plugin_importable, timed

METHODS = {
    "spectral": {"method": "spectral"},
    "ukis-csmask 6 bands": {"method": "ukis", "ukis_bands": 6},
    "ukis-csmask 4 bands": {"method": "ukis", "ukis_bands": 4},
    "s2cloudless": {"method": "s2cloudless"},
}
THRESHOLDS = {  # cloud thresholds tried on haze: the recommended one is added
    "spectral": (0.1, 0.15, 0.2),
    "ukis-csmask 6 bands": (0.2, 0.35, 0.5),
    "ukis-csmask 4 bands": (0.2, 0.35, 0.5),
    "s2cloudless": (0.2, 0.3, 0.4),
}
BUFFERS_METRES = (0, 30, 60, 100, 150)
BUFFER_COST = 5.0  # points of pixels flagged a haze buffer may add
HAZE_EXCESS = 0.02  # blue TOA reflectance above the clear image's: hazy
MIN_CLEAR_SHARE = 0.05
LABELS = "cloud_labels"
SERIES = "sen12mscr_ts"
SLOVENIA = "eolearn_slovenia"
RGB = ("B4", "B3", "B2")


@dataclass
class Counts:
    """Pixel counts of a predicted mask against a reference, summed over images."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    def add(self, predicted: np.ndarray, truth: np.ndarray, valid: np.ndarray) -> None:
        predicted, truth = predicted & valid, truth & valid
        self.tp += int((predicted & truth).sum())
        self.fp += int((predicted & ~truth).sum())
        self.fn += int((~predicted & truth).sum())

    def cells(self) -> list[str]:
        union = self.tp + self.fp + self.fn
        return [
            f"{self.tp / union:.3f}" if union else "–",
            f"{self.tp / (self.tp + self.fp):.3f}" if self.tp + self.fp else "–",
            f"{self.tp / (self.tp + self.fn):.3f}" if self.tp + self.fn else "–",
        ]


@dataclass
class Masker:
    """Builds masks through the core engine into a scratch folder."""

    scratch: Path
    runs: list[float] = field(default_factory=list)

    def mask(self, image: Path, label: str, **overrides: object) -> np.ndarray:
        """The gap mask (0 clear, 1 gap, 255 no data) of `image` by method `label`."""
        from gapfill.core.masks.gap_mask import MaskSettings, build_gap_mask

        settings = replace(MaskSettings(**METHODS[label]), **overrides)
        output = self.scratch / "mask.tif"
        start = time.perf_counter()
        build_gap_mask(str(image), output, settings)
        self.runs.append(time.perf_counter() - start)
        return gdal.Open(str(output)).ReadAsArray()


def applies(label: str, image: Path) -> bool:
    """s2cloudless needs the 10 L1C bands: not on the 6-band labelled image."""
    return not (label == "s2cloudless" and gdal.Open(str(image)).RasterCount < 13)


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def labelled(masker: Masker, data: Path) -> str:
    image, labels = data / LABELS / "s2_l1c_6band.tif", data / LABELS / "labels.tif"
    truth = gdal.Open(str(labels)).ReadAsArray()
    rows = []
    for label in METHODS:
        if not applies(label, image):
            continue
        counts = {name: Counts() for name in ("cloud", "shadow", "both")}
        for name, flag, reference in (
            ("cloud", ("cloud",), truth == 4),
            ("shadow", ("shadow",), truth == 0),
            ("both", ("cloud", "shadow"), (truth == 4) | (truth == 0)),
        ):
            mask = masker.mask(image, label, flag=flag, buffer_metres=0.0)
            counts[name].add(mask == 1, reference, mask != 255)
        rows.append([label, *counts["cloud"].cells(), *counts["shadow"].cells(),
                     counts["both"].cells()[0]])
    header = ["method", "cloud IoU", "cloud precision", "cloud recall", "shadow IoU",
              "shadow precision", "shadow recall", "cloud or shadow IoU"]
    return table(header, rows) + "\n\nThe cloud class at the thresholds tried on haze (4):\n\n" + (
        labelled_thresholds(masker, image, truth == 4)
    )


def labelled_thresholds(masker: Masker, image: Path, truth: np.ndarray) -> str:
    """The cloud class of each method that applies at each cloud threshold of `THRESHOLDS`:
    what a lower threshold (more haze flagged) costs in precision on the labels."""
    rows = []
    for label in METHODS:
        if not applies(label, image):
            continue
        for threshold in THRESHOLDS[label]:
            counts = Counts()
            mask = masker.mask(image, label, flag=("cloud",), buffer_metres=0.0,
                               cloud_threshold=threshold)
            counts.add(mask == 1, truth, mask != 255)
            rows.append([label, f"{threshold:g}", *counts.cells()])
    return table(["method", "cloud threshold", "cloud IoU", "cloud precision", "cloud recall"],
                 rows)


def sen12mscr_samples(data: Path) -> list[str]:
    return sorted(p.name.split("_")[0] for p in (data / "sen12mscr").glob("*_cloudmask.tif"))


def dataset_masks(masker: Masker, data: Path) -> str:
    """Each method without and with its haze buffer, and s2cloudless on Sentinel Hub's
    production cells of 160 m."""
    variants = [(label, label, {"buffer_metres": 0.0}) for label in METHODS]
    variants += [(f"{label} + haze buffer", label, {}) for label in METHODS if label != "spectral"]
    variants.append(("s2cloudless on 160 m cells", "s2cloudless",
                     {"buffer_metres": 0.0, "resolution_metres": 160.0}))
    rows = []
    for name, label, overrides in variants:
        counts, flagged, pixels = Counts(), 0, 0
        for sample in sen12mscr_samples(data):
            image = data / "sen12mscr" / f"{sample}_s2_cloudy.tif"
            reference = gdal.Open(str(data / "sen12mscr" / f"{sample}_cloudmask.tif"))
            mask = masker.mask(image, label, flag=("cloud",), pixel_metres=10.0, **overrides)
            counts.add(mask == 1, reference.ReadAsArray() == 1, mask != 255)
            flagged, pixels = flagged + int((mask == 1).sum()), pixels + mask.size
        rows.append([name, *counts.cells(), f"{100 * flagged / pixels:.1f} %"])
    return table(["method", "IoU", "precision", "recall", "flagged"], rows)


def slovenia(masker: Masker, data: Path) -> str:
    dataset = gdal.Open(str(data / SLOVENIA / "cloud_mask.tif"))
    bands = {dataset.GetRasterBand(k).GetDescription()[:10]: k
             for k in range(1, dataset.RasterCount + 1)}
    reference = {scene: dataset.GetRasterBand(bands[day]).ReadAsArray() == 1
                 for scene, day in sorted(SLOVENIA_DATES.items())}
    rows = []
    for label in METHODS:
        counts, flagged = Counts(), []
        for scene, truth in reference.items():
            image = data / SLOVENIA / f"reference_scene_{scene}.tif"
            mask = masker.mask(image, label, flag=("cloud",))
            counts.add(mask == 1, truth, mask != 255)
            flagged.append(f"{SLOVENIA_DATES[scene]} {100 * (mask == 1).mean():.0f}")
        rows.append([label, *counts.cells(), "; ".join(flagged)])
    truth = [f"{SLOVENIA_DATES[k]} {100 * t.mean():.0f}" for k, t in reference.items()]
    rows.append(["s2cloudless masks of cloud_mask.tif", "1", "1", "1", "; ".join(truth)])
    return table(["method", "IoU", "precision", "recall", "% flagged per date"], rows)


def pairs(data: Path) -> list[tuple[Path, Path, float | None]]:
    """(cloudy, clear, pixel size when not georeferenced) of every SEN12MS-CR pair."""
    found = [
        (data / "sen12mscr" / f"{s}_s2_cloudy.tif", data / "sen12mscr" / f"{s}_s2_clear.tif",
         10.0)
        for s in sen12mscr_samples(data)
    ]
    for cloudy in sorted((data / "sen12mscr_pairs").glob("*_s2_cloudy.tif")):
        found.append((cloudy, cloudy.with_name(cloudy.name.replace("cloudy", "clear")), None))
    return found


def hazy_pixels(cloudy: Path, clear: Path, reference: np.ndarray) -> np.ndarray:
    """Where the blue TOA reflectance of `cloudy` exceeds that of `clear` by more than
    `HAZE_EXCESS`, and by more than its red does (scattering brightens blue more than red),
    both above their median difference over the `reference` pixels (the images' offset)."""
    bands = [gdal.Open(str(p)).ReadAsArray(band_list=[2, 4]).astype(np.float64) / 1e4
             for p in (cloudy, clear)]
    change = bands[0] - bands[1]  # (blue, red) cloudy − clear
    blue, red = change - np.median(change[:, reference], axis=1)[:, None, None]
    return (blue > HAZE_EXCESS) & (blue > red)


def haze(masker: Masker, data: Path) -> tuple[str, dict[str, float]]:
    """The trade-off table, and per method the haze buffer chosen at its recommended cloud
    threshold: the least haze among the buffers that flag at most `BUFFER_COST` points more
    pixels than no buffer."""
    from gapfill.core.masks.gap_mask import RECOMMENDED
    from gapfill.core.raster.morphology import dilate

    grid = {label: sorted({*THRESHOLDS[label],
                           RECOMMENDED[METHODS[label]["method"]].threshold})
            for label in METHODS}
    images = []
    for cloudy, clear, pixel in pairs(data):
        masks = {
            (label, threshold): masker.mask(cloudy, label, cloud_threshold=threshold,
                                            buffer_metres=0.0, pixel_metres=pixel)
            for label in METHODS for threshold in grid[label]
        }
        clear_everywhere = ~dilate(np.any([m == 1 for m in masks.values()], axis=0), 3)
        if clear_everywhere.mean() < MIN_CLEAR_SHARE:
            continue
        images.append((masks, hazy_pixels(cloudy, clear, clear_everywhere)))
    rows, scores = [], {}
    for label in METHODS:
        for threshold in grid[label]:
            for metres in BUFFERS_METRES:
                left = kept = flagged = total = 0
                for masks, hazy in images:
                    gap = dilate(masks[label, threshold] == 1, metres // 10)
                    left += int((hazy & ~gap).sum())
                    kept += int((~gap).sum())
                    flagged += int(gap.sum())
                    total += gap.size
                scores[label, threshold, metres] = (100 * left / kept, 100 * flagged / total)
                rows.append([label, f"{threshold:g}", f"{metres}",
                             f"{100 * left / kept:.2f} %", f"{100 * flagged / total:.1f} %"])
    chosen = {}
    for label in METHODS:
        threshold = RECOMMENDED[METHODS[label]["method"]].threshold
        bare = scores[label, threshold, 0][1]
        fair = [m for m in BUFFERS_METRES if scores[label, threshold, m][1] <= bare + BUFFER_COST]
        chosen[label] = float(min(fair, key=lambda m: scores[label, threshold, m][0]))
    header = ["method", "cloud threshold", "buffer (m)", "hazy among pixels left clear",
              "pixels flagged"]
    text = table(header, rows) + f"\n\n{len(images)} of {len(pairs(data))} pairs scored."
    return text, chosen


def demo_date(masker: Masker, data: Path) -> str:
    """Haze left by each method's mask (both dates' masks built the same way) on the target of
    `make demo`, against each of its neighbouring dates, and by the former demo's mask."""
    variants = [(label, label, {}) for label in METHODS]
    variants.append(("spectral, 3 px dilation (the former demo)", "spectral", {"dilation": 3}))
    target = data / SERIES / f"s2_{DEMO_TARGET}.tif"
    rows = []
    for name, label, overrides in variants:
        mask = masker.mask(target, label, **overrides)
        cells = [f"{100 * (mask == 1).mean():.1f} %"]
        for day in DEMO_NEIGHBOURS:
            other = data / SERIES / f"s2_{day}.tif"
            both = (mask == 0) & (masker.mask(other, label, **overrides) == 0)
            if not both.any():
                cells.append("–")
                continue
            hazy = hazy_pixels(target, other, both) & both
            cells.append(f"{100 * hazy.sum() / both.sum():.2f} %")
        rows.append([name, *cells])
    header = ["method", "flagged", *(f"hazy left clear, vs {day}"
                                     for day in DEMO_NEIGHBOURS)]
    return table(header, rows)


def rgb_panel(image: Path) -> np.ndarray:
    from gapfill.core.raster.access import band_descriptions
    from gapfill.core.raster.quicklook import stretch_limits, to_bytes
    from gapfill.core.raster.sentinel2_bands import band_names

    dataset = gdal.Open(str(image))
    names = band_names(band_descriptions(dataset))
    values = dataset.ReadAsArray(band_list=[names.index(b) + 1 for b in RGB])
    lower, upper = stretch_limits(values, np.ones(values.shape[1:], dtype=bool))
    return to_bytes(values, lower, upper)


def quicklooks(masker: Masker, images: list[tuple[Path, float | None]], output: Path) -> Path:
    """One row per image: RGB, then each method's gaps in magenta (recommended settings)."""
    from gapfill.core.raster.quicklook import side_by_side, write_png

    rows = []
    for image, pixel in images:
        panel = rgb_panel(image)
        panels = [panel]
        for label in METHODS:
            marked = panel.copy()
            if applies(label, image):
                gap = masker.mask(image, label, pixel_metres=pixel) == 1
                marked[:, gap] = (marked[:, gap] // 3 + np.array([170, 0, 170])[:, None]
                                  ).astype(np.uint8)
            panels.append(marked)
        rows.append(side_by_side(panels))
    width = rows[0].shape[2]
    canvas = np.full((3, sum(r.shape[1] + 8 for r in rows), width), 255, dtype=np.uint8)
    y = 0
    for row in rows:
        canvas[:, y : y + row.shape[1]] = row
        y += row.shape[1] + 8
    return write_png(output, canvas)


def cloudy_dates(data: Path) -> list[Path]:
    """The dates of the series with clouds (the spectral score flags more than 2 %)."""
    from gapfill.core.masks.gap_mask import MaskSettings, build_gap_mask

    found = []
    with tempfile.TemporaryDirectory() as scratch:
        for image in sorted((data / SERIES).glob("s2_*.tif")):
            report = build_gap_mask(str(image), Path(scratch) / "m.tif",
                                    MaskSettings("spectral", buffer_metres=0.0))
            if report.gap_fraction > 0.02:
                found.append(image)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=Path("bench-output/masks"))
    parser.add_argument("--skip-haze", action="store_true", help="sections 1–3 and 5 only")
    args = parser.parse_args()
    make_plugin_importable()
    data = data_folder(LABELS)
    folder = args.output.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    sections = []
    with tempfile.TemporaryDirectory() as scratch:
        masker = Masker(Path(scratch))
        sections.append(("(1) cloud_labels", timed("cloud_labels", lambda: labelled(masker, data))))
        sections.append(("(2) sen12mscr dataset masks",
                         timed("sen12mscr", lambda: dataset_masks(masker, data))))
        sections.append(("(3) eolearn_slovenia s2cloudless masks",
                         timed("slovenia", lambda: slovenia(masker, data))))
        if not args.skip_haze:
            text, chosen = timed("haze", lambda: haze(masker, data))
            lines = [f"{label}: {metres:g} m" for label, metres in chosen.items()]
            sections.append(("(4) haze left and pixels flagged", text + "\n\nBuffer with the "
                             f"least haze at the recommended threshold, within {BUFFER_COST:g} "
                             "points of pixels flagged: " + "; ".join(lines) + "."))
        sections.append((f"(6) the date of make demo, {DEMO_TARGET}",
                         timed("demo date", lambda: demo_date(masker, data))))
        series = timed("cloudy dates", lambda: cloudy_dates(data))
        looks = [
            timed("quick-looks of the series", lambda: quicklooks(
                masker, [(p, None) for p in series], folder / "quicklook_series.png")),
            timed("quick-looks of the pairs", lambda: quicklooks(
                masker, [(c, None) for c, _, pixel in pairs(data) if pixel is None],
                folder / "quicklook_pairs.png")),
        ]
        runs = len(masker.runs)
    command = f"GAPFILL_DATA={data} python {shlex.join(sys.argv)}"
    report = "\n\n".join(
        ["# Gap masks on the real data", __doc__.split("\n\n", 1)[1].split("\n    python")[0]]
        + [f"## {title}\n\n{body}" for title, body in sections]
        + [f"Quick-looks (RGB | {' | '.join(METHODS)}): " + ", ".join(str(p) for p in looks),
           f"Machine: {machine()}.",
           f"Command: `{command}`; {runs} masks, whole run {time.perf_counter() - start:.0f} s."]
    )
    (folder / "masks.md").write_text(report + "\n")
    print(report)


if __name__ == "__main__":
    main()
