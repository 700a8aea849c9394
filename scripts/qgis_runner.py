"""Run Gapfill algorithms in a real `qgis_process` with the plugin found via QGIS_PLUGINPATH.

Shared by `make demo`, the benchmarks and the tests. The plugin folder is reached through a
symbolic link named `gapfill`, and QGIS settings live in a private folder
(QGIS_CUSTOM_CONFIG_PATH), so the user's own QGIS profile is never touched.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PLUGIN = "gapfill"


class QgisProcessError(RuntimeError):
    """qgis_process exited with an error; the message holds what it printed."""


@functools.cache
def executable() -> str:
    """`qgis_process` as users call it, where its wrapper works (Debian 13, QGIS 3.40);
    `qgis_process.bin` where the wrapper passes --noversioncheck, which QGIS 3.22 rejects
    (Debian 12)."""
    wrapper, binary = shutil.which("qgis_process"), shutil.which("qgis_process.bin")
    if wrapper:
        probe = subprocess.run(
            [wrapper, "--version"],
            env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
            capture_output=True,
            timeout=120,
        )
        if probe.returncode == 0 or not binary:
            return wrapper
    if binary:
        return binary
    raise QgisProcessError("qgis_process not found: install QGIS (make deps).")


def system_path() -> str:
    """PATH without an activated virtual environment's bin folder: QGIS's embedded Python
    finds its prefix through PATH and would see that environment's packages."""
    venv = os.environ.get("VIRTUAL_ENV")
    folders = os.environ.get("PATH", "").split(os.pathsep)
    return os.pathsep.join(f for f in folders if not venv or Path(f) != Path(venv) / "bin")


class QgisProcess:
    """A qgis_process set up for this repository's plugin, with an isolated profile."""

    def __init__(
        self,
        workdir: Path | None = None,
        plugin_folder: Path = REPO,
        python_paths: list[str] | None = None,
    ) -> None:
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="gapfill-qgis-"))
        self.plugin_path = self.workdir / "plugins"
        self.plugin_path.mkdir(parents=True, exist_ok=True)
        link = self.plugin_path / PLUGIN
        if not link.exists():
            link.symlink_to(plugin_folder.resolve(), target_is_directory=True)
        self.config = self.workdir / "profile"
        paths = python_paths if python_paths is not None else [sysconfig.get_paths()["purelib"]]
        self.environment = {
            **os.environ,
            "QT_QPA_PLATFORM": "offscreen",
            "QGIS_PLUGINPATH": str(self.plugin_path),
            "QGIS_CUSTOM_CONFIG_PATH": str(self.config),
            "PYTHONPATH": os.pathsep.join(paths),
            "PATH": system_path(),
        }
        self.enable()

    def enable(self) -> None:
        """Enable the plugin once in the private profile (qgis_process refuses to repeat it)."""
        try:
            self.call(["plugins", "enable", PLUGIN])
        except QgisProcessError as error:
            if "already enabled" not in str(error):
                raise

    def call(self, arguments: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [executable(), *arguments],
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise QgisProcessError(
                f"qgis_process {' '.join(arguments[:2])} failed ({result.returncode}):\n"
                f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
            )
        return result

    def list_algorithms(self) -> list[str]:
        lines = self.call(["list"]).stdout.splitlines()
        return [line.split()[0] for line in lines if line.strip().startswith(f"{PLUGIN}:")]

    def run(self, algorithm: str, parameters: dict[str, Any], timeout: float = 600) -> dict:
        """Run an algorithm; returns qgis_process's JSON (inputs, log, results)."""
        arguments = ["--json", "run", algorithm, "--"]
        for key, value in parameters.items():
            for item in value if isinstance(value, list | tuple) else [value]:
                arguments.append(f"{key}={item}")
        return json.loads(self.call(arguments, timeout).stdout)
