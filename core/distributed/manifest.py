"""The run manifest: one JSON document saying, per job, what it read, how it filled, what it
wrote (with checksums), when, on which worker, how long it took, and the error if it failed.
A re-run reads it to skip the jobs already done, after checking their outputs.

Files are identified by size and modification time (inputs: cheap to check on every re-run)
and by SHA-256 (outputs: a re-run proves they are still what the run wrote; their modification
time only tells, when one changed, when it was written).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import GapfillError
from ..raster.output import atomic_path

FORMAT = "gapfill-run-manifest"
VERSION = 1
CHUNK = 1 << 22


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint(path: str) -> dict[str, Any]:
    """Size and modification time of an input, through GDAL (local files and /vsi… paths)."""
    from osgeo import gdal

    stat = gdal.VSIStatL(path)
    if stat is None:
        return {"path": path, "missing": True}
    return {"path": path, "bytes": stat.size, "modified": stat.mtime}


def checksum(path: str | Path) -> dict[str, Any]:
    """What a re-run checks an output against (its time only says when it changed, if so)."""
    stat = os.stat(path)
    return {"path": str(path), "bytes": stat.st_size, "sha256": sha256(path),
            "modified": stat.st_mtime}


def change_of(recorded: dict[str, Any]) -> str:
    """How a file recorded by `checksum` (or `fingerprint`) differs now, in words for the
    re-run's log; empty when it is the same."""
    path = recorded["path"]
    if "sha256" not in recorded:
        now_seen = fingerprint(path)
        if now_seen == recorded:
            return ""
        return "missing" if now_seen.get("missing") else (
            f"{now_seen['bytes']} bytes modified at {stamp(now_seen['modified'])} "
            f"(recorded: {recorded.get('bytes')} bytes of {stamp(recorded.get('modified'))})"
        )
    if not os.path.isfile(path):
        return "missing"
    stat = os.stat(path)
    if stat.st_size == recorded["bytes"] and sha256(path) == recorded["sha256"]:
        return ""
    content = ("other content, same size" if stat.st_size == recorded["bytes"]
               else f"{stat.st_size} bytes instead of {recorded['bytes']}")
    return (f"{content}, last written {stamp(stat.st_mtime)} (recorded as written "
            f"{stamp(recorded.get('modified'))})")


def unchanged(recorded: dict[str, Any]) -> bool:
    """Whether a file recorded by `checksum` (or `fingerprint`) is still the same."""
    return not change_of(recorded)


def stamp(seconds: float | None) -> str:
    """A file time to the millisecond, in UTC (two writes a second apart must differ)."""
    if seconds is None:
        return "unknown"
    moment = datetime.fromtimestamp(seconds, timezone.utc)
    return moment.isoformat(timespec="milliseconds")


class Manifest:
    """The manifest file of a run; `save` replaces it atomically, at most every
    `interval` seconds unless forced (a run of thousands of jobs rewrites it often)."""

    def __init__(self, path: str | Path, interval: float = 1.0) -> None:
        self.path = Path(path)
        self.interval = interval
        self.saved_at = 0.0
        self.document: dict[str, Any] = {"format": FORMAT, "version": VERSION,
                                         "created": now(), "runs": [], "jobs": {}}
        if self.path.exists():
            self.document = self.read()

    def read(self) -> dict[str, Any]:
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise GapfillError(
                f"The manifest '{self.path}' cannot be read as JSON ({error}). Give another "
                "manifest file, or delete this one to run every job again."
            ) from error
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise GapfillError(
                f"'{self.path}' is not a Gapfill run manifest. Give another manifest file."
            )
        return document

    @property
    def jobs(self) -> dict[str, dict[str, Any]]:
        return self.document["jobs"]

    def record(self, job_id: str, record: dict[str, Any]) -> None:
        self.jobs[job_id] = record
        self.save()

    def save(self, force: bool = False) -> None:
        if not force and time.monotonic() - self.saved_at < self.interval:
            return
        self.document["updated"] = now()
        with atomic_path(self.path) as temporary:
            temporary.write_text(json.dumps(self.document, indent=1, default=str), "utf-8")
        self.saved_at = time.monotonic()
