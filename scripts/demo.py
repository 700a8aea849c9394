"""`make demo`: fill a cloudy Sentinel-2 date of the real time series from its neighbours.

Everything runs through `qgis_process`, as a user would: gap masks from the spectral cloud
score for the cloudy date and its neighbours, then the best classical fill (see
BENCHMARKS.md). Writes the filled GeoTIFF and a side-by-side quick-look into the output folder.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from osgeo import gdal

from qgis_runner import REPO, QgisProcess

sys.path.insert(0, str(REPO.parent))
TARGET = "2018-03-07"  # about 40 % clouds and shadows
NEIGHBOURS = ["2018-02-10", "2018-02-25", "2018-03-22", "2018-04-26"]
BEST_CLASSICAL = 1  # filltemporal METHOD: histogram matching, best on sen12mscr_ts (BENCHMARKS.md)
RGB = [4, 3, 2]  # B4, B3, B2 of the 13-band L1C stack


def import_core():
    """The plugin's core, whatever the repository folder is called."""
    import importlib

    return importlib.import_module(f"{REPO.name}.core.quicklook")


def quicklook(cloudy: Path, mask: Path, filled: Path, output: Path) -> Path:
    """Cloudy | gaps in magenta | filled, with one shared stretch, enlarged ×2."""
    look = import_core()
    before = gdal.Open(str(cloudy)).ReadAsArray(band_list=RGB).astype(np.float64)
    after = gdal.Open(str(filled)).ReadAsArray(band_list=RGB).astype(np.float64)
    gaps = gdal.Open(str(mask)).ReadAsArray() != 0
    lower, upper = look.stretch_limits(after, np.ones_like(gaps))
    panels = [look.to_bytes(before, lower, upper), None, look.to_bytes(after, lower, upper)]
    marked = panels[0].copy()
    marked[:, gaps] = np.array([255, 0, 255], dtype=np.uint8)[:, None]
    panels[1] = marked
    enlarged = [p.repeat(2, axis=1).repeat(2, axis=2) for p in panels]
    return look.write_png(output, look.side_by_side(enlarged))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, default=REPO / "demo-output")
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get("GAPFILL_DATA", REPO.parent / "shared/data")),
    )
    args = parser.parse_args()
    series = args.data / "sen12mscr_ts"
    if not series.is_dir():
        sys.exit(f"error: real data not found in {series}; set GAPFILL_DATA to the data folder")
    output = args.output.resolve()
    output.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    qgis = QgisProcess(output / ".qgis")
    dates = [TARGET, *NEIGHBOURS]
    masks = {}
    for day in dates:
        result = qgis.run(
            "gapfill:buildgapmask",
            {
                "INPUT": series / f"s2_{day}.tif",
                "METHOD": 0,
                "DILATION": 3,
                "OUTPUT": output / f"gapmask_{day}.tif",
            },
        )
        masks[day] = Path(result["results"]["OUTPUT"])
        fraction = result["results"]["GAP_FRACTION"]
        print(f"gap mask {day}: {100 * fraction:.1f} % clouds and shadows")
    filled = output / f"s2_{TARGET}_filled.tif"
    result = qgis.run(
        "gapfill:filltemporal",
        {
            "INPUT": series / f"s2_{TARGET}.tif",
            "GAP_MASK": masks[TARGET],
            "OTHER_DATES": [series / f"s2_{day}.tif" for day in NEIGHBOURS],
            "OTHER_MASKS": [masks[day] for day in NEIGHBOURS],
            "METHOD": BEST_CLASSICAL,
            "OUTPUT": filled,
        },
    )
    for line in result["log"].get("info", []) + result["log"].get("warning", []):
        print(f"  {line}")
    picture = quicklook(
        series / f"s2_{TARGET}.tif", masks[TARGET], filled, output / "quicklook.png"
    )
    print(f"filled image: {filled}")
    print(f"quick-look (cloudy | gaps | filled): {picture}")
    print(f"make demo took {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
