"""`pip install .` from a clean copy of the repository into a fresh virtual environment, offline,
then the installed `gapfill` command fills real data end to end.

The environment is made with --system-site-packages (GDAL's Python bindings come from the
system) and sees this test environment's packages through a .pth file (numpy, tqdm,
onnxruntime, setuptools): pip runs with --no-index and --no-build-isolation, so it needs no
network, and still checks that the declared dependencies are installed.
"""

from __future__ import annotations

import configparser
import json
import os
import subprocess
import sysconfig
import venv
from pathlib import Path

import numpy as np
import pytest

from rasters import read, same_georeference

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("algorithms", "cli", "core", "training")  # the folders the package holds
LEFT_OUT = ("tests", "benchmarks", "scripts", "training/recipes")


def checkout(destination: Path) -> Path:
    """The files a clone of this working tree would have (tracked and new, not ignored)."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    for name in filter(None, listing.split("\0")):
        source = REPO / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    return destination


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh virtual environment with gapfill pip-installed into it; its bin folder."""
    work = tmp_path_factory.mktemp("pip")
    source = checkout(work / "source")
    environment = work / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=True).create(environment)
    python = environment / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    # what this test environment has installed, behind the fresh environment's own packages
    (Path(purelib) / "test-environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = subprocess.run(
        [python, "-m", "pip", "install", "--no-index", "--no-build-isolation", "--quiet", "."],
        cwd=source, capture_output=True, text=True, timeout=600, env=clean_environment(),
    )  # fmt: skip
    assert pip.returncode == 0, pip.stdout + pip.stderr
    return environment / "bin"


def clean_environment() -> dict[str, str]:
    """This process's environment without the paths that make the repository importable."""
    return {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH",)}


def run(bin_folder: Path, *arguments: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(bin_folder / arguments[0]), *arguments[1:]], cwd=cwd, capture_output=True,
        text=True, timeout=600, env=clean_environment(),
    )  # fmt: skip


def test_the_package_is_the_plugin_folder_without_tests_or_scripts(installed, tmp_path):
    probe = run(
        installed, "python", "-c",
        "import json, pathlib, gapfill; root = pathlib.Path(gapfill.__file__).parent; "
        "print(json.dumps([str(root), sorted(str(p.relative_to(root)) for p in "
        "root.rglob('*') if p.is_file() and '__pycache__' not in p.parts)]))",
        cwd=tmp_path,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    root, files = json.loads(probe.stdout)
    assert "site-packages" in root and not Path(root).is_relative_to(REPO)
    expected = {
        str(path.relative_to(REPO))
        for folder in PACKAGES
        for path in (REPO / folder).rglob("*.py")
        if "__pycache__" not in path.parts and not any(
            str(path.relative_to(REPO)).startswith(left) for left in LEFT_OUT
        )
    } | {"__init__.py", "plugin.py", "provider.py", "metadata.txt"}
    expected |= {str(path.relative_to(REPO)) for path in (REPO / "models").glob("*.onnx")}
    assert expected <= set(files)
    assert not [name for name in files if name.startswith(LEFT_OUT)]
    version = run(installed, "gapfill", "--version", cwd=tmp_path)
    plugin = configparser.ConfigParser()
    plugin.read(REPO / "metadata.txt", encoding="utf-8")
    assert version.stdout.strip() == f"gapfill {plugin['general']['version']}"


def test_installed_gapfill_fills_real_data_end_to_end(installed, data_dir, tmp_path):
    series = data_dir / "sen12mscr_ts"
    target = series / "s2_2018-03-07.tif"
    mask = run(installed, "gapfill", "mask", str(target), "-o", "mask.tif", "--json", cwd=tmp_path)
    assert mask.returncode == 0, mask.stderr
    assert 0.3 < json.loads(mask.stdout)["gap_fraction"] < 0.95  # a cloudy date
    fill = run(
        installed, "gapfill", "fill", "temporal", str(target), "--gap-mask", "mask.tif",
        "--other-dates", str(series / "s2_2018-02-25.tif"), str(series / "s2_2018-03-22.tif"),
        "-o", "filled.tif", "--json", cwd=tmp_path,
    )  # fmt: skip
    assert fill.returncode == 0, fill.stderr
    result = json.loads(fill.stdout)
    assert result["ok"] and result["filled_pixels"] > 0
    gap = read(tmp_path / "mask.tif")[0] == 1
    filled = read(tmp_path / "filled.tif")
    assert same_georeference(tmp_path / "filled.tif", target)
    np.testing.assert_array_equal(filled[:, ~gap], read(target)[:, ~gap])
    model = run(
        installed, "gapfill", "fill", "model", str(target), "--gap-mask", "mask.tif",
        "--before", str(series / "s2_2018-02-25.tif"), "--after", str(series / "s2_2018-03-22.tif"),
        "--device", "cpu", "-o", "model.tif", "--json", cwd=tmp_path,
    )  # fmt: skip
    from gapfill.core.learned.bundled_models import bundled_models

    multidate = next(m for m in bundled_models() if m.roles == {"optical_before", "optical_after"})
    if multidate.is_default:
        assert model.returncode == 0, model.stderr  # the bundled models ship in the package
        assert Path(json.loads(model.stdout)["model"]).name == multidate.path.name
    else:  # shipped too: the refusal quotes its card's verdict
        assert model.returncode == 2 and f"{multidate.path.name}: The model LOSES" in model.stderr


def test_the_pyproject_version_is_the_plugins():
    import configparser

    import tomllib

    metadata = configparser.ConfigParser()
    metadata.read(REPO / "metadata.txt", encoding="utf-8")
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["version"] == metadata["general"]["version"]


def test_the_pyproject_lists_every_package_folder():
    """A new room (a folder with __init__.py) must be named in pyproject.toml, or the installed
    package lacks it."""
    import tomllib

    listed = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "setuptools"
    ]["packages"]
    folders = {
        ".".join(("gapfill", *init.parent.relative_to(REPO).parts))
        for folder in PACKAGES
        for init in (REPO / folder).rglob("__init__.py")
        if not str(init.relative_to(REPO)).startswith(LEFT_OUT)
    }
    assert set(listed) == folders | {"gapfill"}
