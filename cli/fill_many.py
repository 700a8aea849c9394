"""`gapfill fill-many JOBS`: many scenes (a CSV table of jobs or a folder of scenes), or images
larger than one machine (as tiles), filled on Dask distributed, with a manifest that lets a
re-run resume where a run stopped."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from ..core.errors import GapfillError
from .options import non_negative, positive
from .session import Session

SOME_FAILED = 4  # the run finished but some jobs failed (the manifest says why)
MANIFEST_NAME = "gapfill-run.json"


def fill_many_arguments(parser: argparse.ArgumentParser) -> None:
    from ..core.distributed.methods import METHODS

    parser.add_argument(
        "jobs", help="a CSV table of jobs (columns: id, target, mask, other_dates, "
        "other_masks, sar, dem, output, method, options; target and output required), or a "
        "folder of scenes (one subfolder each with target.tif and optionally mask.tif, "
        "sar.tif, dem.tif, other_dates/*.tif)",
    )
    parser.add_argument("-o", "--output-folder",
                        help="where a folder of scenes' fills go (SCENE.tif each)")
    parser.add_argument("--manifest", help=f"the run manifest (JSON) to write and to resume "
                        f"from (default: OUTPUT_FOLDER/{MANIFEST_NAME})")
    parser.add_argument("--method", choices=tuple(METHODS), default="",
                        help="the fill of the jobs whose row names none: "
                        + "; ".join(f"{m.name}: {m.help}" for m in METHODS.values()))
    parser.add_argument("--options", default="",
                        help="the method's options, 'name=value; name=value' (e.g. "
                        "'max_distance=50'), for the jobs without their own")
    parser.add_argument("--build-masks", action="store_true",
                        help="jobs without a gap mask build one (spectral score, dilated 2 px) "
                        "instead of taking the target's no-data")
    parser.add_argument("--scheduler", help="address of a running Dask scheduler (e.g. "
                        "tcp://10.0.0.5:8786); default: a local cluster made for the run")
    parser.add_argument("--workers", type=non_negative, default=0,
                        help="local cluster: worker processes (default 0: one per two cores)")
    parser.add_argument("--threads", type=positive, default=1,
                        help="local cluster: threads per worker (default: %(default)s)")
    parser.add_argument("--tile-size", type=non_negative, default=0,
                        help="fill images larger than this (pixels, a multiple of 1024) as "
                        "tiles on several workers, bit-identical to a whole-image fill; a .vrt "
                        "output keeps the tiles, a .tif one becomes one cloud-optimised "
                        "GeoTIFF (default 0: whole images)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace outputs that this run's manifest did not write")


def manifest_path(arguments: argparse.Namespace) -> str:
    if arguments.manifest:
        return arguments.manifest
    if arguments.output_folder:
        return str(Path(arguments.output_folder) / MANIFEST_NAME)
    raise GapfillError("Give --manifest FILE.json: the run's record, which a re-run resumes "
                       "from (or --output-folder, where it is then written).")


def run_fill_many(arguments: argparse.Namespace, session: Session) -> tuple[dict[str, Any],
                                                                            list[str]]:
    from ..core.distributed.jobs import load_jobs
    from ..core.distributed.runner import run_jobs, summary_lines

    manifest = manifest_path(arguments)
    jobs = load_jobs(arguments.jobs, arguments.output_folder, arguments.method,
                     arguments.options, arguments.build_masks)
    with session.progress(f"fill-many ({len(jobs)} jobs)") as (progress, cancelled):
        summary = run_jobs(
            jobs, manifest, scheduler=arguments.scheduler, workers=arguments.workers,
            threads=arguments.threads, tile_size=arguments.tile_size,
            overwrite=arguments.overwrite, progress=progress, cancelled=cancelled,
            log=session.info,
        )
    result = {"command": "fill-many", **dataclasses.asdict(summary)}
    if summary.failed:
        result["exit_code"] = SOME_FAILED
    return result, summary_lines(summary)


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    text = "fill many scenes, or images larger than a machine, on Dask distributed"
    parser = commands.add_parser(
        "fill-many", help=text, parents=[common],
        description=text[0].upper() + text[1:] + ": every job is a task on a worker (a local "
        "cluster, or --scheduler); outputs are written only when complete; the manifest "
        "records each job (inputs, method, output checksums, worker, time, error) and a re-run "
        "skips the jobs done, after checking their outputs. One failing job never stops the "
        f"others: the run then exits with {SOME_FAILED}.",
    )
    fill_many_arguments(parser)
    parser.set_defaults(run=run_fill_many)
