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


# Tests that import PyTorch at module level (training, its Processing algorithm); elsewhere a
# test that needs torch carries the `torch` mark.
TORCH_PATHS = (REPO / "tests" / "training", REPO / "tests" / "qgis" / "test_train_algorithm.py")
WITHOUT_TORCH = (
    "torch is not installed here (for Python 3.13 only a multi-GB CUDA build exists): the tests "
    "that need it (training, Deep Image Prior, the STPConv export, the scene fill's adapted "
    "network) are not run; `make test` runs them on QGIS 3.22"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--without-torch",
        action="store_true",
        help="leave out the tests that need PyTorch, and say so (make test-lts)",
    )


def needs_torch(path: Path) -> bool:
    return any(path == torch_path or torch_path in path.parents for torch_path in TORCH_PATHS)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if config.getoption("--without-torch") and needs_torch(collection_path):
        return True
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests of TORCH_PATHS `torch`; with --without-torch, deselect every `torch` test."""
    for item in items:
        if needs_torch(Path(item.fspath)):
            item.add_marker(pytest.mark.torch)
    if config.getoption("--without-torch"):
        left_out = [item for item in items if item.get_closest_marker("torch")]
        items[:] = [item for item in items if not item.get_closest_marker("torch")]
        config.hook.pytest_deselected(items=left_out)


def pytest_report_header(config: pytest.Config) -> str | None:
    if config.getoption("--without-torch"):
        return f"WITHOUT TORCH: {WITHOUT_TORCH}."
    return None


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    if config.getoption("--without-torch"):
        left_out = ", ".join(str(path.relative_to(REPO)) for path in TORCH_PATHS)
        terminalreporter.write_line(
            f"WITHOUT TORCH: {WITHOUT_TORCH}. Not collected: {left_out}; the other tests marked "
            "torch are counted as deselected.",
            yellow=True,
        )


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
