"""What this QGIS can run, and the exact fix for what it cannot.

Reports the versions of QGIS (given by the caller), Python, numpy and GDAL; whether onnxruntime
imports, its build and execution providers, and whether a CUDA session really opens and runs; the
NVIDIA driver; torch and its CUDA (a CUDA build without a usable GPU is flagged, with what it
weighs) and onnx; the cloud detectors of Build gap mask; the plugin's dependency folder; then a
verdict per feature.
"""

from __future__ import annotations

import importlib
import platform
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ..dependencies import python_executable, qgis_process_command
from ..errors import GapfillError
from ..learned.onnx_session import CUDA, create_session, provider_used
from .dependency_folder import current_folder, read_manifest
from .dependency_installer import DependencyInstallError, pip_fix, probe_python
from .nvidia import driver_cuda_version, gpus

INSTALL = (
    "Run Plugins › Gapfill › Install dependencies… (or "
    f"{qgis_process_command('gapfill:installdependencies')}), then restart QGIS."
)
INSTALL_TRAINING = (
    "Run Plugins › Gapfill › Install dependencies… with 'Also install what training needs' "
    "checked (or "
    f"{qgis_process_command('gapfill:installdependencies -- TRAINING=true')}), then restart QGIS."
)
INSTALL_CPU_TORCH = (
    "To reclaim the space, run 'Remove dependencies', restart QGIS, then 'Install "
    "dependencies' with the ONNX Runtime build on CPU and training checked: it installs the "
    "CPU build of PyTorch (about 0.2 GB)."
)
INSTALL_MASKS = (
    "Run Plugins › Gapfill › Install dependencies… with 'Also install the cloud detectors' "
    "checked (or `qgis_process run gapfill:installdependencies -- MASKS=true`), then restart "
    "QGIS."
)
DETECTORS = {"ukis_csmask": "ukis-csmask", "s2cloudless": "s2cloudless"}
REMOVE = (
    f"Run 'Remove dependencies' (or {qgis_process_command('gapfill:removedependencies')}), then "
    "restart QGIS."
)
# y = relu(x) on a float vector (ONNX IR 7, opset 13), 63 bytes built with onnx.helper (the tests
# rebuild it): a real model for a CUDA session without needing the `onnx` package.
RELU_MODEL = bytes.fromhex(
    "08073a350a0c0a0178120179220452656c751201675a100a0178120b0a09080112050a0312016e62100a0179"
    "120b0a09080112050a0312016e42040a00100d"
)
FEATURES = {
    "classical": "Classical fills",
    "onnx_cpu": "ONNX fill on the CPU",
    "onnx_gpu": "ONNX fill on an NVIDIA GPU",
    "training": "Training (PyTorch)",
    "masks": "Cloud detectors of Build gap mask",
}


def _import(name: str) -> tuple[ModuleType | None, str | None]:
    """The module, or None and why it does not import (any error: a DLL may fail to load)."""
    try:
        return importlib.import_module(name), None
    except Exception as error:  # ImportError, OSError from a shared library, …
        return None, f"{type(error).__name__}: {error}"


def _location(module: ModuleType) -> Path:
    return Path(module.__file__).resolve().parent


def _inside(path: Path | None, root: Path) -> bool:
    return path is not None and root.resolve() in path.resolve().parents


def python_section(root: Path) -> dict[str, Any]:
    """Python, the interpreter the installer would use and its pip, numpy and GDAL."""
    section: dict[str, Any] = {
        "version": platform.python_version(),
        "interpreter": python_executable(),
        "pip": None,
        "pip_error": None,
    }
    try:
        section["pip"] = probe_python(section["interpreter"], root).pip
    except DependencyInstallError as error:
        section["pip_error"] = str(error)
    if section["pip"] is None and section["pip_error"] is None:
        section["pip_error"] = pip_fix().replace("<python>", section["interpreter"])
    numpy, error = _import("numpy")
    section["numpy"] = numpy.__version__ if numpy else None
    section["numpy_location"] = str(_location(numpy)) if numpy else None
    section["numpy_error"] = error
    gdal, error = _import("osgeo.gdal")
    section["gdal"] = gdal.__version__ if gdal else None
    gdal_array, array_error = _import("osgeo.gdal_array")
    section["gdal_array"] = gdal_array is not None
    section["gdal_error"] = error or array_error
    return section


def cuda_session(ort: ModuleType, driver: bool) -> dict[str, Any]:
    """Open a CUDA session on a tiny model and run it: only that proves the GPU works."""
    if CUDA not in ort.get_available_providers():
        return {"ok": None, "detail": "not tried: this onnxruntime is the CPU build"}
    if not driver:
        return {"ok": None, "detail": "not tried: no NVIDIA driver"}
    messages: list[str] = []
    try:
        session = create_session(RELU_MODEL, "cuda", threads=1, log=messages.append)
        output = session.run(None, {"x": np.array([-1.0, 2.0], np.float32)})[0]
    except (GapfillError, RuntimeError) as error:
        return {"ok": False, "detail": str(error)}
    if session.get_providers()[0] != CUDA:
        return {"ok": False, "detail": " ".join(messages)}
    if output.tolist() != [0.0, 2.0]:
        return {"ok": False, "detail": f"the CUDA session computed {output.tolist()}"}
    return {"ok": True, "detail": f"ran on {provider_used(session)}"}


def onnxruntime_section(root: Path, driver: bool, try_cuda: bool) -> dict[str, Any]:
    ort, error = _import("onnxruntime")
    if ort is None:
        return {"importable": False, "error": error}
    info, _ = _import("onnxruntime.capi.build_and_package_info")
    location = _location(ort)
    section = {
        "importable": True,
        "version": ort.__version__,
        "package": getattr(info, "package_name", None),
        "build_cuda": getattr(info, "cuda_version", None),
        "location": str(location),
        "from_dependency_folder": _inside(location, root),
        "providers": list(ort.get_available_providers()),
    }
    if try_cuda:
        section["cuda_session"] = cuda_session(ort, driver)
    else:
        section["cuda_session"] = {"ok": None, "detail": "not tried (switched off)"}
    return section


def folder_megabytes(folders: list[Path]) -> float:
    """The size of the files under `folders` (MB)."""
    total = 0
    for folder in folders:
        for path in folder.rglob("*"):
            try:
                if path.is_file() and not path.is_symlink():
                    total += path.stat().st_size
            except OSError:
                continue
    return total / 1e6


def torch_section(root: Path) -> dict[str, Any]:
    """torch, whether it is a CUDA build, and what it and its NVIDIA libraries weigh."""
    torch, error = _import("torch")
    if torch is None:
        return {"importable": False, "error": error}
    location = _location(torch)
    available = bool(torch.cuda.is_available())
    site = location.parent
    parts = [location, *(site / name for name in ("nvidia", "triton") if (site / name).is_dir())]
    return {
        "importable": True,
        "version": torch.__version__,
        "location": str(location),
        "from_dependency_folder": _inside(location, root),
        "cuda": torch.version.cuda,
        "cuda_available": available,
        "device": torch.cuda.get_device_name(0) if available else None,
        "size_mb": round(folder_megabytes(parts)),
    }


def onnx_section() -> dict[str, Any]:
    """The `onnx` package, which exporting a trained model needs."""
    onnx, error = _import("onnx")
    if onnx is None:
        return {"importable": False, "error": error}
    return {"importable": True, "version": onnx.__version__, "location": str(_location(onnx))}


def detectors_section() -> dict[str, Any]:
    """Whether each cloud detector imports, and its version."""
    section = {}
    for module, name in DETECTORS.items():
        package, error = _import(module)
        version = getattr(package, "__version__", None) if package else None
        if package is not None and version is None:
            from importlib.metadata import version as installed_version

            version = installed_version(name)
        section[name] = {"importable": package is not None, "version": version, "error": error}
    return section


def masks_verdict(detectors: dict[str, Any], python: dict[str, Any]) -> dict[str, Any]:
    found = [f"{name} {item['version']}" for name, item in detectors.items() if item["importable"]]
    missing = [f"{name} ({item['error']})" for name, item in detectors.items()
               if not item["importable"]]
    if not missing:
        return verdict(True, f"{', '.join(found)}: the automatic mask method runs ukis-csmask.")
    using = "ukis-csmask" if detectors["ukis-csmask"]["importable"] else (
        "s2cloudless" if found else "the spectral score")
    return verdict(
        False if not found else None,
        f"Not importable: {'; '.join(missing)}. The automatic mask method uses {using}.",
        install_fix(python, INSTALL_MASKS),
    )


def folder_section(root: Path) -> dict[str, Any]:
    folder = current_folder(root)
    manifest = read_manifest(folder) if folder else {}
    on_path = folder is not None and any(
        entry and Path(entry).resolve() == folder.resolve() for entry in sys.path
    )
    return {
        "root": str(root),
        "current": str(folder) if folder else None,
        "on_sys_path": on_path,
        "packages": manifest.get("installed", {}),
        "installed_on": manifest.get("date"),
    }


def verdict(ok: bool | None, detail: str, fix: str | None = None) -> dict[str, Any]:
    return {"ok": ok, "detail": detail, "fix": fix}


def install_fix(python: dict[str, Any], fix: str = INSTALL) -> str:
    """`fix`, preceded by how to get pip when QGIS's Python has none."""
    return f"{python['pip_error']} Then: {fix}" if python["pip"] is None else fix


def classical_verdict(python: dict[str, Any], root: Path) -> dict[str, Any]:
    if python["numpy"] and python["gdal_array"]:
        return verdict(True, f"numpy {python['numpy']} and GDAL {python['gdal']} work together.")
    numpy_location = Path(python["numpy_location"]) if python["numpy_location"] else None
    if _inside(numpy_location, root):
        return verdict(
            False,
            f"numpy is loaded from Gapfill's dependency folder ({numpy_location}) and GDAL "
            f"fails: {python['gdal_error'] or python['numpy_error']}",
            REMOVE,
        )
    return verdict(
        False,
        f"GDAL's Python bindings do not work: {python['gdal_error'] or python['numpy_error']}",
        "Repair QGIS's installation (Debian/Ubuntu: sudo apt install --reinstall python3-gdal "
        "python3-numpy; Windows: the OSGeo4W installer, package python3-gdal).",
    )


def gpu_verdict(
    ort: dict[str, Any], cuda: tuple[int, int] | None, python: dict[str, Any]
) -> dict[str, Any]:
    if platform.system() == "Darwin":
        return verdict(False, "ONNX Runtime has no CUDA build for macOS: fills run on the CPU.")
    if cuda is None:
        return verdict(
            False,
            "No NVIDIA driver found: fills run on the CPU.",
            "With an NVIDIA GPU: install its driver (CUDA 12 or newer), then run Plugins › "
            "Gapfill › Install dependencies… again.",
        )
    if not ort["importable"]:
        return verdict(False, f"onnxruntime does not import ({ort['error']}).", install_fix(python))
    build = ort["build_cuda"]
    if "CUDAExecutionProvider" not in ort["providers"]:
        return verdict(
            False,
            f"onnxruntime {ort['version']} is the CPU build.",
            install_fix(python, "Run Plugins › Gapfill › Install dependencies… with the ONNX "
                        "Runtime build on Automatic or GPU, then restart QGIS."),
        )  # fmt: skip
    if build and int(build.split(".")[0]) > cuda[0]:
        return verdict(
            False,
            f"{ort['package']} {ort['version']} is built for CUDA {build}, but the NVIDIA driver "
            f"runs CUDA up to {cuda[0]}.{cuda[1]}.",
            "Update the NVIDIA driver, or run Plugins › Gapfill › Install dependencies… again: "
            "it picks a build that your driver runs.",
        )
    session = ort["cuda_session"]
    if session["ok"]:
        return verdict(True, f"A CUDA session {session['detail']}.")
    if session["ok"] is None:
        return verdict(None, f"CUDA session {session['detail']}.")
    return verdict(
        False,
        f"ONNX Runtime's CUDA provider does not start: {session['detail']}",
        "Run Plugins › Gapfill › Install dependencies… with the ONNX Runtime build on GPU: it "
        "installs NVIDIA's CUDA and cuDNN libraries as pip packages next to onnxruntime-gpu (or "
        f"install CUDA {build or '12'} and cuDNN 9 system-wide). Then restart QGIS.",
    )


def verdicts(report: dict[str, Any], root: Path) -> dict[str, dict[str, Any]]:
    python, ort, torch = report["python"], report["onnxruntime"], report["torch"]
    cuda = tuple(report["nvidia"]["driver_cuda"]) if report["nvidia"]["driver_cuda"] else None
    if ort["importable"]:
        cpu = verdict(True, f"onnxruntime {ort['version']} from {ort['location']}.")
    else:
        cpu = verdict(False, f"onnxruntime does not import ({ort['error']}).", install_fix(python))
    onnx = report.get("onnx", {"importable": True})
    if torch["importable"] and torch["cuda"] and not torch["cuda_available"]:
        training = verdict(
            True,
            f"torch {torch['version']} is a CUDA build (CUDA {torch['cuda']}, "
            f"{torch['size_mb'] / 1e3:.1f} GB with its NVIDIA libraries in {torch['location']}), "
            "but no GPU is usable here: training runs on the CPU, and the CUDA libraries only "
            "take space.",
            INSTALL_CPU_TORCH,
        )
    elif torch["importable"]:
        where = "CUDA available" if torch["cuda_available"] else "no CUDA: training on the CPU"
        training = verdict(True, f"torch {torch['version']} ({where}).")
    else:
        training = verdict(
            False,
            f"torch does not import ({torch['error']}).",
            install_fix(python, INSTALL_TRAINING),
        )
    if torch["importable"] and not onnx["importable"]:
        training = verdict(
            False,
            f"torch {torch['version']} imports, but onnx does not ({onnx['error']}): a trained "
            "model could not be exported.",
            install_fix(python, INSTALL_TRAINING),
        )
    return {
        "classical": classical_verdict(python, root),
        "onnx_cpu": cpu,
        "onnx_gpu": gpu_verdict(ort, cuda, python),
        "training": training,
        "masks": masks_verdict(report["cloud_detectors"], python),
    }


def check_environment(*, qgis_version: str, root: Path, try_cuda: bool = True) -> dict[str, Any]:
    """The whole report, JSON-ready. `root`: the plugin's dependency folder."""
    root = Path(root)
    cuda = driver_cuda_version()
    report: dict[str, Any] = {
        "qgis": qgis_version,
        "platform": platform.platform(),
        "python": python_section(root),
        "nvidia": {
            "driver_cuda": list(cuda) if cuda else None,
            "gpus": [vars(gpu) for gpu in gpus()],
        },
    }
    report["onnxruntime"] = onnxruntime_section(root, cuda is not None, try_cuda)
    report["torch"] = torch_section(root)
    report["onnx"] = onnx_section()
    report["cloud_detectors"] = detectors_section()
    report["dependency_folder"] = folder_section(root)
    report["verdicts"] = verdicts(report, root)
    return report


def format_report(report: dict[str, Any]) -> str:
    """The report as text for the log."""
    python, ort, torch = report["python"], report["onnxruntime"], report["torch"]
    nvidia, folder = report["nvidia"], report["dependency_folder"]
    gdal_array = "imports" if python["gdal_array"] else f"FAILS: {python['gdal_error']}"
    lines = [
        f"QGIS {report['qgis']} on {report['platform']}",
        f"Python {python['version']} ({python['interpreter']}, "
        + (f"pip {python['pip']})" if python["pip"] else "no pip)"),
        f"numpy {python['numpy']} ({python['numpy_location']}), GDAL {python['gdal']}, "
        f"gdal_array {gdal_array}",
    ]
    if nvidia["driver_cuda"]:
        major, minor = nvidia["driver_cuda"]
        cards = "; ".join(
            f"{g['name']} ({g['memory']}, driver {g['driver']})" for g in nvidia["gpus"]
        )
        lines.append(f"NVIDIA driver: CUDA up to {major}.{minor}" + (f"; {cards}" if cards else ""))
    else:
        lines.append("NVIDIA driver: none")
    if ort["importable"]:
        build = f", CUDA {ort['build_cuda']}" if ort["build_cuda"] else ""
        lines += [
            f"onnxruntime {ort['version']} ({ort['package']}{build}) from {ort['location']}",
            f"  providers: {', '.join(ort['providers'])}",
            f"  CUDA session: {ort['cuda_session']['detail']}",
        ]
    else:
        lines.append(f"onnxruntime: not importable ({ort['error']})")
    if torch["importable"]:
        cuda = f"CUDA {torch['cuda']}, " if torch["cuda"] else ""
        state = "available" if torch["cuda_available"] else "not available"
        lines.append(
            f"torch {torch['version']} ({cuda}GPU {state}; {torch['size_mb']} MB) from "
            f"{torch['location']}"
        )
    else:
        lines.append(f"torch: not importable ({torch['error']})")
    onnx = report["onnx"]
    if onnx["importable"]:
        lines.append(f"onnx {onnx['version']} from {onnx['location']}")
    else:
        lines.append(f"onnx: not importable ({onnx['error']})")
    for name, item in report["cloud_detectors"].items():
        state = item["version"] if item["importable"] else f"not importable ({item['error']})"
        lines.append(f"{name}: {state}")
    lines.append(f"Gapfill's dependency folder: {folder['root']}")
    if folder["current"]:
        packages = ", ".join(f"{name} {version}" for name, version in folder["packages"].items())
        on_path = "on sys.path" if folder["on_sys_path"] else "NOT on sys.path: restart QGIS"
        lines.append(f"  in use: {folder['current']} ({on_path}): {packages}")
    else:
        lines.append("  nothing installed there")
    lines.append("")
    marks = {True: "OK  ", False: "NO  ", None: "??  "}
    for key, title in FEATURES.items():
        item = report["verdicts"][key]
        lines.append(f"{marks[item['ok']]}{title}: {item['detail']}")
        if item["fix"]:
            lines.append(f"    Fix: {item['fix']}")
    return "\n".join(lines)
