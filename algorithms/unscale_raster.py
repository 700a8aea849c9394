"""Processing algorithm: undo 'Scale raster', back to the source's values and data type."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from ..core.prepare.raster_scaling import unscale_raster
from .base import GapfillAlgorithm, run_core


class UnscaleRaster(GapfillAlgorithm):
    INPUT = "INPUT"
    OUTPUT = "OUTPUT"

    GROUP = "prepare"

    def name(self) -> str:
        return "unscaleraster"

    def displayName(self) -> str:  # noqa: N802 - QGIS API
        return self.tr("Unscale raster")

    def shortHelpString(self) -> str:  # noqa: N802 - QGIS API
        return self.tr(
            "Inverts the scaling recorded in a raster written by 'Scale raster': values go back "
            "to the source's units and data type, NaN back to the source's no-data. "
            "Integer values come back exactly; values that the scaling clipped come back as the "
            "clip bound."
        )

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:  # noqa: N802
        self.addParameter(
            QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Scaled raster"))
        )
        self.addParameter(
            QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Unscaled raster"))
        )

    def processAlgorithm(  # noqa: N802 - QGIS API
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> dict[str, Any]:
        source = self.raster_path(parameters, self.INPUT, context)
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        recorded = run_core(unscale_raster, feedback, source, output)
        feedback.pushInfo(
            f"Restored {len(recorded.bands)} bands as {recorded.source_dtype} (scaling: "
            f"{recorded.method})."
        )
        return {self.OUTPUT: output}
