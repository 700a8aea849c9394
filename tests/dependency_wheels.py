"""A local wheel folder for the installer tests, downloaded once per test session.

It holds onnxruntime (the CPU build of the version the test environment runs) and the packages
it needs that QGIS's Python may lack, plus a numpy 2 wheel: with it the refusal of a numpy major
change comes from Gapfill's pins, not from a missing wheel. Installs then run with
`--no-index --find-links <folder>`, without the network.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

# The Python that QGIS runs here: the interpreter the test virtual environment was made from.
QGIS_PYTHON = str(
    Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
)
_FOLDERS: list[Path] = []


def onnxruntime_version() -> str:
    """The version of the onnxruntime build installed here (GPU or CPU package)."""
    for name in ("onnxruntime-gpu", "onnxruntime"):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    raise RuntimeError("onnxruntime is not installed in the test environment")


def wheel_folder(base: Path) -> Path:
    """The wheel folder under `base`, downloaded by QGIS's pip on the first call only."""
    if not _FOLDERS:
        folder = base / "wheels"
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                QGIS_PYTHON, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", str(folder),
                f"onnxruntime=={onnxruntime_version()}", "flatbuffers", "packaging",
                "protobuf>=4.25.8", "numpy>=2,<3",
            ],
            check=True,
            timeout=900,
            cwd=folder,
        )  # fmt: skip
        _FOLDERS.append(folder)
    return _FOLDERS[0]


def pip_options(folder: Path) -> list[str]:
    """pip options that install from `folder` only."""
    return ["--no-index", "--find-links", str(folder)]
