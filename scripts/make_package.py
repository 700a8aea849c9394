"""Build the plugin zip that QGIS's 'Install from ZIP' accepts: one `gapfill/` folder, no tests."""

from __future__ import annotations

import argparse
import configparser
import subprocess
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PLUGIN = "gapfill"
EXCLUDED_TOP = {"tests", "scripts", "benchmarks", ".ci", ".github"}  # docs/ ships: help cites it
EXCLUDED_FOLDERS = {("training", "recipes")}  # scripts that retrain the bundled models
EXCLUDED_FILES = {
    "Makefile", "pyproject.toml", "requirements-dev.txt", "requirements-test.txt", ".gitignore"
}


def packaged_files() -> list[Path]:
    """Files git tracks, less the development-only ones (so no venv, caches or outputs)."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    files = []
    for name in filter(None, listing.split("\0")):
        path = Path(name)
        if path.parts[0] in EXCLUDED_TOP or path.name in EXCLUDED_FILES or path.parts[:2] in (
            EXCLUDED_FOLDERS
        ):
            continue
        files.append(path)
    return sorted(files)


def version() -> str:
    metadata = configparser.ConfigParser()
    metadata.read(REPO / "metadata.txt")
    return metadata["general"]["version"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, default=REPO / "dist")
    args = parser.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    target = args.output / f"{PLUGIN}-{version()}.zip"
    partial = target.with_suffix(".zip.partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in packaged_files():
            archive.write(REPO / path, f"{PLUGIN}/{path.as_posix()}")
    partial.replace(target)
    print(target)


if __name__ == "__main__":
    main()
