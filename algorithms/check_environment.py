"""Processing algorithm: what this QGIS can run (classical, ONNX on CPU/GPU, training), fixes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from qgis.core import (
    Qgis,
    QgsApplication,
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterFileDestination,
    QgsProcessingUtils,
)

from ..core.environment.dependency_folder import dependency_root
from ..core.environment.environment_check import check_environment, format_report
from .base import GapfillAlgorithm


class CheckEnvironment(GapfillAlgorithm):
    TRY_CUDA = "TRY_CUDA"
    OUTPUT = "OUTPUT"
    REPORT = "REPORT"

    GROUP = "environment"

    def name(self) -> str:
        return "checkenvironment"

    def displayName(self) -> str:  # noqa: N802 - QGIS API
        return self.tr("Check environment")

    def shortHelpString(self) -> str:  # noqa: N802 - QGIS API
        return self.tr(
            "Reports what this QGIS can run: the QGIS, Python, numpy and GDAL versions; whether "
            "onnxruntime imports, its build and execution providers, and whether a CUDA session "
            "really opens and runs on the GPU; the NVIDIA driver; torch and its CUDA; Gapfill's "
            "dependency folder in your QGIS profile. Then a verdict per feature (classical "
            "fills, ONNX fill on the CPU, on the GPU, training) with the exact fix for what is "
            "missing. The report goes to the log, the REPORT output and a JSON file."
        )

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:  # noqa: N802
        try_cuda = QgsProcessingParameterBoolean(
            self.TRY_CUDA, self.tr("Open a CUDA session to test the GPU"), defaultValue=True
        )
        try_cuda.setFlags(try_cuda.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(try_cuda)
        # optional: qgis_process (3.22) asks for every mandatory destination, even with a
        # default; without one the report goes to a temporary file
        self.addParameter(
            QgsProcessingParameterFileDestination(
                self.OUTPUT,
                self.tr("Report (JSON)"),
                fileFilter="JSON files (*.json)",
                defaultValue=QgsProcessing.TEMPORARY_OUTPUT,
                optional=True,
                createByDefault=True,
            )
        )
        self.addOutput(QgsProcessingOutputString(self.REPORT, self.tr("Report")))

    def processAlgorithm(  # noqa: N802 - QGIS API
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> dict[str, Any]:
        report = check_environment(
            qgis_version=Qgis.version(),
            root=dependency_root(Path(QgsApplication.qgisSettingsDirPath())),
            try_cuda=self.parameterAsBoolean(parameters, self.TRY_CUDA, context),
        )
        text = format_report(report)
        feedback.pushInfo(text)
        output = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        output = output or QgsProcessingUtils.generateTempFilename("environment.json")
        Path(output).write_text(json.dumps(report, indent=2), encoding="utf-8")
        return {self.OUTPUT: output, self.REPORT: text}
