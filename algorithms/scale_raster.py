"""Processing algorithm: scale a raster into network values (float32), recording the scaling."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from ..core.learned.model_card import ROLES, describe_scaling
from ..core.prepare.raster_scaling import PRESETS, STATISTICS_METHODS, choose_scaling, scale_raster
from .base import GapfillAlgorithm, domain_errors, run_core

METHOD_LABELS = {
    "minmax": "Minimum–maximum → 0…1",
    "percentile": "Percentile clip (low–high) → 0…1",
    "standardise": "Mean / standard deviation (standardise)",
}


def static_enum(name: str, label: str, options: dict[str, str], **kwargs: Any):
    """An enum whose values are the option keys (readable in models and qgis_process)."""
    parameter = QgsProcessingParameterEnum(name, label, options=list(options.values()), **kwargs)
    parameter.setUsesStaticStrings(True)
    parameter.setOptions(list(options))
    return parameter


class ScaleRaster(GapfillAlgorithm):
    INPUT = "INPUT"
    STATISTICS = "STATISTICS"
    METHOD = "METHOD"
    LOW = "LOW_PERCENTILE"
    HIGH = "HIGH_PERCENTILE"
    PRESET = "PRESET"
    MODEL = "MODEL"
    ROLE = "ROLE"
    OUTPUT = "OUTPUT"

    GROUP = "prepare"

    def name(self) -> str:
        return "scaleraster"

    def displayName(self) -> str:  # noqa: N802 - QGIS API
        return self.tr("Scale raster")

    def shortHelpString(self) -> str:  # noqa: N802 - QGIS API
        presets = "\n".join(f"• {key}: {label}" for key, label in PRESETS.items())
        return self.tr(
            "Scales a raster into the values a network sees (float32, no-data = NaN), from one "
            "of:\n"
            "• a statistics file of 'Raster statistics': min–max or a percentile clip to "
            "[0, 1], or mean/std standardisation;\n"
            "• a preset:\n" + presets + "\n"
            "• a model (ONNX with a Gapfill card): the scaling and bands of one of its input "
            "roles, to see exactly what the model sees.\n\n"
            "The output records the scaling in its metadata: 'Unscale raster' restores the "
            "original values and data type (values clipped by the scaling come back as the "
            "clip bound), and 'Extract patches' writes it to the dataset's manifest."
        )

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Raster")))
        self.addParameter(
            QgsProcessingParameterFile(
                self.STATISTICS, self.tr("Statistics file (from 'Raster statistics')"),
                extension="json", optional=True,
            )
        )
        self.addParameter(
            static_enum(
                self.METHOD, self.tr("Scaling from the statistics"),
                {key: self.tr(METHOD_LABELS[key]) for key in STATISTICS_METHODS},
                defaultValue="percentile",
            )
        )
        for key, label, default in ((self.LOW, "Low percentile", 2.0),
                                    (self.HIGH, "High percentile", 98.0)):
            parameter = QgsProcessingParameterNumber(
                key, self.tr(label), QgsProcessingParameterNumber.Double, defaultValue=default,
                minValue=0.0, maxValue=100.0,
            )
            self.add_advanced(parameter)
        self.addParameter(
            static_enum(
                self.PRESET, self.tr("Or a preset"),
                {key: self.tr(label) for key, label in PRESETS.items()}, optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterFile(
                self.MODEL, self.tr("Or a model (ONNX with a Gapfill card)"), extension="onnx",
                optional=True,
            )
        )
        self.addParameter(
            static_enum(
                self.ROLE, self.tr("Input role of the model"), {role: role for role in ROLES},
                defaultValue="target",
            )
        )
        self.addParameter(
            QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Scaled raster"))
        )

    def enum_string(
        self, parameters: dict[str, Any], name: str, context: QgsProcessingContext
    ) -> str | None:
        """An enum's key, given as the key or as its number (what `qgis_process help` offers);
        an unknown key given by a script is passed on, so that the engine's message names it
        and lists the known ones (QGIS would silently drop it)."""
        given = parameters.get(name)
        options = self.parameterDefinition(name).options()
        if isinstance(given, int | str) and str(given).isdigit() and int(given) < len(options):
            return options[int(given)]
        value = self.parameterAsEnumString(parameters, name, context)
        return value or (given if isinstance(given, str) and given else None)

    def processAlgorithm(  # noqa: N802 - QGIS API
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> dict[str, Any]:
        source = self.raster_path(parameters, self.INPUT, context)
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        with domain_errors():
            choice = choose_scaling(
                source,
                statistics=self.parameterAsFile(parameters, self.STATISTICS, context) or None,
                method=self.enum_string(parameters, self.METHOD, context),
                low=self.parameterAsDouble(parameters, self.LOW, context),
                high=self.parameterAsDouble(parameters, self.HIGH, context),
                preset=self.enum_string(parameters, self.PRESET, context),
                model=self.parameterAsFile(parameters, self.MODEL, context) or None,
                role=self.enum_string(parameters, self.ROLE, context),
                log=feedback.pushInfo,
            )
        recorded = run_core(
            scale_raster, feedback, source, output, choice.scaling, bands=choice.bands,
            names=choice.names, method=choice.method,
        )
        feedback.pushInfo(f"Scaling: {recorded.method}")
        for name, scaling in zip(recorded.names, recorded.scaling, strict=True):
            feedback.pushInfo(f"  {name}: {describe_scaling(scaling)}")
        return {self.OUTPUT: output}
