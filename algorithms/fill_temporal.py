"""Processing algorithm: fill gaps from images of other dates (classical, no model)."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingParameterEnum,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from ..core.fills.histogram_matched_fill import fill_by_histogram_matching
from ..core.fills.other_dates import open_temporal_inputs
from ..core.fills.temporal_interpolation import fill_by_temporal_interpolation
from .base import (
    GapfillAlgorithm,
    domain_errors,
    fill_outputs,
    fill_results,
    run_core,
    target_parameters,
)

METHODS = [
    ("interpolation", "Temporal linear interpolation (nearest earlier and later clear dates)"),
    ("histogram", "Nearest clear date with local histogram matching"),
]


class FillTemporal(GapfillAlgorithm):
    INPUT = "INPUT"
    GAP_MASK = "GAP_MASK"
    OTHER_DATES = "OTHER_DATES"
    OTHER_MASKS = "OTHER_MASKS"
    METHOD = "METHOD"
    DATES = "DATES"
    WINDOW_RADIUS = "WINDOW_RADIUS"
    MIN_PIXELS = "MIN_PIXELS"
    OUTPUT = "OUTPUT"

    ICON = "fill.svg"

    def name(self) -> str:
        return "filltemporal"

    def displayName(self) -> str:  # noqa: N802 - QGIS API
        return self.tr("Fill gaps from other dates (classical)")

    def shortHelpString(self) -> str:  # noqa: N802 - QGIS API
        return self.tr(
            "Fills the gap pixels of the target image from images of the same place at other "
            "dates. Only gap pixels change; clear pixels are copied exactly; gaps that no date "
            "covers stay no-data.\n\n"
            "• Temporal linear interpolation: per pixel, between the nearest clear earlier and "
            "later dates, weighted by time; where only one side is clear, its value.\n"
            "• Nearest clear date with local histogram matching: the closest clear date, each "
            "band adjusted by a gain and offset that match its local mean and standard "
            "deviation to the target's (moving window on pixels clear in both; USGS SLC-off "
            "gap-fill method). Better when dates differ in illumination or phenology.\n\n"
            "Dates come from the 'Dates' parameter (target first, then the other images in "
            "order) or from each file's metadata, band description or name (e.g. "
            "s2_2018-05-06.tif). Other-date images may have another CRS, resolution or extent: "
            "they are aligned on the fly. Give their gap masks in the same order to exclude "
            "their clouds."
        )

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:  # noqa: N802
        target_parameters(self)
        self.addParameter(
            QgsProcessingParameterMultipleLayers(
                self.OTHER_DATES, self.tr("Images of other dates"), QgsProcessing.TypeRaster
            )
        )
        self.addParameter(
            QgsProcessingParameterMultipleLayers(
                self.OTHER_MASKS,
                self.tr("Gap masks of the other dates (same order; optional)"),
                QgsProcessing.TypeRaster,
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                self.METHOD, self.tr("Method"), options=[label for _, label in METHODS],
                defaultValue=0,
            )
        )
        dates = QgsProcessingParameterString(
            self.DATES,
            self.tr("Dates, target first (optional, e.g. 2018-05-06, 2018-04-26, 2018-05-21)"),
            defaultValue="", optional=True,
        )
        self.addParameter(dates)
        radius = QgsProcessingParameterNumber(
            self.WINDOW_RADIUS, self.tr("Histogram matching window radius (pixels)"),
            QgsProcessingParameterNumber.Integer, defaultValue=15, minValue=1, maxValue=500,
        )
        minimum = QgsProcessingParameterNumber(
            self.MIN_PIXELS, self.tr("Histogram matching: minimum common clear pixels in window"),
            QgsProcessingParameterNumber.Integer, defaultValue=50, minValue=2,
        )
        self.add_advanced(radius, minimum)
        fill_outputs(self)

    def processAlgorithm(  # noqa: N802 - QGIS API
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> dict[str, Any]:
        target_path = self.raster_path(parameters, self.INPUT, context)
        mask_path = self.raster_path(parameters, self.GAP_MASK, context)
        paths = self.raster_paths(parameters, self.OTHER_DATES, context)
        masks = self.raster_paths(parameters, self.OTHER_MASKS, context)
        method = METHODS[self.parameterAsEnum(parameters, self.METHOD, context)][0]
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        with domain_errors():
            target, target_date, others = open_temporal_inputs(
                target_path, mask_path, paths, masks,
                self.parameterAsString(parameters, self.DATES, context),
            )
        feedback.pushInfo(
            f"Target date {target_date}; other dates: "
            f"{', '.join(str(other.date) for other in others)}."
        )
        if method == "interpolation":
            report = run_core(
                fill_by_temporal_interpolation, feedback, target, target_date, others, output
            )
        else:
            report = run_core(
                fill_by_histogram_matching, feedback, target, target_date, others, output,
                radius=self.parameterAsInt(parameters, self.WINDOW_RADIUS, context),
                min_pixels=self.parameterAsInt(parameters, self.MIN_PIXELS, context),
            )
        return fill_results(report, output, feedback)
