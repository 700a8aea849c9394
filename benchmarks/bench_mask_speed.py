"""Speed and memory of each gap-mask method on a whole Sentinel-2 scene (10980² px at 10 m).

The scene is the 13-band mosaic of the real sen12mscr_ts samples (benchmarks/mosaic.py, about
half under real clouds). Each method runs through the core engine (`build_gap_mask`, the code
behind gapfill:buildgapmask) at its default settings, in a fresh child process (its peak memory
is its own), on this machine's cores; so does the I/O floor: GDAL reading the 13 bands block by
block and writing a Byte GeoTIFF. Every method also runs on a small mosaic: peak memory must
not grow with the scene. Only ratios measured side by side in one run mean anything.

    python benchmarks/bench_mask_speed.py --output bench-output [--size 10980] [--small 2048]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np
from mosaic import MosaicSet, build_mosaics
from osgeo import gdal

from harness import (
    data_folder,
    load_line,
    make_plugin_importable,
    measure_in_child,
    peak_rss_mb,
    timed,
    warm_page_cache,
)

FLOOR = "floor"
BLOCK = 1024
METHODS = {
    FLOOR: ("I/O floor: GDAL reads 13 bands, writes a Byte mask", {}),
    "spectral": ("spectral score (10 m)", {"method": "spectral"}),
    "ukis6": ("ukis-csmask 6 bands (30 m cells)", {"method": "ukis", "ukis_bands": 6}),
    "ukis4": ("ukis-csmask 4 bands (30 m cells)", {"method": "ukis", "ukis_bands": 4}),
    "s2cloudless": ("s2cloudless (20 m cells)", {"method": "s2cloudless"}),
    "s2cloudless160": ("s2cloudless (160 m cells, RESOLUTION=160)",
                       {"method": "s2cloudless", "resolution_metres": 160.0}),
}


def copy_with_gdal(target: Path, output: Path) -> None:
    """Read every band block by block; write one Byte band of the same grid."""
    from gapfill.core.raster.output import creation_options

    source = gdal.Open(str(target))
    size = source.RasterXSize
    mask = gdal.GetDriverByName("GTiff").Create(
        str(output), size, source.RasterYSize, 1, gdal.GDT_Byte,
        creation_options(np.dtype(np.uint8)),
    )
    mask.SetGeoTransform(source.GetGeoTransform())
    mask.SetProjection(source.GetProjection())
    for y in range(0, source.RasterYSize, BLOCK):
        for x in range(0, size, BLOCK):
            w, h = min(BLOCK, size - x), min(BLOCK, source.RasterYSize - y)
            values = source.ReadAsArray(x, y, w, h)
            mask.GetRasterBand(1).WriteArray((values[1] > 2000).astype(np.uint8), x, y)
    mask.FlushCache()


def measure(method: str, folder: Path, size: int, output: Path) -> dict[str, object]:
    """The child's work: one method on the mosaic of `size`."""
    make_plugin_importable()
    from gapfill.core.masks.gap_mask import MaskSettings, build_gap_mask

    target = MosaicSet.in_folder(folder, size).target
    start, cpu = time.perf_counter(), os.times()
    result: dict[str, object] = {}
    if method == FLOOR:
        copy_with_gdal(target, output)
    else:
        report = build_gap_mask(str(target), output, MaskSettings(**METHODS[method][1]))
        result = {"gap_fraction": report.gap_fraction, "method": report.method}
    seconds = time.perf_counter() - start
    after = os.times()
    used = after.user + after.system - cpu.user - cpu.system
    return {"seconds": seconds, "cpu_seconds": used, "peak_rss_mb": peak_rss_mb(), **result}


def run_child(method: str, folder: Path, size: int) -> dict[str, object]:
    output = folder / f"mask-{method}-{size}.tif"
    arguments = [method, "--output", str(folder), "--size", str(size), "--result", str(output)]
    return measure_in_child(__file__, arguments, 256, output)


def table(results: dict[str, dict[int, dict]], size: int, small: int) -> str:
    lines = [
        f"| method | seconds | CPU s | Mpx/s | × I/O floor | gaps | peak RSS MB at {small} "
        f"| at {size} |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    floor = results[FLOOR][size]["seconds"]
    for key, (label, _) in METHODS.items():
        full, low = results[key][size], results[key][small]
        gaps = f"{100 * full['gap_fraction']:.1f} %" if "gap_fraction" in full else "–"
        lines.append(
            f"| {label} | {full['seconds']:.0f} | {full['cpu_seconds']:.0f} | "
            f"{size * size / 1e6 / full['seconds']:.2f} | {full['seconds'] / floor:.1f} | "
            f"{gaps} | {low['peak_rss_mb']:.0f} | {full['peak_rss_mb']:.0f} |"
        )
    return "\n".join(lines)


def bench(folder: Path, size: int, small: int) -> None:
    start, load_before = time.perf_counter(), os.getloadavg()[0]
    make_plugin_importable()
    sizes = sorted({small, size})
    for each in sizes:
        inputs = timed(f"mosaic {each}×{each}", lambda each=each: build_mosaics(folder, each))
        timed(f"page cache {each}", lambda inputs=inputs: warm_page_cache([inputs.target]))
    results: dict[str, dict[int, dict]] = {key: {} for key in METHODS}
    for each in sizes:
        for key, (label, _) in METHODS.items():
            results[key][each] = timed(
                f"{label} at {each}", lambda key=key, each=each: run_child(key, folder, each)
            )
    rows = table(results, size, small)
    described = "; ".join(
        f"{label}: {results[key][size]['method']}" for key, (label, _) in METHODS.items()
        if key != FLOOR
    )
    command = f"GAPFILL_DATA={data_folder()} python {shlex.join(sys.argv)}"
    report = "\n".join([
        "# Gap masks: speed and memory", "", (__doc__ or "").split("\n\n")[1], "", rows, "",
        f"What ran: {described}.", "", load_line(load_before), "",
        f"Command: `{command}`; whole run {time.perf_counter() - start:.0f} s.", "",
    ])
    (folder / "bench_mask_speed.md").write_text(report)
    print(report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=Path("bench-output"))
    parser.add_argument("--size", type=int, default=10980, help="side of the scene (px)")
    parser.add_argument("--small", type=int, default=2048, help="side of the small mosaic (px)")
    parser.add_argument("--measure", choices=sorted(METHODS), help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    folder = args.output.resolve()
    if args.measure:
        print(json.dumps(measure(args.measure, folder, args.size, args.result)))
        return
    folder.mkdir(parents=True, exist_ok=True)
    bench(folder, args.size, args.small)


if __name__ == "__main__":
    main()
