"""The jobs of a run: one target image to fill into one output, read from a table (CSV) or from
a folder of scenes, and checked as a whole before anything runs.

CSV columns (header names in any case; order free): `target` and `output` (required), `mask`
(a gap mask, `build`, or empty for the target's no-data), `other_dates` and `other_masks`
(paths separated by `;`), `sar`, `dem`, `method` (see `methods.METHODS`; empty: the run's
default), `options` (`name=value; …` of the method, e.g. `max_distance=50`) and `id` (default:
the output as written). Relative paths are relative to the table's folder; GDAL virtual paths
(`/vsicurl/…`) and URLs are kept as they are.

Folder convention: one subfolder per scene holding `target.tif`, optionally `mask.tif`,
`sar.tif`, `dem.tif` and `other_dates/*.tif` (taken in name order); the output is
`OUTPUT_FOLDER/<subfolder>.tif`.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import GapfillError
from ..raster.output import files_read_by
from .methods import METHODS, JobMethod, parse_options

BUILD = "build"  # the mask column's value asking for a gap mask built by the spectral score
COLUMNS = ("id", "target", "mask", "other_dates", "other_masks", "sar", "dem", "output", "method",
           "options")
RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".jp2", ".img")
MAX_PROBLEMS = 20  # listed in one error, the rest counted


@dataclass(frozen=True)
class Job:
    """One fill: `options` are the method's, typed and complete (its defaults filled in)."""

    id: str
    target: str
    output: str
    method: str
    mask: str | None = None  # a path, BUILD, or None (the target's no-data)
    other_dates: tuple[str, ...] = ()
    other_masks: tuple[str, ...] = ()
    sar: str | None = None
    dem: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def fill(self) -> JobMethod:
        return METHODS[self.method]

    def inputs(self) -> list[str]:
        """Every raster the job reads (a mask to build is not one yet)."""
        files = [self.target, self.mask, *self.other_dates, *self.other_masks, self.sar, self.dem]
        return [path for path in files if path and path != BUILD]

    def definition(self) -> dict[str, Any]:
        """What the job is, as the manifest records it: a re-run skips a job only when this is
        unchanged."""
        return {
            "target": self.target, "output": self.output, "method": self.method,
            "mask": self.mask, "other_dates": list(self.other_dates),
            "other_masks": list(self.other_masks), "sar": self.sar, "dem": self.dem,
            "options": dict(self.options),
        }


def is_virtual(path: str) -> bool:
    """GDAL virtual file systems and URLs: not paths of this machine's file system."""
    return path.startswith("/vsi") or "://" in path


def resolve(path: str, folder: Path) -> str:
    if is_virtual(path):
        return path
    return os.path.normpath(folder / Path(path).expanduser())


def split_paths(text: str, folder: Path) -> tuple[str, ...]:
    return tuple(resolve(part.strip(), folder) for part in text.split(";") if part.strip())


def column_name(header: str) -> str:
    return header.strip().lower().replace(" ", "_").replace("-", "_")


def read_job_table(
    path: str | Path, default_method: str = "", default_options: str = "",
    build_masks: bool = False,
) -> list[Job]:
    """The jobs of a CSV table, checked (`check_jobs`); rows without a method take
    `default_method` and `default_options`; `build_masks`: rows without a mask build one."""
    table = Path(path)
    if not table.is_file():
        raise GapfillError(f"The job table '{path}' does not exist. Give a CSV file of jobs.")
    with open(table, newline="", encoding="utf-8-sig") as stream:
        reader = csv.DictReader(stream)
        headers = {column_name(name): name for name in reader.fieldnames or []}
        unknown = sorted(set(headers) - set(COLUMNS))
        missing = [name for name in ("target", "output") if name not in headers]
        if unknown or missing:
            raise GapfillError(
                f"The job table '{path}' has "
                + (f"unknown columns {', '.join(unknown)}" if unknown else "")
                + (" and " if unknown and missing else "")
                + (f"no column {' or '.join(missing)}" if missing else "")
                + f". Its columns are: {', '.join(COLUMNS)} (target and output required)."
            )
        rows = [
            {name: (row.get(header) or "").strip() for name, header in headers.items()}
            for row in reader
        ]
    if not rows:
        raise GapfillError(f"The job table '{path}' holds no job (no row under its header).")
    folder = table.resolve().parent
    jobs, problems = [], []
    for number, row in enumerate(rows, start=2):  # line 1 is the header
        try:
            jobs.append(job_from_row(row, folder, default_method, default_options, build_masks))
        except GapfillError as error:
            problems.append(f"line {number}: {error}")
    raise_problems(problems, f"The job table '{path}'")
    return check_jobs(jobs)


def job_from_row(
    row: Mapping[str, str], folder: Path, default_method: str, default_options: str,
    build_masks: bool,
) -> Job:
    method = row.get("method") or default_method
    if not row.get("target") or not row.get("output"):
        raise GapfillError("target and output must both be given.")
    mask = row.get("mask") or ""
    if mask.lower() == BUILD or (not mask and build_masks):
        mask = BUILD
    options_text = row.get("options") or ("" if row.get("method") else default_options)
    return make_job(
        row.get("id") or row["output"],
        target=resolve(row["target"], folder),
        output=resolve(row["output"], folder),
        method=method,
        mask=resolve(mask, folder) if mask and mask != BUILD else (mask or None),
        other_dates=split_paths(row.get("other_dates", ""), folder),
        other_masks=split_paths(row.get("other_masks", ""), folder),
        sar=resolve(row["sar"], folder) if row.get("sar") else None,
        dem=resolve(row["dem"], folder) if row.get("dem") else None,
        options_text=options_text or "",
    )


def make_job(identifier: str, *, method: str, options_text: str = "", **inputs: Any) -> Job:
    """A job with its method's options parsed; refuses an unknown method or option."""
    if method not in METHODS:
        raise GapfillError(
            f"The method '{method or '(none)'}' is not one of {', '.join(METHODS)}. Give it in "
            "the method column, or a default method for the run."
        )
    job = Job(identifier, method=method, options=parse_options(METHODS[method], options_text),
              **inputs)
    METHODS[method].check(job)
    return job


def jobs_from_folder(
    folder: str | Path, output_folder: str | Path, method: str, options_text: str = "",
    build_masks: bool = False,
) -> list[Job]:
    """One job per subfolder of `folder` holding a `target` raster (the folder convention)."""
    scenes = Path(folder)
    if not scenes.is_dir():
        raise GapfillError(f"The folder of scenes '{folder}' does not exist.")
    jobs, problems = [], []
    for scene in sorted(path for path in scenes.iterdir() if path.is_dir()):
        target = raster_named(scene, "target")
        if target is None:
            continue
        mask = raster_named(scene, "mask")
        others = sorted(
            path for path in (scene / "other_dates").glob("*")
            if path.suffix.lower() in RASTER_SUFFIXES
        )
        try:
            jobs.append(make_job(
                scene.name,
                target=str(target),
                output=os.path.normpath(Path(output_folder).resolve() / f"{scene.name}.tif"),
                method=method,
                mask=str(mask) if mask else (BUILD if build_masks else None),
                other_dates=tuple(map(str, others)),
                sar=str(path) if (path := raster_named(scene, "sar")) else None,
                dem=str(path) if (path := raster_named(scene, "dem")) else None,
                options_text=options_text,
            ))
        except GapfillError as error:
            problems.append(f"{scene.name}: {error}")
    raise_problems(problems, f"The folder of scenes '{folder}'")
    if not jobs:
        raise GapfillError(
            f"The folder '{folder}' holds no scene: each scene is a subfolder with a "
            "'target.tif' (and optionally mask.tif, sar.tif, dem.tif, other_dates/*.tif)."
        )
    return check_jobs(jobs)


def raster_named(folder: Path, stem: str) -> Path | None:
    for suffix in RASTER_SUFFIXES:
        if (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    return None


def _real(path: str) -> str:
    return path if is_virtual(path) else os.path.realpath(path)


def _files_read(path: str) -> list[str]:
    """The files an input reads (itself, a VRT's sources), links resolved; virtual paths as
    given (opening a remote file only to check it would cost a request per job)."""
    return [path] if is_virtual(path) else files_read_by(path)


def check_jobs(jobs: list[Job]) -> list[Job]:
    """Refuse a set of jobs that cannot run together: two jobs with one id or one output, an
    output that is an input of its own job or a file it reads (inputs are never modified) or
    of another job (the jobs of a run are independent: they run at the same time). Paths are
    compared with links resolved."""
    problems = []
    ids: dict[str, Job] = {}
    outputs: dict[str, Job] = {}
    for job in jobs:
        output = _real(job.output)
        if job.id in ids:
            problems.append(f"two jobs have the id '{job.id}'")
        if output in outputs:
            problems.append(f"jobs '{outputs[output].id}' and '{job.id}' both write "
                            f"'{job.output}'")
        ids[job.id] = outputs[output] = job
    for job in jobs:
        for path in job.inputs():
            read = _files_read(path)
            writer = next((outputs[file] for file in read if file in outputs), None)
            if writer is job:
                problems.append(f"job '{job.id}' writes its own input '{path}'; inputs are "
                                "never modified")
            elif writer is not None:
                problems.append(
                    f"job '{job.id}' reads '{path}', the output of job '{writer.id}': "
                    "the jobs of one run are independent; run the second in another table "
                    "after this one"
                )
    raise_problems(problems, "The jobs")
    return jobs


def raise_problems(problems: list[str], what: str) -> None:
    if not problems:
        return
    shown = problems[:MAX_PROBLEMS]
    more = len(problems) - len(shown)
    raise GapfillError(
        f"{what} cannot run: " + "; ".join(shown)
        + (f"; and {more} more problems" if more else "") + "."
    )


def with_masks(job: Job, mask: str, other_masks: tuple[str, ...]) -> Job:
    """The job with the gap masks built for it."""
    return replace(job, mask=mask, other_masks=other_masks)


def load_jobs(
    source: str | Path, output_folder: str | Path | None, method: str, options_text: str = "",
    build_masks: bool = False,
) -> list[Job]:
    """The jobs of a CSV table (a file) or of a folder of scenes (a folder, whose outputs go
    to `output_folder`): what `gapfill fill-many` and 'Fill many scenes' take."""
    if Path(source).is_dir():
        if not output_folder:
            raise GapfillError(
                f"'{source}' is a folder of scenes: give an output folder for their fills."
            )
        return jobs_from_folder(source, output_folder, method, options_text, build_masks)
    return read_job_table(source, method, options_text, build_masks)
