"""Speed and memory of the classical fills on a large mosaic of the real samples.

Every measurement runs in a fresh child process (this script with `--measure`), so its peak
resident memory is its own. The I/O floor reads the same inputs block by block and writes a
GeoTIFF with the same creation options with plain GDAL: a fill cannot be faster than that.
Each method also runs on a small mosaic: peak memory must not grow with the image size.
Only ratios measured side by side in one run mean anything; nothing here asserts a timing.

    python benchmarks/bench_classical.py --output bench-output [--size 8192] [--small 2048]
        [--gdal-cache 256]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import TypeVar

import numpy as np
from mosaic import (
    OTHER_DATES,
    TARGET_DATE,
    MosaicSet,
    build_mosaics,
)
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

BLOCK = 512  # the fills' default block size, used by the I/O floor too
FLOOR = "floor"
T = TypeVar("T")
METHODS = {
    FLOOR: "I/O floor: GDAL reads target, mask, 2 dates; writes",
    "temporal": "temporal interpolation",
    "histogram": "nearest date, histogram matching",
    "similar": "every date through similar pixels",
    "spatial": "spatial inverse distance",
    "pyramid": "spatial pyramid (coarse levels once, 128 px halo)",
    "pyramid-halo": "spatial pyramid, each block with the 1024 px halo (before)",
}


def pyramid_with_full_halo(target, output: Path):
    """The pyramid fill as it streamed before the coarse pass: every block read with
    `pyramid_halo`, all levels computed on it (same values)."""
    from gapfill.core.fills.pyramid_fill import (
        DEFAULT_DISTANCE,
        pyramid_fill_arrays,
        pyramid_halo,
    )
    from gapfill.core.raster.access import crop
    from gapfill.core.raster.fill_engine import fill_image

    def compute(block):
        values, reached = pyramid_fill_arrays(block.data, ~block.gap, DEFAULT_DISTANCE)
        return crop(values, block.inner), crop(reached, block.inner)

    halo = pyramid_halo(DEFAULT_DISTANCE)
    return fill_image(target, output, compute, halo=halo, block_size=1024, require_clear=True)


def copy_with_gdal(inputs: MosaicSet, output: Path) -> None:
    """Read target, mask and the other dates block by block; write the target as it is."""
    from gapfill.core.raster.output import creation_options

    target = gdal.Open(str(inputs.target))
    mask = gdal.Open(str(inputs.mask))
    others = [gdal.Open(str(path)) for path in inputs.others]
    bands = target.RasterCount
    band = target.GetRasterBand(1)
    copy = gdal.GetDriverByName("GTiff").Create(
        str(output), inputs.size, inputs.size, bands, band.DataType,
        creation_options(np.dtype(np.uint16)),
    )
    copy.SetGeoTransform(target.GetGeoTransform())
    copy.SetProjection(target.GetProjection())
    for index in range(1, bands + 1):
        copy.GetRasterBand(index).SetNoDataValue(band.GetNoDataValue())
    for y in range(0, inputs.size, BLOCK):
        for x in range(0, inputs.size, BLOCK):
            w, h = min(BLOCK, inputs.size - x), min(BLOCK, inputs.size - y)
            mask.ReadAsArray(x, y, w, h)
            for other in others:
                other.ReadAsArray(x, y, w, h)
            copy.WriteArray(target.ReadAsArray(x, y, w, h), x, y)
    copy.FlushCache()


def fill(method: str, inputs: MosaicSet, output: Path) -> dict[str, int]:
    """Run one classical fill of the core; return its gap and filled pixel counts."""
    from gapfill.core.fills.histogram_matched_fill import fill_by_histogram_matching
    from gapfill.core.fills.other_dates import open_other_dates
    from gapfill.core.fills.pyramid_fill import fill_by_pyramid
    from gapfill.core.fills.similar_pixels import fill_by_similar_pixels
    from gapfill.core.fills.spatial_fill import fill_spatially
    from gapfill.core.fills.temporal_interpolation import fill_by_temporal_interpolation
    from gapfill.core.raster.fill_engine import open_target

    target = open_target(str(inputs.target), str(inputs.mask))
    if method == "spatial":
        report = fill_spatially(target, output)
    elif method == "pyramid":
        report = fill_by_pyramid(target, output)
    elif method == "pyramid-halo":
        report = pyramid_with_full_halo(target, output)
    else:
        others = open_other_dates(
            target, [str(path) for path in inputs.others], list(inputs.other_dates)
        )
        if method == "similar":
            report = fill_by_similar_pixels(target, others, output)
        else:
            run = fill_by_temporal_interpolation if method == "temporal" else (
                fill_by_histogram_matching
            )
            report = run(target, inputs.target_date, others, output)
    return {"gaps": report.gaps, "filled": report.filled}


def measure(method: str, folder: Path, size: int, output: Path) -> dict[str, float]:
    """The child's work: one method on the mosaic of `size`; seconds, peak RSS, counts."""
    make_plugin_importable()
    inputs = MosaicSet.in_folder(folder, size)
    start = time.perf_counter()
    counts: dict[str, int] = {}
    if method == FLOOR:
        copy_with_gdal(inputs, output)
    else:
        counts = fill(method, inputs, output)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb(), **counts}


def run_child(method: str, folder: Path, size: int, gdal_cache_mb: int) -> dict[str, float]:
    """Measure `method` in a fresh process; its output is deleted afterwards."""
    output = folder / f"out-{method}-{size}.tif"
    arguments = [method, "--output", str(folder), "--size", str(size), "--result", str(output)]
    return measure_in_child(__file__, arguments, gdal_cache_mb, output)


def table(results: dict[str, dict[int, dict[str, float]]], size: int, small: int) -> str:
    """The Markdown table of all methods."""
    lines = [
        f"| method | seconds | Mpx/s | × I/O floor | filled | peak RSS MB at {small} "
        f"| at {size} | RSS {size}/{small} |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    floor = results[FLOOR][size]["seconds"]
    for key, label in METHODS.items():
        if key not in results:
            continue
        full, low = results[key][size], results[key][small]
        filled = f"{full['filled'] / full['gaps']:.1%}" if full.get("gaps") else "–"
        lines.append(
            f"| {label} | {full['seconds']:.1f} | {size * size / 1e6 / full['seconds']:.2f} | "
            f"{full['seconds'] / floor:.2f} | {filled} | {low['peak_rss_mb']:.0f} | "
            f"{full['peak_rss_mb']:.0f} | {full['peak_rss_mb'] / low['peak_rss_mb']:.2f} |"
        )
    return "\n".join(lines)


def bench(folder: Path, size: int, small: int, gdal_cache_mb: int, methods: list[str]) -> None:
    """Build the mosaics, measure every method at both sizes, print and write the table."""
    start = time.perf_counter()
    load_before = os.getloadavg()[0]
    make_plugin_importable()
    sizes = sorted({small, size})
    for each in sizes:
        inputs = timed(f"mosaic {each}×{each}", lambda each=each: build_mosaics(folder, each))
        timed(f"page cache {each}", lambda inputs=inputs: warm_page_cache(inputs.paths))
    chosen = {key: METHODS[key] for key in [FLOOR, *methods] if key in METHODS}
    results: dict[str, dict[int, dict[str, float]]] = {key: {} for key in chosen}
    for each in sizes:
        for key, label in chosen.items():
            results[key][each] = timed(
                f"{label} at {each}",
                lambda key=key, each=each: run_child(key, folder, each, gdal_cache_mb),
            )
    rows = table(results, size, small)
    total = time.perf_counter() - start
    gaps = next(r[size]["gaps"] for k, r in results.items() if k != FLOOR) / size**2
    cache = f"{gdal_cache_mb} MiB" if gdal_cache_mb > 0 else "GDAL's default"
    command = f"GAPFILL_DATA={data_folder()} python {shlex.join(sys.argv)}"
    report = "\n".join([
        "# Classical fills: speed and memory",
        "",
        f"Target: {size}×{size} px, 13 bands UInt16 (EPSG:32633, 10 m), tiled from the real "
        f"sen12mscr_ts samples (target {TARGET_DATE}, other dates "
        f"{', '.join(str(d) for d in OTHER_DATES)}); {gaps:.1%} gap pixels (spectral "
        "cloud/shadow mask of the target). Inputs in the page cache; each row runs in a fresh "
        f"process with a GDAL block cache of {cache} (GDAL's default here: "
        f"{gdal.GetCacheMax() / 2**20:.0f} MiB, 5 % of RAM); fills at their default settings "
        f"(blocks of {BLOCK} px; spatial: blocks of 1024 px, 100 px search distance).",
        "",
        rows,
        "",
        "× I/O floor: the method's time over that of plain GDAL reading the same inputs block "
        "by block and writing the same GeoTIFF (the spatial fill reads no other date). "
        "Peak RSS: the child process's maximum resident memory, GDAL's block cache included.",
        "",
        load_line(load_before),
        "",
        f"Command: `{command}`; whole run {total:.0f} s.",
        "",
    ])
    (folder / "bench_classical.md").write_text(report)
    print(rows)
    print(f"\nwhole run: {total:.0f} s; written to {folder / 'bench_classical.md'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=Path("bench-output"))
    parser.add_argument("--size", type=int, default=8192, help="side of the large mosaic (px)")
    parser.add_argument("--small", type=int, default=2048, help="side of the small mosaic (px)")
    parser.add_argument(
        "--gdal-cache", type=int, default=256,
        help="GDAL block cache of each run in MiB, the same at every size (0: GDAL's default)",
    )
    parser.add_argument(
        "--methods", default=",".join(k for k in METHODS if k != FLOOR),
        help="comma-separated methods to measure beside the I/O floor",
    )
    parser.add_argument("--measure", choices=sorted(METHODS), help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    folder = args.output.resolve()
    if args.measure:
        print(json.dumps(measure(args.measure, folder, args.size, args.result)))
    else:
        bench(folder, args.size, args.small, args.gdal_cache, args.methods.split(","))


if __name__ == "__main__":
    main()
