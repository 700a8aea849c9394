"""Fill many scenes and one mosaic on Dask distributed, side by side with the same fills called
serially in one process, on mosaics tiled from the real samples.

Rows (each in one run, on the same inputs): N scenes (temporal interpolation from two other
dates) called one after another in this process, then as Dask tasks on a local cluster of one
worker process and of two; one larger mosaic filled whole in this process, then as tiles on two
workers (checked bit-identical). Only ratios measured side by side mean anything; nothing here
asserts a timing.

    python benchmarks/bench_distributed.py --output bench-output [--scenes 4] [--size 2048]
        [--mosaic 4096] [--tile 2048]
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
from mosaic import build_mosaics
from osgeo import gdal

from harness import data_folder, load_line, make_plugin_importable, timed


def jobs_of(inputs, folder: Path, count: int, method: str) -> list:
    from gapfill.core.distributed.jobs import make_job

    dates = ", ".join(str(day) for day in (inputs.target_date, *inputs.other_dates))
    return [
        make_job(f"scene{k}", target=str(inputs.target), mask=str(inputs.mask),
                 other_dates=tuple(map(str, inputs.others)), method=method,
                 options_text=f"dates={dates}" if method == "temporal" else "",
                 output=str(folder / f"scene{k}.tif"))
        for k in range(count)
    ]


def serial(jobs: list) -> None:
    from gapfill.core.distributed.methods import Hooks

    for job in jobs:
        job.fill.run(job, job.output, None, Hooks())


def on_dask(jobs: list, manifest: Path, workers: int, tile_size: int = 0) -> None:
    from gapfill.core.distributed.runner import run_jobs

    summary = run_jobs(jobs, manifest, workers=workers, tile_size=tile_size, overwrite=True)
    if summary.failed:
        raise SystemExit(f"jobs failed: {summary.failed}")


def seconds(what: str, step: Callable[[], None], folder: Path) -> float:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    start = time.perf_counter()
    timed(what, step)
    return time.perf_counter() - start


def same_pixels(first: str, second: str) -> bool:
    return np.array_equal(gdal.Open(first).ReadAsArray(), gdal.Open(second).ReadAsArray())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=Path("bench-output"))
    parser.add_argument("--scenes", type=int, default=4, help="scenes of the many-scenes rows")
    parser.add_argument("--size", type=int, default=2048, help="side of each scene (px)")
    parser.add_argument("--mosaic", type=int, default=4096, help="side of the mosaic (px)")
    parser.add_argument("--tile", type=int, default=2048, help="tile size of the mosaic (px)")
    arguments = parser.parse_args()
    make_plugin_importable()
    data_folder("sen12mscr_ts")
    load = os.getloadavg()[0]
    start = time.perf_counter()
    folder = arguments.output.resolve()
    scenes = timed("scenes", lambda: build_mosaics(folder / "inputs", arguments.size))
    large = timed("mosaic", lambda: build_mosaics(folder / "inputs", arguments.mosaic))
    work = folder / "distributed"
    many = {
        "serial": seconds("serial", lambda: serial(jobs_of(scenes, work / "serial",
                                                           arguments.scenes, "temporal")),
                          work / "serial"),
    }
    for workers in (1, 2):
        name = f"{workers}w"
        many[name] = seconds(
            f"dask {name}",
            lambda w=workers, n=name: on_dask(jobs_of(scenes, work / n, arguments.scenes,
                                                      "temporal"), work / f"{n}.json", w),
            work / name,
        )
    identical = all(
        same_pixels(str(work / "serial" / f"scene{k}.tif"), str(work / "2w" / f"scene{k}.tif"))
        for k in range(arguments.scenes)
    )
    whole_job = jobs_of(large, work / "whole", 1, "temporal")
    whole = seconds("mosaic whole", lambda: serial(whole_job), work / "whole")
    tiled_job = jobs_of(large, work / "tiled", 1, "temporal")
    tiled = seconds("mosaic tiles, COG", lambda: on_dask(tiled_job, work / "tiled.json", 2,
                                                         arguments.tile), work / "tiled")
    tiles_identical = same_pixels(whole_job[0].output, tiled_job[0].output)
    vrt_job = [replace(tiled_job[0], output=str(work / "vrt" / "scene0.vrt"))]
    vrt = seconds("mosaic tiles, VRT", lambda: on_dask(vrt_job, work / "vrt.json", 2,
                                                       arguments.tile), work / "vrt")
    tiles_identical &= same_pixels(whole_job[0].output, vrt_job[0].output)
    start_only = seconds("empty run", lambda: on_dask([], work / "empty.json", 2),
                         work / "empty")

    pixels = arguments.scenes * arguments.size**2 / 1e6
    rows = [
        "| run | seconds | Mpx/s | ratio |",
        "|---|---:|---:|---:|",
        f"| {arguments.scenes} scenes of {arguments.size}², serial calls in one process | "
        f"{many['serial']:.1f} | {pixels / many['serial']:.2f} | 1.00 |",
        f"| the same on Dask, 1 worker process | {many['1w']:.1f} | {pixels / many['1w']:.2f} | "
        f"{many['1w'] / many['serial']:.2f} × serial (overhead) |",
        f"| the same on Dask, 2 worker processes | {many['2w']:.1f} | {pixels / many['2w']:.2f} "
        f"| {many['1w'] / many['2w']:.2f} × faster than 1 worker |",
        f"| one {arguments.mosaic}² mosaic, whole, in one process | {whole:.1f} | "
        f"{arguments.mosaic**2 / 1e6 / whole:.2f} | 1.00 |",
        f"| the same in tiles of {arguments.tile} on 2 workers, one COG | {tiled:.1f} | "
        f"{arguments.mosaic**2 / 1e6 / tiled:.2f} | {whole / tiled:.2f} × faster |",
        f"| the same, a VRT of the tiles | {vrt:.1f} | {arguments.mosaic**2 / 1e6 / vrt:.2f} | "
        f"{whole / vrt:.2f} × faster |",
        f"| a run without jobs: starting 2 workers, checking them, closing | {start_only:.1f} | "
        "– | – |",
    ]
    command = "python benchmarks/bench_distributed.py " + shlex.join(sys.argv[1:])
    report = "\n".join([
        *rows, "",
        f"Outputs of 2 workers identical to the serial fills: {identical}; tiled mosaic "
        f"identical to the whole one: {tiles_identical}.", "",
        load_line(load),
        f"Command: `{command}`; whole run {time.perf_counter() - start:.0f} s.",
    ])
    (folder / "bench_distributed.md").write_text(report + "\n")
    print(report)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
