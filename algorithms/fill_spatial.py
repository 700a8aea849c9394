"""Processing algorithm: fill gaps spatially from their surroundings (inverse distance, pyramid)."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
)

from ..core.fills.pyramid_fill import fill_by_pyramid
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

METHODS = ("Inverse distance (GDAL FillNodata)", "Pyramid interpolation (pull-push)")
PYRAMID = 1


class FillSpatial(GapfillAlgorithm):
    INPUT = "INPUT"
    GAP_MASK = "GAP_MASK"
    METHOD = "METHOD"
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
            "Fills gap pixels from the clear pixels around them, band by band: for gaps that "
            "no other date or sensor covers, and for small gaps. Methods: pyramid interpolation "
            "(the default: pull-push, the mean of the surroundings at the scale of the gap, "
            "smoothed into the gap's edge, without the wedges and streaks inverse distance draws "
            "in large gaps; better on every real case of BENCHMARKS.md and faster), or "
            "inverse-distance interpolation from the gap edges (GDAL FillNodata; smoothing "
            "passes soften it). Pixels farther than the maximum distance (default 100) from "
            "any clear pixel stay no-data (for the pyramid: the next power of two). Only gap "
            "pixels change; clear pixels are copied exactly."
        )

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:  # noqa: N802
        target_parameters(self)
        self.addParameter(
            QgsProcessingParameterEnum(
                self.METHOD, self.tr("Method (default: pyramid interpolation)"),
                options=[self.tr(m) for m in METHODS], defaultValue=PYRAMID,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.MAX_DISTANCE, self.tr("Maximum search distance (pixels)"),
                QgsProcessingParameterNumber.Integer, defaultValue=100, minValue=1,
                maxValue=2000,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.SMOOTHING, self.tr("Smoothing passes (inverse distance)"),
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
        distance = self.parameterAsInt(parameters, self.MAX_DISTANCE, context)
        if self.parameterAsEnum(parameters, self.METHOD, context) == PYRAMID:
            report = run_core(fill_by_pyramid, feedback, target, output, max_distance=distance)
        else:
            report = run_core(
                fill_spatially, feedback, target, output, max_distance=distance,
                smoothing=self.parameterAsInt(parameters, self.SMOOTHING, context),
            )
        return fill_results(report, output, feedback)
