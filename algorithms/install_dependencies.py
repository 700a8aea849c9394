"""Processing algorithm: install onnxruntime (torch, the cloud detectors) into Gapfill's folder of
the profile."""

from __future__ import annotations

import sys
from typing import Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterString,
)

from ..core.environment.dependency_folder import activate
from ..core.environment.dependency_installer import (
    BUILDS,
    IMPORT_NAMES,
    install_dependencies,
    split_arguments,
)
from .base import DependencyFolderAlgorithm, domain_errors


class InstallDependencies(DependencyFolderAlgorithm):
    BUILD = "BUILD"
    TRAINING = "TRAINING"
    MASKS = "MASKS"
    DISTRIBUTED = "DISTRIBUTED"
    DRY_RUN = "DRY_RUN"
    PIP_OPTIONS = "PIP_OPTIONS"
    REQUIREMENTS = "REQUIREMENTS"
    REPLACE = "REPLACE"
    FOLDER = "FOLDER"
    INSTALLED = "INSTALLED"
    COMMANDS = "COMMANDS"

    def name(self) -> str:
        return "installdependencies"

    def displayName(self) -> str:  # noqa: N802 - QGIS API
        return self.tr("Install dependencies")

    def shortHelpString(self) -> str:  # noqa: N802 - QGIS API
        return self.tr(
            "Installs what the learned fills (onnxruntime), training (torch, onnx, PyYAML), "
            "the cloud detectors of Build gap mask (ukis-csmask, s2cloudless) and Fill many "
            "scenes (Dask distributed) need into "
            "Gapfill's own folder of your QGIS profile (python/gapfill-deps), never into QGIS's "
            "Python packages, with the pip of the Python that QGIS runs. Automatic build: "
            "onnxruntime-gpu with NVIDIA's CUDA and cuDNN pip packages when an NVIDIA driver is "
            "present (Linux, Windows; large download), the CPU build otherwise. Every package "
            "QGIS's Python ships (numpy first) is pinned to its installed version (onnx 1.17.0 "
            "for QGIS's numpy 1); pip's plan is checked before anything is installed, and the "
            "new packages must import next to GDAL before they are put in use. A failed or "
            "cancelled install leaves the previous one in use. A CPU request (or Automatic "
            "without an NVIDIA driver) never installs a CUDA build of PyTorch: when pip would "
            "(the PyTorch CPU index unreachable), the install is refused with the fix. Dry run: "
            "only prints the pip commands. Restart QGIS afterwards if onnxruntime or torch was "
            "already loaded. 'Remove dependencies' undoes it."
        )

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:  # noqa: N802
        self.addParameter(
            QgsProcessingParameterEnum(
                self.BUILD,
                self.tr("ONNX Runtime build"),
                options=[
                    self.tr("Automatic (GPU build when an NVIDIA driver is present)"),
                    self.tr("CPU"),
                    self.tr("GPU (NVIDIA CUDA)"),
                ],
                defaultValue=0,
            )
        )
        self.addParameter(
            QgsProcessingParameterBoolean(
                self.TRAINING,
                self.tr("Also install what training needs (PyTorch, onnx, PyYAML)"),
                defaultValue=False,
            )
        )
        self.addParameter(
            QgsProcessingParameterBoolean(
                self.MASKS,
                self.tr("Also install the cloud detectors (masks: ukis-csmask, s2cloudless)"),
                defaultValue=False,
            )
        )
        self.addParameter(
            QgsProcessingParameterBoolean(
                self.DISTRIBUTED, self.tr("Also install Dask distributed (Fill many scenes)"),
                defaultValue=False,
            )
        )
        self.addParameter(
            QgsProcessingParameterBoolean(
                self.DRY_RUN, self.tr("Dry run: only print the pip commands"), defaultValue=False
            )
        )
        options = QgsProcessingParameterString(
            self.PIP_OPTIONS, self.tr("Extra pip options"), optional=True
        )
        options.setHelp(
            self.tr(
                "Added to every pip call, e.g. '--index-url https://mirror/simple', "
                "'--proxy http://host:port', or '--no-index --find-links /wheels' offline."
            )
        )
        requirements = QgsProcessingParameterString(
            self.REQUIREMENTS,
            self.tr("Packages instead of the automatic choice (pip syntax)"),
            optional=True,
        )
        requirements.setHelp(
            self.tr(
                "Space-separated, e.g. 'onnxruntime-gpu==1.18.1' for an older CUDA. They are "
                "added to what is installed (each package installed before is kept at its "
                "version), unless 'Replace what is installed' is checked."
            )
        )
        replace = QgsProcessingParameterBoolean(
            self.REPLACE,
            self.tr("Replace what is installed (instead of adding these packages to it)"),
            defaultValue=False,
        )
        self.add_advanced(options, requirements, replace)
        self.addOutput(QgsProcessingOutputString(self.FOLDER, self.tr("Folder in use")))
        self.addOutput(QgsProcessingOutputString(self.INSTALLED, self.tr("Installed packages")))
        self.addOutput(QgsProcessingOutputString(self.COMMANDS, self.tr("pip commands")))

    def processAlgorithm(  # noqa: N802 - QGIS API
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> dict[str, Any]:
        root = self.dependency_root()
        dry_run = self.parameterAsBoolean(parameters, self.DRY_RUN, context)
        with domain_errors():
            result = install_dependencies(
                root,
                build=BUILDS[self.parameterAsEnum(parameters, self.BUILD, context)],
                training=self.parameterAsBoolean(parameters, self.TRAINING, context),
                masks=self.parameterAsBoolean(parameters, self.MASKS, context),
                distributed=self.parameterAsBoolean(parameters, self.DISTRIBUTED, context),
                requirements=split_arguments(
                    self.parameterAsString(parameters, self.REQUIREMENTS, context)
                ),
                replace=self.parameterAsBoolean(parameters, self.REPLACE, context),
                pip_options=split_arguments(
                    self.parameterAsString(parameters, self.PIP_OPTIONS, context)
                ),
                dry_run=dry_run,
                log=feedback.pushInfo,
                progress=lambda fraction: feedback.setProgress(100.0 * fraction),
                cancelled=feedback.isCanceled,
            )
        if not dry_run:
            loaded = sorted(set(IMPORT_NAMES.values()) & set(sys.modules))
            activate(root)
            if loaded and result.installed:
                feedback.pushWarning(
                    f"{', '.join(loaded)} already loaded in this QGIS session: restart QGIS to "
                    "use the new packages."
                )
        installed = ", ".join(f"{name} {version}" for name, version in result.installed.items())
        return {
            self.FOLDER: str(result.folder or ""),
            self.INSTALLED: installed,
            self.COMMANDS: "\n".join(result.commands),
        }
