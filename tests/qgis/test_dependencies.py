"""Check environment, Install and Remove dependencies in real QGIS and qgis_process.

qgis_process runs QGIS's own Python: with the test environment on PYTHONPATH (onnxruntime and
torch importable), or bare (python_paths=[]), as a user's QGIS is before installing anything.
The install runs in a bare qgis_process from a local wheel folder into its private profile;
later qgis_process runs find the packages through the profile's pointer only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import processing
import pytest
from dependency_wheels import QGIS_PYTHON, onnxruntime_version, wheel_folder
from qgis.core import Qgis

from feedback import RecordingFeedback
from gapfill.algorithms.check_environment import CheckEnvironment
from gapfill.algorithms.install_dependencies import InstallDependencies
from qgis_runner import QgisProcess
from rasters import same_georeference

SAMPLE = "ROIs1868_summer_19_p30"


def check(qgis: QgisProcess, output: Path) -> dict:
    """Run Check environment in `qgis`; the JSON report it wrote."""
    result = qgis.run("gapfill:checkenvironment", {"TRY_CUDA": "false", "OUTPUT": output})
    assert Path(result["results"]["OUTPUT"]) == output
    assert "Classical fills" in result["results"]["REPORT"]
    return json.loads(output.read_text(encoding="utf-8"))


def test_check_environment_writes_text_and_json(qgis_processing, tmp_path):
    feedback = RecordingFeedback()
    result = processing.run(
        CheckEnvironment(), {"OUTPUT": str(tmp_path / "env.json")}, feedback=feedback
    )
    report = json.loads(Path(result["OUTPUT"]).read_text(encoding="utf-8"))
    assert report["qgis"] == Qgis.version()
    assert report["python"]["gdal_array"] and report["verdicts"]["classical"]["ok"]
    assert report["onnxruntime"]["version"] == onnxruntime_version()
    assert report["onnxruntime"]["cuda_session"]["detail"]  # tried, or why not
    assert result["REPORT"] in feedback.lines
    assert "ONNX fill on an NVIDIA GPU" in result["REPORT"]


@pytest.fixture(scope="module")
def path_report(tmp_path_factory) -> dict:
    """Check environment in a qgis_process with the test environment on PYTHONPATH."""
    folder = tmp_path_factory.mktemp("path")
    return check(QgisProcess(folder / "qgis"), folder / "env.json")


def test_check_sees_onnxruntime_on_the_path(path_report):
    assert path_report["onnxruntime"]["importable"]
    assert path_report["onnxruntime"]["version"] == onnxruntime_version()
    assert path_report["verdicts"]["onnx_cpu"]["ok"] and path_report["verdicts"]["classical"]["ok"]
    assert path_report["verdicts"]["masks"]["ok"]


@pytest.mark.torch
def test_check_sees_torch_on_the_path(path_report):
    assert path_report["torch"]["importable"]
    assert path_report["torch"]["version"] == version("torch")
    assert path_report["verdicts"]["training"]["ok"]


def test_check_needs_no_output_from_qgis_process(tmp_path):
    """`qgis_process run gapfill:checkenvironment` alone: the report goes to a temporary file."""
    run = QgisProcess(tmp_path / "qgis").call(
        ["--json", "run", "gapfill:checkenvironment", "--", "TRY_CUDA=false"]
    )
    results = json.loads(run.stdout)["results"]
    assert results["OUTPUT"].endswith(".json") and "Classical fills" in results["REPORT"]


def test_check_without_them_gives_the_fixes(tmp_path):
    report = check(QgisProcess(tmp_path / "bare", python_paths=[]), tmp_path / "env.json")
    assert not report["onnxruntime"]["importable"] and not report["torch"]["importable"]
    verdicts = report["verdicts"]
    assert verdicts["classical"]["ok"]
    assert verdicts["onnx_cpu"]["ok"] is False
    fix = verdicts["onnx_cpu"]["fix"]
    assert "`qgis_process run gapfill:installdependencies`" in fix  # both spellings: Debian 12
    assert "`qgis_process.bin run gapfill:installdependencies`" in fix
    assert verdicts["masks"]["ok"] is False and "MASKS=true" in verdicts["masks"]["fix"]
    assert "TRAINING=true" in verdicts["training"]["fix"]
    assert verdicts["onnx_gpu"]["ok"] is False and verdicts["onnx_gpu"]["fix"]
    assert report["dependency_folder"]["current"] is None


def test_dry_run_prints_the_pip_commands(qgis_processing):
    feedback = RecordingFeedback()
    result = processing.run(
        InstallDependencies(),
        {"DRY_RUN": True, "TRAINING": True, "PIP_OPTIONS": "--proxy http://proxy.invalid:3128"},
        feedback=feedback,
    )
    resolve, install = result["COMMANDS"].splitlines()
    assert "--dry-run --report" in resolve
    onnx = "onnx==1.17.0" if np.__version__.startswith("1.") else "onnx"  # built for numpy 1
    assert resolve.endswith(f"onnxruntime torch {onnx} pyyaml")
    assert "--proxy http://proxy.invalid:3128" in resolve and "--target" in install
    assert result["INSTALLED"] == ""
    assert any("Dry run: nothing installed" in line for line in feedback.lines)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[QgisProcess, dict]:
    """A bare qgis_process after 'Install dependencies' from the local wheel folder."""
    wheels = wheel_folder(tmp_path_factory.getbasetemp())
    qgis = QgisProcess(tmp_path_factory.mktemp("installed"), python_paths=[])
    result = qgis.run(
        "gapfill:installdependencies",
        {"BUILD": 1, "PIP_OPTIONS": f"--no-index --find-links {wheels}"},
    )
    return qgis, result


def test_install_goes_into_the_profile(installed):
    qgis, result = installed
    folder = Path(result["results"]["FOLDER"])
    assert folder.parent == qgis.config / "profiles" / "default" / "python" / "gapfill-deps"
    assert f"onnxruntime {onnxruntime_version()}" in result["results"]["INSTALLED"]
    assert not list(folder.glob("numpy*"))
    completed = subprocess.run(
        [QGIS_PYTHON, "-c", "from osgeo import gdal_array; import onnxruntime"],
        env=dict(os.environ, PYTHONPATH=str(folder)),
        cwd=folder.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr


def test_qgis_process_finds_the_installed_packages_through_the_profile(installed, tmp_path):
    qgis, result = installed
    assert qgis.environment["PYTHONPATH"] == ""
    report = check(qgis, tmp_path / "env.json")
    folder = report["dependency_folder"]
    assert folder["current"] == result["results"]["FOLDER"] and folder["on_sys_path"]
    assert report["onnxruntime"]["from_dependency_folder"]
    assert report["onnxruntime"]["package"] == "onnxruntime"
    assert report["python"]["gdal_array"] and report["verdicts"]["onnx_cpu"]["ok"]


def test_onnx_fill_runs_with_the_installed_onnxruntime(installed, models, data_dir, tmp_path):
    qgis, _ = installed
    folder = data_dir / "sen12mscr_georef"
    cloudy = folder / f"{SAMPLE}_s2_cloudy.tif"
    mask = qgis.run("gapfill:buildgapmask", {"INPUT": cloudy, "OUTPUT": tmp_path / "mask.tif"})
    info = " ".join(mask["log"].get("info", []))  # without the detectors: the spectral score
    assert "Automatic mask method: the spectral cloud/shadow score" in info
    assert "ukis-csmask is not installed" in info and "Cloud detectors" in info
    assert mask["results"]["METHOD_USED"].startswith("spectral")
    result = qgis.run(
        "gapfill:fillgaps",
        {
            "MODEL": models["sen12"].path,
            "INPUT": cloudy,
            "SAR": folder / f"{SAMPLE}_s1.tif",
            "GAP_MASK": mask["results"]["OUTPUT"],
            "DEVICE": 1,
            "OUTPUT": tmp_path / "filled.tif",
        },
    )
    assert result["results"]["FILLED_PIXELS"] > 0 and result["results"]["UNFILLED_PIXELS"] == 0
    assert same_georeference(tmp_path / "filled.tif", cloudy)


def test_remove_dependencies_empties_the_profile_folder(installed, tmp_path):
    qgis, result = installed
    removed = qgis.run("gapfill:removedependencies", {})
    assert removed["results"]["REMOVED"] == result["results"]["FOLDER"]
    assert not Path(result["results"]["FOLDER"]).exists()
    assert not check(qgis, tmp_path / "env.json")["onnxruntime"]["importable"]


MENU_SCRIPT = """
import json
import qgis.utils
from qgis.core import QgsApplication
from qgis.gui import QgsBrowserGuiModel, QgsMapCanvas, QgsMessageBar
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QApplication, QMainWindow

app = QgsApplication([], True)
app.initQgis()


class Iface:  # the part of QGIS's iface that a plugin menu and a Processing dialog use
    def __init__(self):
        self.window, self.canvas, self.bar = QMainWindow(), QgsMapCanvas(), QgsMessageBar()
        self.browser, self.menu = QgsBrowserGuiModel(), []
    def mainWindow(self):
        return self.window
    def mapCanvas(self):
        return self.canvas
    def messageBar(self):
        return self.bar
    def browserModel(self):
        return self.browser
    def activeLayer(self):
        return None
    def addPluginToMenu(self, name, action):
        self.menu.append((name, action))
    def removePluginMenu(self, name, action):
        self.menu.remove((name, action))


qgis.utils.iface = iface = Iface()
from processing.core.Processing import Processing

Processing.initialize()
import gapfill

plugin = gapfill.classFactory(iface)
plugin.initGui()
shown = [[name, action.text()] for name, action in iface.menu]
opened = []


def close_dialog():
    for widget in QApplication.topLevelWidgets():
        if widget.isVisible() and hasattr(widget, "algorithm"):
            opened.append(widget.algorithm().id())
            widget.reject()


timer = QTimer()
timer.timeout.connect(close_dialog)
timer.start(100)
for _, action in list(iface.menu):
    action.trigger()  # returns when the dialog is closed
plugin.unload()
print(json.dumps({"shown": shown, "opened": opened, "after": len(iface.menu)}))
"""


def test_menu_actions_open_the_dialogs_and_go_on_unload(plugin_path, tmp_path):
    environment = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(plugin_path), *sys.path]),
        QGIS_CUSTOM_CONFIG_PATH=str(tmp_path),
    )
    completed = subprocess.run(
        [sys.executable, "-c", MENU_SCRIPT],
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    menus = json.loads(completed.stdout.strip().splitlines()[-1])
    assert menus["shown"] == [
        ["&Gapfill", "Install dependencies…"],
        ["&Gapfill", "Check environment…"],
    ]
    assert menus["opened"] == ["gapfill:installdependencies", "gapfill:checkenvironment"]
    assert menus["after"] == 0
