"""`make demo`: fill the clouds of real Sentinel-2 images with the best fill we have for each case.

Everything runs through `qgis_process`, as a user would. The best fill we have is the scene fill
(`gapfill:fillscene`): on each scene it lays the scene's own cloud shapes on its clear pixels,
lets every applicable fill compete there (spatial pyramid and inverse distance, temporal
interpolation and histogram matching with other dates, the bundled models that fit, a network
adapted to the scene), fills with the winner and reports how good it is on this scene, with a
confidence layer. By construction it is not worse than the best of them on the scene's own
report blocks (BENCHMARKS.md, "Quality").

1. multi-date: a cloudy date of the SEN12MS-CR-TS series and its neighbours; gap masks from the
   best cloud detector installed (`gapfill:buildgapmask` METHOD 5, automatic: ukis-csmask with
   its haze buffer when the "masks" dependencies are there, else the spectral score; the log
   says which) for it and its neighbours;
2. single date: the georeferenced cloudy SEN12MS-CR sample with its Sentinel-1 image of the same
   date.

Writes the filled GeoTIFFs, their confidence layers, the scene reports (HTML and JSON) and
side-by-side quick-looks into the output folder.
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
TARGET = "2018-07-05"  # clouds and their shadows on about half of it (automatic mask)
NEIGHBOURS = ["2018-06-10", "2018-06-25", "2018-07-20", "2018-07-30"]  # clear dates around it
SCENE = {"SEED": 0}  # the scene fill at its defaults (5-minute budget), reproducible seed
RGB = [4, 3, 2]  # B4, B3, B2 of the 13-band L1C stack
MASK = {"METHOD": 5}  # automatic: the best detector installed, with its haze buffer
SINGLE = "ROIs1868_summer_19_p30"  # sen12mscr_georef: cloudy S2 (~30 % cloud) and its S1


def import_core():
    """The plugin's core, whatever the repository folder is called."""
    import importlib

    return importlib.import_module(f"{REPO.name}.core.raster.quicklook")


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


def multi_date(qgis: QgisProcess, series: Path, output: Path) -> tuple[Path, Path]:
    """The scene fill of the cloudy date with its neighbours; (filled, quick-look)."""
    masks = {}
    for day in [TARGET, *NEIGHBOURS]:
        result = qgis.run(
            "gapfill:buildgapmask",
            {"INPUT": series / f"s2_{day}.tif", **MASK, "OUTPUT": output / f"gapmask_{day}.tif"},
        )
        masks[day] = Path(result["results"]["OUTPUT"])
        fraction = result["results"]["GAP_FRACTION"]
        print(f"gap mask {day}: {100 * fraction:.1f} % clouds and shadows "
              f"({result['results']['METHOD_USED']})")
    filled = output / f"s2_{TARGET}_filled.tif"
    result = scene_fill(qgis, output, "multi_date", {
        "INPUT": series / f"s2_{TARGET}.tif",
        "GAP_MASK": masks[TARGET],
        "OTHER_DATES": [series / f"s2_{day}.tif" for day in NEIGHBOURS],
        "OTHER_MASKS": [masks[day] for day in NEIGHBOURS],
        "OUTPUT": filled,
    })
    picture = quicklook(
        series / f"s2_{TARGET}.tif", masks[TARGET], filled, output / "quicklook.png"
    )
    return filled, picture


def single_date(qgis: QgisProcess, folder: Path, output: Path) -> tuple[Path, Path]:
    """The scene fill of a cloudy image with its Sentinel-1; (filled, quick-look)."""
    cloudy = folder / f"{SINGLE}_s2_cloudy.tif"
    result = qgis.run(
        "gapfill:buildgapmask",
        {"INPUT": cloudy, **MASK, "OUTPUT": output / "gapmask_single.tif"},
    )
    mask = Path(result["results"]["OUTPUT"])
    print(f"gap mask {SINGLE}: {100 * result['results']['GAP_FRACTION']:.1f} % clouds and "
          f"shadows ({result['results']['METHOD_USED']})")
    filled = output / f"{SINGLE}_s2_filled.tif"
    result = scene_fill(qgis, output, "single_date", {
        "INPUT": cloudy,
        "GAP_MASK": mask,
        "SAR": folder / f"{SINGLE}_s1.tif",
        "OUTPUT": filled,
    })
    return filled, quicklook(cloudy, mask, filled, output / "quicklook_single_date.png")


def scene_fill(qgis: QgisProcess, output: Path, name: str, inputs: dict[str, object]) -> dict:
    """gapfill:fillscene with its confidence layer and report; prints what it chose and why."""
    result = qgis.run("gapfill:fillscene", {
        **inputs, **SCENE,
        "CONFIDENCE": output / f"confidence_{name}.tif",
        "REPORT_FOLDER": output / f"scene_report_{name}",
    })
    show_log(result)
    chosen, report = result["results"], output / f"scene_report_{name}" / "report.html"
    if chosen["REPORT_PSNR"] is None:  # too few clear pixels to measure anything
        print(f"chosen: {chosen['CHOSEN']}, not validated; report: {report}")
    else:
        print(f"chosen: {chosen['CHOSEN']}; on the report blocks {chosen['REPORT_PSNR']:.2f} "
              f"dB (best classical fill {chosen['CLASSICAL_PSNR']:.2f} dB); report: {report}")
    return result


def show_log(result: dict) -> None:
    for line in result["log"].get("info", []) + result["log"].get("warning", []):
        print(f"  {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, default=REPO / "demo-output")
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get("GAPFILL_DATA", REPO.parent / "shared/data")),
    )
    args = parser.parse_args()
    for folder in ("sen12mscr_ts", "sen12mscr_georef"):
        if not (args.data / folder).is_dir():
            sys.exit(f"error: real data not found in {args.data / folder}; set GAPFILL_DATA")
    output = args.output.resolve()
    output.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    qgis = QgisProcess(output / ".qgis")
    print(f"1. multi-date: {TARGET} with its neighbours, the scene fill")
    filled, picture = multi_date(qgis, args.data / "sen12mscr_ts", output)
    print(f"filled image: {filled}")
    print(f"quick-look (cloudy | gaps | filled): {picture}")
    print("2. single date: cloudy Sentinel-2 + Sentinel-1, the scene fill")
    filled, picture = single_date(qgis, args.data / "sen12mscr_georef", output)
    print(f"filled image: {filled}")
    print(f"quick-look (cloudy | gaps | filled): {picture}")
    print(f"make demo took {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
