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


def build_wheel(folder: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> Path:
    """A minimal pure-Python wheel (one module, its METADATA and RECORD) that pip resolves and
    installs like any other: a package of the test's own, e.g. one that depends on NVIDIA
    packages as PyPI's CUDA build of torch does."""
    import base64
    import hashlib
    import zipfile

    module = name.replace("-", "_")
    info = f"{module}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": f"__version__ = {version!r}\n",
        f"{info}/METADATA": "\n".join(
            ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
            + [f"Requires-Dist: {item}" for item in requires]
        )
        + "\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: gapfill-tests\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    records = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        records.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    files[f"{info}/RECORD"] = "\n".join([*records, f"{info}/RECORD,,"]) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel
