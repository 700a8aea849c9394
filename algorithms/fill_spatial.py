"""Processing algorithm: fill gaps spatially by inverse-distance interpolation from their edges."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingParameterNumber,
)

from ..core.fills.spatial_fill import fill_spatially
from ..core.raster.fill_engine import open_target
from .base import (
    GapfillAlgorithm,
    domain_errors,
    fill_outputs,
    fill_results,
    run_core,
    target_parameters,
)


class FillSpatial(GapfillAlgorithm):
    INPUT = "INPUT"
    GAP_MASK = "GAP_MASK"
    MAX_DISTANCE = "MAX_DISTANCE"
    SMOOTHING = "SMOOTHING"
    OUTPUT = "OUTPUT"

    ICON = "fill.svg"

    def name(self) -> str:
        return "fillspatial"

    def displayName(self) -> str:  # noqa: N802 - QGIS API
        return self.tr("Fill gaps spatially (classical)")

    def shortHelpString(self) -> str:  # noqa: N802 - QGIS API
        return self.tr(
            "Fills gap pixels from the clear pixels around them by inverse-distance "
            "interpolation (GDAL FillNodata), band by band: for gaps that no other date or "
            "sensor covers, and for small gaps. Pixels farther than the maximum distance from "
            "any clear pixel stay no-data. Smoothing passes soften the interpolated area. Only "
            "gap pixels change; clear pixels are copied exactly."
        )

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:  # noqa: N802
        target_parameters(self)
        self.addParameter(
            QgsProcessingParameterNumber(
                self.MAX_DISTANCE, self.tr("Maximum search distance (pixels)"),
                QgsProcessingParameterNumber.Integer, defaultValue=100, minValue=1,
                maxValue=2000,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.SMOOTHING, self.tr("Smoothing passes"),
                QgsProcessingParameterNumber.Integer, defaultValue=0, minValue=0, maxValue=20,
            )
        )
        fill_outputs(self)

    def processAlgorithm(  # noqa: N802 - QGIS API
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> dict[str, Any]:
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        with domain_errors():
            target = open_target(
                self.raster_path(parameters, self.INPUT, context),
                self.raster_path(parameters, self.GAP_MASK, context),
            )
        report = run_core(
            fill_spatially, feedback, target, output,
            max_distance=self.parameterAsInt(parameters, self.MAX_DISTANCE, context),
            smoothing=self.parameterAsInt(parameters, self.SMOOTHING, context),
        )
        return fill_results(report, output, feedback)
