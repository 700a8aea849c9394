"""The dependency installer with QGIS's real Python and pip: one real install of onnxruntime from
a local wheel folder into a temporary profile, then refusals and failures that must leave it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import numpy as np
import pytest
from dependency_wheels import (
    QGIS_PYTHON,
    build_wheel,
    onnxruntime_version,
    pip_options,
    wheel_folder,
)

from gapfill.core.environment import dependency_folder
from gapfill.core.environment.dependency_folder import (
    MANIFEST,
    POINTER,
    current_folder,
    generations,
)
from gapfill.core.environment.dependency_installer import (
    DependencyInstallError,
    added_to,
    choose_packages,
    constraints_text,
    install_dependencies,
    probe_python,
    refuse_cuda_torch,
    refuse_shipped,
    remove_dependencies,
    split_arguments,
)
from gapfill.core.environment.environment_check import (
    INSTALL_CPU_TORCH,
    RELU_MODEL,
    check_environment,
    format_report,
    verdicts,
)
from gapfill.core.errors import Cancelled, GapfillError


@pytest.fixture(scope="session")
def wheels(tmp_path_factory) -> Path:
    return wheel_folder(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def installed(wheels, tmp_path_factory) -> Path:
    """A profile's dependency folder after one real install of onnxruntime (the only one here)."""
    root = dependency_folder.dependency_root(tmp_path_factory.mktemp("profile"))
    lines: list[str] = []
    fractions: list[float] = []
    result = install_dependencies(
        root,
        build="cpu",
        python=QGIS_PYTHON,
        pip_options=pip_options(wheels),
        log=lines.append,
        progress=fractions.append,
    )
    assert result.folder == current_folder(root)
    assert result.installed["onnxruntime"] == onnxruntime_version()
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any(line.startswith("Successfully installed") for line in lines)  # pip's own output
    return root


def state(root: Path) -> tuple[str, list[Path]]:
    return (root / POINTER).read_text(encoding="utf-8"), generations(root)


def run_qgis_python(code: str, folder: Path) -> str:
    environment = dict(os.environ, PYTHONPATH=str(folder))
    completed = subprocess.run(
        [QGIS_PYTHON, "-c", code],
        env=environment,
        cwd=folder.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def test_install_adds_onnxruntime_and_leaves_numpy_to_qgis(installed):
    folder = current_folder(installed)
    names = {path.name.split("-")[0].lower() for path in folder.glob("*.dist-info")}
    assert "onnxruntime" in names and "numpy" not in names
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["kept"]["numpy"] == np.__version__
    assert "numpy==" + np.__version__ in (installed / "constraints.txt").read_text()
    out = run_qgis_python(
        "import json; from osgeo import gdal_array; import numpy, onnxruntime\n"
        f"model = {RELU_MODEL!r}\n"
        "session = onnxruntime.InferenceSession(model, providers=['CPUExecutionProvider'])\n"
        "y = session.run(None, {'x': numpy.array([-1, 3], numpy.float32)})[0]\n"
        "width = gdal_array.OpenArray(numpy.ones((2, 3), numpy.uint8)).RasterXSize\n"
        "print(json.dumps([numpy.__file__, onnxruntime.__file__, y.tolist(), width]))",
        folder,
    )
    numpy_file, onnxruntime_file, y, width = json.loads(out)
    assert not Path(numpy_file).is_relative_to(folder)
    assert Path(onnxruntime_file).is_relative_to(folder)
    assert y == [0.0, 3.0] and width == 3


def test_numpy_major_change_is_refused(installed, wheels):
    before = state(installed)
    with pytest.raises(DependencyInstallError, match="numpy of another major version would break"):
        install_dependencies(
            installed,
            # another major than QGIS's numpy (1 on QGIS 3.22, 2 on QGIS 3.40)
            requirements=["onnxruntime", f"numpy!={np.__version__.split('.')[0]}.*"],
            python=QGIS_PYTHON,
            pip_options=pip_options(wheels),
        )
    assert state(installed) == before


def test_failed_install_leaves_the_previous_folder_in_use(installed, wheels):
    before = state(installed)
    with pytest.raises(DependencyInstallError, match="gapfill-no-such-package"):
        install_dependencies(
            installed,
            requirements=["gapfill-no-such-package"],
            python=QGIS_PYTHON,
            pip_options=pip_options(wheels),
        )
    assert state(installed) == before
    assert current_folder(installed).joinpath("onnxruntime").is_dir()


def test_cancel_while_pip_installs_deletes_the_new_folder(installed, wheels):
    before = state(installed)
    lines: list[str] = []
    with pytest.raises(Cancelled):
        install_dependencies(
            installed,
            build="cpu",
            python=QGIS_PYTHON,
            pip_options=pip_options(wheels),
            log=lines.append,
            cancelled=lambda: any("--target" in line for line in lines),
        )
    assert state(installed) == before


def test_plan_that_replaces_a_shipped_package_is_refused():
    shipped = {"numpy": "1.24.2", "scipy": "1.10.1"}
    refuse_shipped({"onnxruntime": "1.31.1", "protobuf": "7.36.2"}, shipped)
    with pytest.raises(DependencyInstallError, match="numpy 1.24.2 by numpy 2.0.2"):
        refuse_shipped({"numpy": "2.0.2"}, shipped)
    with pytest.raises(DependencyInstallError, match="shadow SciPy 1.10.1"):
        refuse_shipped({"SciPy": "1.11.0"}, shipped)


def test_constraints_pin_what_qgis_python_ships(tmp_path):
    info = probe_python(QGIS_PYTHON, tmp_path)
    assert info.shipped["numpy"] == np.__version__ and info.gdal_array and info.pip
    text = constraints_text(info, ["nvidia-cuda-runtime<13"])
    assert f"numpy=={np.__version__}\n" in text and text.endswith("nvidia-cuda-runtime<13\n")


TRAINING = ["torch", "onnx", "pyyaml"]


@pytest.mark.parametrize(
    ("build", "training", "system", "cuda", "requirements", "options", "constraints"),
    [
        ("auto", False, "Linux", None, ["onnxruntime"], [], []),
        ("auto", False, "Linux", (12, 4), ["onnxruntime-gpu[cuda,cudnn]"], [], ["<13"]),
        ("auto", False, "Linux", (11, 8), ["onnxruntime"], [], []),
        ("cpu", True, "Linux", (12, 4), ["onnxruntime", *TRAINING], ["whl/cpu"], []),
        ("auto", True, "Linux", (13, 0), ["onnxruntime-gpu[cuda,cudnn]", *TRAINING], [], ["<14"]),
        (
            "auto",
            True,
            "Windows",
            (12, 8),
            ["onnxruntime-gpu[cuda,cudnn]", *TRAINING],
            ["cu126"],
            ["<13"],
        ),
        ("auto", True, "Darwin", None, ["onnxruntime", *TRAINING], [], []),
    ],
)
def test_packages_follow_the_platform_and_the_driver(
    build, training, system, cuda, requirements, options, constraints
):
    choice = choose_packages(build, training, system, cuda)
    assert choice.requirements == requirements
    assert len(choice.pip_options) == 2 * len(options)
    assert all(part in " ".join(choice.pip_options) for part in options)
    assert len(choice.constraints) == len(constraints)
    assert all(part in " ".join(choice.constraints) for part in constraints)


def test_training_brings_onnx_at_a_version_for_qgis_numpy():
    """onnx 1.18 and later need numpy 2: with QGIS's numpy 1, onnx 1.17.0."""
    choice = choose_packages("cpu", True, "Linux", None, "1.24.2")
    assert choice.requirements == ["onnxruntime", "torch", "onnx==1.17.0", "pyyaml"]
    assert choice.cpu_only
    assert "onnx" in choose_packages("auto", True, "Linux", None, "2.1.0").requirements
    assert not choose_packages("auto", False, "Linux", (12, 4)).cpu_only


def test_requirements_add_to_what_is_installed():
    previous = {
        "requirements": ["onnxruntime-gpu[cuda,cudnn]", "torch"],
        "installed": {"onnxruntime-gpu": "1.20.1", "torch": "2.5.1+cpu", "numpy": "1.26.4"},
        "pip_options": ["--extra-index-url", "https://download.pytorch.org/whl/cpu"],
    }
    requirements, options = added_to(previous, ["onnx==1.17.0"])
    assert requirements == [
        "onnxruntime-gpu[cuda,cudnn]==1.20.1",
        "torch==2.5.1+cpu",
        "onnx==1.17.0",
    ]
    assert options == previous["pip_options"]
    requirements, _ = added_to(previous, ["torch==2.6.0"])  # named again: the new request wins
    assert requirements == ["onnxruntime-gpu[cuda,cudnn]==1.20.1", "torch==2.6.0"]


def test_a_second_install_keeps_the_first_unless_replaced(wheels, tmp_path):
    """REQUIREMENTS=protobuf after REQUIREMENTS=flatbuffers: both in the new folder; asked to
    replace, only the new one."""
    root = dependency_folder.dependency_root(tmp_path)
    options = pip_options(wheels)
    first = install_dependencies(
        root, requirements=["flatbuffers"], python=QGIS_PYTHON, pip_options=options
    )
    lines: list[str] = []
    second = install_dependencies(
        root,
        requirements=["protobuf>=4.25.8"],
        python=QGIS_PYTHON,
        pip_options=options,
        log=lines.append,
    )
    assert set(second.installed) == {"flatbuffers", "protobuf"}
    assert second.installed["flatbuffers"] == first.installed["flatbuffers"]
    assert any(line.startswith("Adding to what") for line in lines)
    manifest = json.loads((second.folder / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["requirements"][0] == f"flatbuffers=={first.installed['flatbuffers']}"
    run_qgis_python("import flatbuffers, google.protobuf", second.folder)
    replaced = install_dependencies(
        root, requirements=["protobuf>=4.25.8"], replace=True, python=QGIS_PYTHON,
        pip_options=options,
    )  # fmt: skip
    assert set(replaced.installed) == {"protobuf"}
    assert not list(replaced.folder.glob("flatbuffers*"))


def test_a_cuda_torch_is_refused_when_a_cpu_build_was_asked_for(tmp_path):
    """A local 'torch' that needs an NVIDIA package, as PyPI's Linux build does: pip resolves
    it, and the CPU install refuses it before installing anything."""
    wheels = tmp_path / "wheels"
    build_wheel(wheels, "torch", "2.5.1", ("nvidia-cuda-runtime-cu12",))
    build_wheel(wheels, "nvidia-cuda-runtime-cu12", "12.4.127")
    root = dependency_folder.dependency_root(tmp_path / "profile")
    with pytest.raises(DependencyInstallError, match=r"torch 2\.5\.1 with 1 NVIDIA.*--index-url"):
        install_dependencies(
            root, build="cpu", requirements=["torch"], python=QGIS_PYTHON,
            pip_options=pip_options(wheels),
        )  # fmt: skip
    assert current_folder(root) is None and not generations(root)
    refuse_cuda_torch({"torch": "2.5.1+cpu", "numpy": "1.26.4"}, [])  # the CPU build passes
    with pytest.raises(DependencyInstallError, match="CUDA build"):
        refuse_cuda_torch({"torch": "2.5.1+cu121"}, [])


@pytest.mark.torch
def test_check_flags_a_cuda_torch_without_a_gpu_and_a_missing_onnx(tmp_path):
    report = check_environment(qgis_version="test", root=tmp_path)
    cuda_torch = {
        **report["torch"], "importable": True, "version": "2.5.1", "cuda": "12.4",
        "cuda_available": False, "size_mb": 5400,
    }  # fmt: skip
    flagged = verdicts({**report, "torch": cuda_torch}, tmp_path)["training"]
    assert "CUDA build" in flagged["detail"] and "5.4 GB" in flagged["detail"]
    assert flagged["fix"] == INSTALL_CPU_TORCH
    no_onnx = {**report, "torch": cuda_torch, "onnx": {"importable": False, "error": "gone"}}
    assert verdicts(no_onnx, tmp_path)["training"]["ok"] is False
    assert report["torch"]["size_mb"] > 0 and report["onnx"]["importable"]


def test_masks_add_the_cloud_detectors():
    choice = choose_packages("cpu", False, "Linux", None, masks=True)
    assert choice.requirements == ["onnxruntime", "ukis-csmask==1.0.0", "s2cloudless==1.7.3"]
    mac = choose_packages("auto", False, "Darwin", None, masks=True)
    assert any("brew install libomp" in note for note in mac.notes)


def test_dask_distributed_comes_with_fill_many():
    choice = choose_packages("cpu", False, "Linux", None, distributed=True)
    assert choice.requirements == ["onnxruntime", "distributed==2026.8.0"]


def test_gpu_build_is_refused_on_macos():
    with pytest.raises(DependencyInstallError, match="Linux and Windows only"):
        choose_packages("gpu", False, "Darwin", None)


def test_dry_run_prints_the_commands_and_writes_nothing(tmp_path):
    lines: list[str] = []
    root = tmp_path / "python" / "gapfill-deps"
    result = install_dependencies(
        root, training=True, python=QGIS_PYTHON, dry_run=True, log=lines.append
    )
    assert not root.exists() and result.folder is None
    resolve, install = result.commands
    assert "-m pip install" in resolve and "--dry-run --report" in resolve
    onnx = "onnx==1.17.0" if np.__version__.startswith("1.") else "onnx"  # built for numpy 1
    assert "--constraint" in resolve and resolve.endswith(f"onnxruntime torch {onnx} pyyaml")
    assert "--target" in install and "--no-deps" in install
    assert any(f"numpy=={np.__version__}" in line for line in lines)


@pytest.mark.parametrize(("requirement", "message"), [
    ("this is not", "is not a package requirement"),
    ("--index-url", "is a pip option, not a package"),
])
def test_what_is_not_a_requirement_is_refused_before_pip(tmp_path, requirement, message):
    root = tmp_path / "gapfill-deps"
    with pytest.raises(GapfillError, match=message):
        install_dependencies(root, requirements=[requirement], python=QGIS_PYTHON, dry_run=True)
    assert not root.exists()
    install_dependencies(  # a local wheel is pip's to judge, as are versions and extras
        root, requirements=["/wheels/torch-2.13.0-cp311-none-linux_x86_64.whl",
                            "dask[distributed]>=2024.1"], python=QGIS_PYTHON, dry_run=True,
    )


def test_python_without_pip_is_refused_with_the_fix(tmp_path):
    venv.EnvBuilder(with_pip=False, system_site_packages=False).create(tmp_path / "nopip")
    python = tmp_path / "nopip" / "bin" / "python"
    with pytest.raises(DependencyInstallError, match="has no pip.*apt install python3-pip"):
        install_dependencies(tmp_path / "deps", python=str(python))
    assert not (tmp_path / "deps").exists()


def test_activate_puts_the_current_generation_first(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    root = tmp_path / "gapfill-deps"
    old, new = root / "gen-1", root / "gen-2"
    old.mkdir(parents=True)
    new.mkdir()
    assert dependency_folder.activate(root) is None
    sys.path.insert(0, str(old))
    (root / POINTER).write_text("gen-2\n")
    assert dependency_folder.activate(root) == new
    assert sys.path[0] == str(new) and str(old) not in sys.path
    (root / POINTER).write_text("../elsewhere")
    assert dependency_folder.activate(root) is None and str(new) not in sys.path


def test_remove_deletes_every_generation(tmp_path):
    root = tmp_path / "gapfill-deps"
    for name in ("gen-1", "gen-2"):
        (root / name / "package").mkdir(parents=True)
    (root / POINTER).write_text("gen-2")
    (root / "constraints.txt").write_text("numpy==1\n")
    removed, leftovers = remove_dependencies(root)
    assert [path.name for path in removed] == ["gen-1", "gen-2"] and leftovers == []
    assert not root.exists()


def test_split_arguments():
    assert split_arguments("") == []
    assert split_arguments("--find-links '/a b' --no-index") == [
        "--find-links",
        "/a b",
        "--no-index",
    ]
    with pytest.raises(GapfillError, match="close every quote"):
        split_arguments("torch 'onnx")


def test_relu_model_is_the_one_onnx_helper_builds():
    onnx = pytest.importorskip("onnx")
    helper = onnx.helper
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["n"])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["n"])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=7)
    onnx.checker.check_model(model, full_check=True)
    assert model.SerializeToString() == RELU_MODEL


def test_check_environment_reports_this_python(installed):
    report = check_environment(qgis_version="test", root=installed)
    json.dumps(report)
    assert report["python"]["numpy"] == np.__version__ and report["python"]["gdal_array"]
    assert report["onnxruntime"]["version"] == onnxruntime_version()
    assert not report["onnxruntime"]["from_dependency_folder"]  # not on this process's path
    assert report["dependency_folder"]["current"] == str(current_folder(installed))
    assert report["dependency_folder"]["on_sys_path"] is False
    assert report["verdicts"]["classical"]["ok"] and report["verdicts"]["onnx_cpu"]["ok"]
    assert set(report["verdicts"]) == {"classical", "onnx_cpu", "onnx_gpu", "training", "masks"}
    assert report["verdicts"]["masks"]["ok"]  # the venv has both detectors
    assert report["cloud_detectors"]["ukis-csmask"]["version"] == "1.0.0"
    text = format_report(report)
    assert "ONNX fill on the CPU" in text and str(installed) in text
