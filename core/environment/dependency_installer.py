"""Install onnxruntime (torch for training, the cloud detectors for masks, Dask for many
scenes) into the plugin's dependency folder, safely.

The packages go into a new generation folder of `<profile>/python/gapfill-deps` with
`pip install --target`, run by the Python that QGIS runs, never into QGIS's own site-packages:

1. Resolve: `pip install --dry-run --report` against QGIS's Python, with constraints that pin
   every package QGIS ships (numpy first: GDAL's Python bindings are built against its major
   version) to its installed version. pip reports what it would add; a plan that would replace a
   shipped package is refused.
2. Install exactly that plan (`--target <new generation> --no-deps`).
3. Verify in a fresh interpreter that numpy is still QGIS's, `osgeo.gdal_array` imports and the new
   packages import; only then switch the `current` pointer. Any failure or cancel deletes the new
   generation and leaves the one in use untouched.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import queue
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Literal, get_args

from ..dependencies import command_line, python_executable
from ..errors import Cancelled, GapfillError
from ..progress import CancelledFn, ProgressFn, never_cancelled, no_progress
from .dependency_folder import (
    GENERATION_PREFIX,
    MANIFEST,
    POINTER,
    current_folder,
    generations,
    read_manifest,
)
from .nvidia import driver_cuda_version

Build = Literal["auto", "cpu", "gpu"]
BUILDS: tuple[str, ...] = get_args(Build)
LogFn = Callable[[str], None]

# Packages QGIS's Python commonly ships (OSGeo4W, QGIS.app, Linux distributions). Those installed
# are pinned to their installed version: many are compiled against numpy or Qt.
SHIPPED = (
    "numpy",
    "scipy",
    "pandas",
    "matplotlib",
    "shapely",
    "pyproj",
    "GDAL",
    "h5py",
    "netCDF4",
    "Pillow",
    "PyQt5",
    "PyQt5-sip",
)
MIN_PIP = (22, 2)  # pip install --dry-run --report
IMPORT_NAMES = {
    "onnxruntime": "onnxruntime",
    "onnxruntime-gpu": "onnxruntime",
    "torch": "torch",
    "onnx": "onnx",
    "pyyaml": "yaml",
    "ukis-csmask": "ukis_csmask",
    "s2cloudless": "s2cloudless",
}
# What training needs beside torch: onnx (export) and PyYAML (its configuration files). onnx
# 1.18 and later are built against numpy 2; 1.17.0 is the last one for QGIS's numpy 1.
TRAINING_EXTRAS = {1: ("onnx==1.17.0", "pyyaml"), None: ("onnx", "pyyaml")}
CUDA_TORCH_PACKAGES = ("nvidia-", "triton")  # what PyPI's CUDA build of torch pulls in
# The cloud detectors of Build gap mask, at the versions measured in BENCHMARKS.md. ukis-csmask
# runs on the onnxruntime installed beside it; s2cloudless brings LightGBM, OpenCV and
# sentinelhub.
MASK_PACKAGES = ("ukis-csmask==1.0.0", "s2cloudless==1.7.3")
DASK_PACKAGE = "distributed==2026.8.0"  # as requirements.txt; it brings dask of its version
TORCH_INDEX = "https://download.pytorch.org/whl/"
# PyTorch's CUDA wheel indexes for Windows, newest first: (driver CUDA needed, index name).
TORCH_CUDA_INDEXES = (
    ((13, 0), "cu130"),
    ((12, 6), "cu126"),
    ((12, 4), "cu124"),
    ((11, 8), "cu118"),
)
PIP_FLAGS = ("--disable-pip-version-check", "--no-input", "--progress-bar", "off")
PLAN_PLACEHOLDER = "<the packages the resolution reports>"

# Both scripts run with `python -c`: the working directory is dropped from sys.path first.
PROBE = """
import sys
del sys.path[0]
import importlib.metadata, json, platform
shipped = {}
for name in json.loads(sys.argv[1]):
    try:
        shipped[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        pass
try:
    import pip
    pip_version = pip.__version__
except ImportError:
    pip_version = None
try:
    from osgeo import gdal_array
    gdal_array_ok = True
except Exception:
    gdal_array_ok = False
print(json.dumps({"version": platform.python_version(), "pip": pip_version,
                  "gdal_array": gdal_array_ok, "shipped": shipped}))
"""

VERIFY = """
import sys
del sys.path[0]
import importlib, json
import numpy
if sys.argv[2] == "1":
    from osgeo import gdal_array
for name in json.loads(sys.argv[1]):
    importlib.import_module(name)
print(json.dumps({"numpy": numpy.__version__, "numpy_file": numpy.__file__}))
"""


class DependencyInstallError(GapfillError):
    """The install was refused or failed; the dependency folder in use is unchanged."""


@dataclass(frozen=True)
class PythonInfo:
    """What the Python that QGIS runs has: its version, pip, and the shipped packages."""

    executable: str
    version: str
    pip: str | None
    gdal_array: bool
    shipped: dict[str, str]


@dataclass(frozen=True)
class Choice:
    """What to ask pip for on this machine; `cpu_only`: no CUDA build may come in (a CPU
    build was asked for, or the automatic choice found no usable NVIDIA driver)."""

    requirements: list[str]
    pip_options: list[str] = field(default_factory=list)
    constraints: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    cpu_only: bool = False


@dataclass(frozen=True)
class InstallResult:
    """`folder`: the generation in use afterwards (None: none); `installed`: name → version."""

    folder: Path | None
    installed: dict[str, str]
    commands: list[str]
    notes: list[str]


def no_log(_message: str) -> None:
    """Default log callback: ignore."""


def canonical(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def subprocess_environment(root: Path) -> dict[str, str]:
    """This process's environment, less the plugin's dependency folder on PYTHONPATH."""
    environment = dict(os.environ, PYTHONIOENCODING="utf-8", PYTHONUNBUFFERED="1")
    resolved_root = root.resolve()
    kept = [
        entry
        for entry in environment.get("PYTHONPATH", "").split(os.pathsep)
        if entry and resolved_root not in Path(entry).resolve().parents
    ]
    environment["PYTHONPATH"] = os.pathsep.join(kept)
    return environment


def pip_fix() -> str:
    """How to get pip for QGIS's Python on this system."""
    system = platform.system()
    if system == "Windows":
        return (
            "Run the OSGeo4W installer (Advanced install) and add the package 'python3-pip', or "
            "run '<python> -m ensurepip' from the OSGeo4W Shell."
        )
    if system == "Darwin":
        return "Run '<python> -m ensurepip --upgrade' in a terminal."
    return (
        "Install pip for the system Python: 'sudo apt install python3-pip' on Debian and "
        "Ubuntu, 'sudo dnf install python3-pip' on Fedora."
    )


def probe_python(python: str, root: Path) -> PythonInfo:
    """Ask `python` for its version, its pip and the versions of the shipped packages."""
    try:
        completed = subprocess.run(
            [python, "-c", PROBE, json.dumps(SHIPPED)],
            capture_output=True,
            text=True,
            timeout=120,
            env=subprocess_environment(root),
            cwd=tempfile.gettempdir(),
            creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
        )
    except (OSError, subprocess.SubprocessError) as error:
        raise DependencyInstallError(f"Cannot run the Python '{python}': {error}.") from error
    if completed.returncode != 0:
        raise DependencyInstallError(
            f"The Python '{python}' fails to start: {completed.stderr.strip()[-2000:]}"
        )
    found = json.loads(completed.stdout.strip().splitlines()[-1])
    return PythonInfo(python, found["version"], found["pip"], found["gdal_array"], found["shipped"])


def check_python(info: PythonInfo) -> None:
    """Refuse a Python of another version than this process's, or one without a usable pip."""
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if ".".join(info.version.split(".")[:2]) != running:
        raise DependencyInstallError(
            f"The Python found at '{info.executable}' is {info.version}, but QGIS runs Python "
            f"{running}: packages installed with it would not load in QGIS."
        )
    fix = pip_fix().replace("<python>", info.executable)
    if info.pip is None:
        raise DependencyInstallError(
            f"The Python that QGIS runs ({info.executable}) has no pip. {fix}"
        )
    if version_tuple(info.pip) < MIN_PIP:
        upgrade = [info.executable, "-m", "pip", "install", "--user", "--upgrade", "pip"]
        raise DependencyInstallError(
            f"pip {info.pip} of {info.executable} is too old: Gapfill needs pip "
            f"{'.'.join(map(str, MIN_PIP))} or newer to check what an install would change "
            f"before changing anything. Upgrade it with: {command_line(upgrade)}"
        )


def split_arguments(text: str) -> list[str]:
    """Words typed by the user ('' → []), quoted as in this system's shell."""
    try:
        if os.name == "nt":  # keep backslashes in Windows paths
            return [word.strip('"') for word in shlex.split(text, posix=False)]
        return shlex.split(text)
    except ValueError as error:  # e.g. an unbalanced quote
        raise GapfillError(
            f"'{text}' cannot be read as a list of words ({error}): close every quote, or "
            "leave the quotes out (e.g. onnxruntime==1.31.1 torch)."
        ) from error


def version_tuple(version: str) -> tuple[int, ...]:
    """The leading numbers of a version string: '23.0.1' → (23, 0, 1)."""
    numbers = re.match(r"\d+(\.\d+)*", version)
    return tuple(int(part) for part in numbers.group(0).split(".")) if numbers else ()


def choose_packages(
    build: Build,
    training: bool,
    system: str,
    cuda: tuple[int, int] | None,
    numpy_version: str | None = None,
    masks: bool = False,
    distributed: bool = False,
) -> Choice:
    """onnxruntime's CPU or GPU build; when training is asked for torch, onnx and PyYAML (onnx
    at a version built for the major version of QGIS's numpy, `numpy_version`); the cloud
    detectors (ukis-csmask, s2cloudless) when masks are; Dask distributed (Fill many scenes)
    when `distributed`; for this machine.

    The GPU builds come with NVIDIA's CUDA and cuDNN pip packages (no system CUDA needed), limited
    by a constraint to the CUDA major versions the driver (`cuda`) runs.
    """
    if build not in BUILDS:
        raise DependencyInstallError(f"Unknown build '{build}': use one of {', '.join(BUILDS)}.")
    gpu_platform = system in ("Linux", "Windows")
    if build == "gpu" and not gpu_platform:
        raise DependencyInstallError(
            f"ONNX Runtime's CUDA build exists for Linux and Windows only, not for {system}."
        )
    notes = []
    use_gpu = build == "gpu" or (build == "auto" and gpu_platform and cuda is not None)
    if use_gpu and cuda is not None and cuda[0] < 12:
        if build == "auto":
            use_gpu = False
        notes.append(
            f"The NVIDIA driver runs CUDA up to {cuda[0]}.{cuda[1]}, and the GPU builds need "
            "CUDA 12 or newer: update the NVIDIA driver to use the GPU."
        )
    elif build == "auto" and gpu_platform and cuda is None:
        notes.append("No NVIDIA driver found: installing the CPU build of ONNX Runtime.")
    if build == "gpu" and cuda is None:
        notes.append(
            "No NVIDIA driver found: the GPU build is installed as asked, but it can only run "
            "on the CPU until an NVIDIA driver is installed."
        )
    constraints = [f"nvidia-cuda-runtime<{cuda[0] + 1}"] if use_gpu and cuda else []
    requirements = ["onnxruntime-gpu[cuda,cudnn]" if use_gpu else "onnxruntime"]
    if masks:
        requirements += MASK_PACKAGES
        if system == "Darwin":
            notes.append(
                "s2cloudless runs LightGBM, which needs the OpenMP runtime on macOS: "
                "'brew install libomp' if it does not import."
            )
    options: list[str] = []
    if training:
        numpy_major = int(numpy_version.split(".")[0]) if numpy_version else None
        requirements += ["torch", *TRAINING_EXTRAS.get(numpy_major, TRAINING_EXTRAS[None])]
        if gpu_platform and not use_gpu:
            options = ["--extra-index-url", TORCH_INDEX + "cpu"]
        elif system == "Windows" and cuda is not None:  # PyPI has CPU-only torch for Windows
            index = next((name for needed, name in TORCH_CUDA_INDEXES if cuda >= needed), "cpu")
            options = ["--extra-index-url", TORCH_INDEX + index]
    if distributed:
        requirements.append(DASK_PACKAGE)
    return Choice(requirements, options, constraints, notes, cpu_only=not use_gpu)


def requirement_name(requirement: str) -> str:
    """The distribution a pip requirement names: 'onnx==1.17.0' → 'onnx'."""
    return canonical(re.split(r"[\s\[<>=!~;@]", requirement.strip(), maxsplit=1)[0])


def added_to(
    previous: dict[str, Any], requirements: Sequence[str]
) -> tuple[list[str], list[str]]:
    """The requirements of an install that adds `requirements` to the generation in use
    (its manifest `previous`): what it asked for, each at the version it installed, unless
    named again; and the pip options it was installed with."""
    asked = {requirement_name(item) for item in requirements}
    versions = previous.get("installed", {})
    installed = {canonical(name): version for name, version in versions.items()}
    kept = []
    for item in previous.get("requirements", []):
        name = requirement_name(item)
        if name in asked:
            continue
        extras = re.search(r"\[[^\]]*\]", item)
        pin = f"=={installed[name]}" if name in installed else ""
        kept.append(name + (extras.group(0) if extras else "") + pin)
    return [*kept, *requirements], list(previous.get("pip_options", []))


def refuse_cuda_torch(plan: dict[str, str], options: Sequence[str]) -> None:
    """Refuse a plan that brings a CUDA build of torch when a CPU build was asked for."""
    cuda = sorted(name for name in plan if canonical(name).startswith(CUDA_TORCH_PACKAGES))
    torch = next((version for name, version in plan.items() if canonical(name) == "torch"), None)
    if torch is None or not (cuda or "+cu" in torch):
        return
    index = TORCH_INDEX + "cpu"
    reached = index in " ".join(options)
    raise DependencyInstallError(
        f"Refused: pip resolved torch {torch} with {len(cuda)} NVIDIA CUDA packages "
        f"({', '.join(cuda[:4])}{', …' if len(cuda) > 4 else ''}; several GB), a CUDA build, "
        "although a CPU build was asked for (or no usable NVIDIA driver was found). "
        + (
            f"The PyTorch CPU index {index} was given but pip took PyPI's CUDA build: it was "
            "probably not reachable. "
            if reached
            else ""
        )
        + "Nothing was changed. Fix: make the CPU index reachable and put it first (Extra pip "
        f"options: '--index-url {index} --extra-index-url https://pypi.org/simple'), or "
        "install from a CPU wheel of torch downloaded elsewhere (https://download.pytorch.org"
        "/whl/cpu/torch/, a file named torch-<version>+cpu-…whl, with the other packages' "
        "wheels; Extra pip options: '--no-index --find-links /folder/of/wheels')."
    )


def constraints_text(info: PythonInfo, extra: Sequence[str]) -> str:
    """The constraints file: the shipped packages exactly as installed, then `extra`."""
    lines = [
        "# Written by Gapfill: the packages of QGIS's Python stay exactly as they are.",
        *(f"{name}=={version}" for name, version in sorted(info.shipped.items())),
        *extra,
    ]
    return "\n".join(lines) + "\n"


def resolve_command(
    info: PythonInfo,
    constraints: Path,
    report: Path,
    options: Sequence[str],
    requirements: Sequence[str],
) -> list[str]:
    """pip's dry run against QGIS's Python: installs nothing, writes what it would add."""
    return [
        info.executable, "-m", "pip", "install", *PIP_FLAGS,
        "--dry-run", "--report", str(report),
        "--upgrade", "--upgrade-strategy", "only-if-needed",
        "--constraint", str(constraints), *options, *requirements,
    ]  # fmt: skip


def install_command(
    info: PythonInfo, folder: Path, options: Sequence[str], pinned: Sequence[str]
) -> list[str]:
    """pip installing exactly the resolved plan into a generation folder."""
    return [
        info.executable, "-m", "pip", "install", *PIP_FLAGS,
        "--target", str(folder), "--no-deps", *options, *pinned,
    ]  # fmt: skip


def read_plan(report: Path) -> dict[str, str]:
    """name → version of what pip's report says it would install."""
    document = json.loads(report.read_text(encoding="utf-8"))
    return {item["metadata"]["name"]: item["metadata"]["version"] for item in document["install"]}


def refuse_shipped(plan: dict[str, str], shipped: dict[str, str]) -> None:
    """Refuse a plan that would put another version of a shipped package first on sys.path."""
    installed = {canonical(name): version for name, version in shipped.items()}
    for name, version in plan.items():
        current = installed.get(canonical(name))
        if current is None:
            continue
        if canonical(name) == "numpy" and version.split(".")[0] != current.split(".")[0]:
            raise DependencyInstallError(
                f"Refused: this install would replace QGIS's numpy {current} by numpy {version}, "
                "another major version, which breaks GDAL's Python bindings and every compiled "
                "package QGIS ships. Nothing was changed."
            )
        raise DependencyInstallError(
            f"Refused: this install would shadow {name} {current}, which QGIS's Python ships, "
            f"with {name} {version}. Nothing was changed."
        )


def resolution_failure(lines: Sequence[str], info: PythonInfo) -> str:
    """Why pip's dry run failed, and what Gapfill keeps fixed when its constraints are the cause."""
    message = (
        "pip cannot satisfy the request, so nothing was changed (the dependency folder in use, "
        "if any, stays as it is)."
    )
    if any("(constraint)" in line for line in lines):
        kept = ", ".join(f"{name} {version}" for name, version in sorted(info.shipped.items()))
        message += (
            " The request conflicts with the packages of QGIS's Python, which Gapfill keeps "
            f"exactly as they are ({kept}): a numpy of another major version would break GDAL's "
            "Python bindings."
        )
    return message + "\npip said:\n" + "\n".join(lines[-25:])


def _pump(stream: IO[str], lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def run_pip(
    arguments: list[str],
    environment: dict[str, str],
    log: LogFn,
    cancelled: CancelledFn,
    on_line: Callable[[str], None] = no_log,
) -> tuple[int, list[str]]:
    """Run pip, streaming its output to `log`; on cancel, stop it and raise `Cancelled`."""
    log(command_line(arguments))
    try:
        process = subprocess.Popen(
            arguments,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=environment,
            cwd=tempfile.gettempdir(),
            text=True,
            encoding="utf-8",
            errors="replace",
            creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
        )
    except OSError as error:
        raise DependencyInstallError(f"Cannot run pip ({arguments[0]}): {error}.") from error
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
    output = []
    while True:
        if cancelled():
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            raise Cancelled("pip was stopped")
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            continue
        if line is None:
            break
        output.append(line.rstrip())
        log(output[-1])
        on_line(output[-1])
    return process.wait(), output


def verify(info: PythonInfo, folder: Path, modules: list[str], environment: dict[str, str]) -> None:
    """Import numpy, osgeo.gdal_array and `modules` in QGIS's Python with `folder` first."""
    paths = [str(folder), *filter(None, environment["PYTHONPATH"].split(os.pathsep))]
    completed = subprocess.run(
        [info.executable, "-c", VERIFY, json.dumps(modules), "1" if info.gdal_array else "0"],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(environment, PYTHONPATH=os.pathsep.join(paths)),
        cwd=tempfile.gettempdir(),
        creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
    )
    if completed.returncode != 0:
        raise DependencyInstallError(
            "The new packages do not import in QGIS's Python, so they were not put in use:\n"
            + completed.stderr.strip()[-3000:]
        )
    found = json.loads(completed.stdout.strip().splitlines()[-1])
    numpy_file = Path(found["numpy_file"]).resolve()
    if folder.resolve() in numpy_file.parents or found["numpy"] != info.shipped.get("numpy"):
        raise DependencyInstallError(
            f"Refused: with the new packages QGIS's Python would load numpy {found['numpy']} "
            f"from {numpy_file} instead of its own {info.shipped.get('numpy')}."
        )


def switch(root: Path, folder: Path) -> None:
    """Point `current` at `folder` atomically."""
    pointer = root / POINTER
    temporary = pointer.with_name(POINTER + ".partial")
    temporary.write_text(folder.name, encoding="utf-8")
    os.replace(temporary, pointer)


def remove_old_generations(root: Path, keep: Sequence[Path]) -> list[Path]:
    """Delete generations other than `keep` and those this process uses; returns leftovers."""
    in_use = {Path(entry).resolve() for entry in sys.path if entry}
    kept = {path.resolve() for path in keep}
    leftovers = []
    for folder in generations(root):
        if folder.resolve() in kept or folder.resolve() in in_use:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        if folder.exists():  # files still loaded by a running program (Windows)
            leftovers.append(folder)
    return leftovers


def check_requirements(requirements: Sequence[str]) -> None:
    """Refuse, before pip runs, what is not a requirement: a pip option (it belongs to the pip
    options) or a malformed name, which pip would report deep inside its output. Paths, URLs
    and archives (a local torch wheel) are pip's to judge."""
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:  # a Python without packaging: pip judges
        return
    for text in requirements:
        if text.startswith("-"):
            raise GapfillError(
                f"'{text}' is a pip option, not a package: give it in the pip options, and "
                "only packages (e.g. onnx==1.17.0) in the requirements."
            )
        if "/" in text or "\\" in text or text.endswith((".whl", ".tar.gz", ".zip")):
            continue
        try:
            Requirement(text)
        except InvalidRequirement as error:
            raise GapfillError(
                f"'{text}' is not a package requirement ({error}). Write one per package in "
                "pip syntax, e.g. 'onnx==1.17.0 dask[distributed]>=2024.1'."
            ) from error


def install_dependencies(
    root: Path,
    *,
    build: Build = "auto",
    training: bool = False,
    masks: bool = False,
    distributed: bool = False,
    requirements: Sequence[str] | None = None,
    replace: bool = False,
    pip_options: Sequence[str] = (),
    python: str | None = None,
    dry_run: bool = False,
    log: LogFn = no_log,
    progress: ProgressFn = no_progress,
    cancelled: CancelledFn = never_cancelled,
) -> InstallResult:
    """Install the packages Gapfill needs into a new generation of `root` and switch to it.

    `requirements` replaces the automatic choice (onnxruntime's build for this machine; torch,
    onnx and PyYAML when `training`; ukis-csmask and s2cloudless when `masks`; Dask distributed
    when `distributed`) and is added to
    what the generation in use holds (each package it asked for, at the version it installed),
    unless `replace`; `pip_options` are added to every pip call (an index, `--find-links`,
    `--no-index`, a proxy). When a CPU build is asked for (or no NVIDIA driver is found), a plan
    bringing a CUDA build of torch is refused. `python` defaults to the Python that QGIS runs. A
    dry run logs the constraints and the commands, and writes nothing. This process's `sys.path`
    is not touched: `dependency_folder.activate` does that.
    """
    root = Path(root)
    check_requirements(requirements or [])
    info = probe_python(python or python_executable(), root)
    choice = choose_packages(
        build,
        training,
        platform.system(),
        driver_cuda_version(),
        info.shipped.get("numpy"),
        masks,
        distributed,
    )
    if requirements:
        requirements, kept_options = list(requirements), []
        previous = current_folder(root)
        if previous is not None and not replace:
            requirements, kept_options = added_to(read_manifest(previous), requirements)
            log(
                f"Adding to what {previous.name} holds (replace it instead with 'Replace what "
                f"is installed'): {' '.join(requirements)}"
            )
        choice = dataclasses.replace(
            choice, requirements=requirements, pip_options=kept_options, notes=[]
        )
    for note in choice.notes:
        log(note)
    options = list(dict.fromkeys([*choice.pip_options, *pip_options]))
    constraints, report = root / "constraints.txt", root / "plan.json"
    pins = constraints_text(info, choice.constraints)
    resolve = resolve_command(info, constraints, report, options, choice.requirements)
    if dry_run:
        folder = root / f"{GENERATION_PREFIX}…"
        template = install_command(info, folder, options, [PLAN_PLACEHOLDER])
        commands = [command_line(resolve), command_line(template)]
        try:
            check_python(info)
        except DependencyInstallError as error:
            log(f"Warning: {error}")
        log(f"Constraints file {constraints} (written by a real install):\n{pins}")
        log("Dry run: nothing installed. The install would run:\n" + "\n".join(commands))
        return InstallResult(current_folder(root), {}, commands, choice.notes)
    check_python(info)
    root.mkdir(parents=True, exist_ok=True)
    constraints.write_text(pins, encoding="utf-8")
    environment = subprocess_environment(root)
    progress(0.02)
    report.unlink(missing_ok=True)
    code, lines = run_pip(resolve, environment, log, cancelled)
    if code != 0 or not report.is_file():
        raise DependencyInstallError(resolution_failure(lines, info))
    plan = read_plan(report)
    refuse_shipped(plan, info.shipped)
    if choice.cpu_only:
        refuse_cuda_torch(plan, options)
    if not plan:
        log("QGIS's Python already has every package asked for: nothing to install.")
        return InstallResult(current_folder(root), {}, [command_line(resolve)], choice.notes)
    progress(0.3)
    previous = current_folder(root)
    manifest = {
        "installed": plan,
        "requirements": choice.requirements,
        "pip_options": choice.pip_options,
        "python": info.executable,
        "python_version": info.version,
        "kept": info.shipped,
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    folder = install_plan(info, root, manifest, options, environment, log, progress, cancelled)
    switch(root, folder)
    for leftover in remove_old_generations(root, [folder, *([previous] if previous else [])]):
        log(f"{leftover} is still in use by a running program; the next install deletes it.")
    progress(1.0)
    log(f"Installed into {folder}: " + ", ".join(f"{n} {v}" for n, v in sorted(plan.items())))
    pinned = [f"{name}=={version}" for name, version in sorted(plan.items())]
    commands = [command_line(resolve), command_line(install_command(info, folder, options, pinned))]
    return InstallResult(folder, plan, commands, choice.notes)


def install_plan(
    info: PythonInfo,
    root: Path,
    manifest: dict[str, Any],
    options: Sequence[str],
    environment: dict[str, str],
    log: LogFn,
    progress: ProgressFn,
    cancelled: CancelledFn,
) -> Path:
    """Install the manifest's plan into a new generation folder, verify it and write the
    manifest there; on any failure or cancel, delete the folder."""
    plan = manifest["installed"]
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-")
    folder = Path(tempfile.mkdtemp(prefix=GENERATION_PREFIX + stamp, dir=root))
    pinned = [f"{name}=={version}" for name, version in sorted(plan.items())]
    started: list[str] = []

    def on_line(line: str) -> None:
        if line.startswith(("Collecting ", "Processing ")):
            started.append(line)
            progress(0.3 + 0.55 * min(len(started), len(plan)) / len(plan))

    try:
        command = install_command(info, folder, options, pinned)
        code, lines = run_pip(command, environment, log, cancelled, on_line)
        if code != 0:
            raise DependencyInstallError(
                "pip failed while installing, so nothing was changed (the dependency folder in "
                "use, if any, stays as it is). pip said:\n" + "\n".join(lines[-25:])
            )
        progress(0.9)
        names = {canonical(name) for name in plan}
        modules = sorted({IMPORT_NAMES[name] for name in names if name in IMPORT_NAMES})
        verify(info, folder, modules, environment)
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder


def remove_dependencies(root: Path) -> tuple[list[Path], list[Path]]:
    """Delete the dependency folder: (removed generations, leftovers still in use by a program).

    The pointer goes first, so what is left is never put on `sys.path` again.
    """
    root = Path(root)
    (root / POINTER).unlink(missing_ok=True)
    removed, leftovers = [], []
    for folder in generations(root):
        shutil.rmtree(folder, ignore_errors=True)
        (leftovers if folder.exists() else removed).append(folder)
    for name in ("constraints.txt", "plan.json"):
        (root / name).unlink(missing_ok=True)
    if root.is_dir() and not any(root.iterdir()):
        root.rmdir()
    return removed, leftovers
