"""Test set-up shared by all tests: the plugin importable as `gapfill`, and the real data folder.

The repository root is the plugin folder, whose name is not fixed (a clone may be called
anything), so the tests reach it through a symbolic link named `gapfill` in a temporary folder,
exactly as QGIS finds it through QGIS_PLUGINPATH.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PLUGIN_PATH = Path(tempfile.mkdtemp(prefix="gapfill-pluginpath-"))
(PLUGIN_PATH / "gapfill").symlink_to(REPO, target_is_directory=True)
sys.path.insert(0, str(PLUGIN_PATH))
sys.path.insert(0, str(REPO / "scripts"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest_plugins = ["model_factory"]  # small real ONNX models with cards, for core and QGIS tests


def data_folder() -> Path:
    return Path(os.environ.get("GAPFILL_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real sample data; missing data fails under CI and skips elsewhere."""
    folder = data_folder()
    if not (folder / "README.md").is_file():
        message = f"real data folder {folder} not found (set GAPFILL_DATA)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return folder


@pytest.fixture(scope="session")
def plugin_path() -> Path:
    """A folder holding `gapfill` → the repository, for QGIS_PLUGINPATH."""
    return PLUGIN_PATH
