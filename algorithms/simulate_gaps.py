"""Processing algorithm: lay a real gap mask on a clear image to make gaps whose truth is known."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBand,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ..core.evaluate.simulate_gaps import (
    CLOUD_DN,
    DEFAULT_GAP_VALUES,
    FLIPS,
    MODES,
    MaskLayout,
    simulate_gap_files,
)
from ..core.masks.gap_mask import MaskSettings, parse_value_ranges
from .base import GapfillAlgorithm, domain_errors, run_core

FLIP_LABELS = ["No flip", "Flip left-right", "Flip up-down", "Flip both ways"]
MODE_LABELS = ["Set gap pixels to no-data", "Brighten gap pixels like a cloud"]


class SimulateGaps(GapfillAlgorithm):
    INPUT = "INPUT"
    GAP_SOURCE = "GAP_SOURCE"
    GAP_BAND = "GAP_BAND"
    GAP_VALUES = "GAP_VALUES"
    SHIFT_X = "SHIFT_X"
    SHIFT_Y = "SHIFT_Y"
    FLIP = "FLIP"
    TILE = "TILE"
    MODE = "MODE"
    CLOUD_VALUE = "CLOUD_VALUE"
    EDGE = "EDGE"
    OUTPUT = "OUTPUT"
    GAP_MASK = "GAP_MASK"
    EVALUATION_MASK = "EVALUATION_MASK"
    GAP_PIXELS = "GAP_PIXELS"
    EVALUATION_PIXELS = "EVALUATION_PIXELS"
    EVALUATION_FRACTION = "EVALUATION_FRACTION"

    GROUP = "evaluate"
    ICON = "mask.svg"

    def name(self) -> str:
        return "simulategaps"

    def displayName(self) -> str:  # noqa: N802 - QGIS API
        return self.tr("Simulate gaps")

    def shortHelpString(self) -> str:  # noqa: N802 - QGIS API
        return self.tr(
            "Makes gaps whose true values are known, to measure how well a fill recovers them: "
            "a real gap mask (a cloud mask of another date or another place) is laid on a clear "
            "image and the pixels it covers are removed.\n\n"
            "The mask is used as a pixel pattern, its georeferencing ignored: pick one band of "
            "a multi-date mask, the values that are gaps (default: 1 and above, i.e. 1 = "
            "cloud), and optionally flip it, shift it (wrapping around) and repeat it to cover "
            "an image larger than the mask.\n\n"
            "Outputs, on the clear image's grid: the cloudy input (gap pixels set to no-data, "
            "or brightened like a cloud with soft edges), the gap mask (1 = gap, 0 = clear, "
            "255 = no data in the clear image) for the fills, and the evaluation mask (1 = had "
            "data and was removed) for 'Evaluate fill'."
        )

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:  # noqa: N802
        self.addParameter(
            QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Clear image (the reference)"))
        )
        self.addParameter(
            QgsProcessingParameterRasterLayer(
                self.GAP_SOURCE, self.tr("Real gap mask (e.g. a cloud mask of another date)")
            )
        )
        band = QgsProcessingParameterBand(
            self.GAP_BAND, self.tr("Band of the gap mask (e.g. one date of a multi-date mask)"),
            defaultValue=1, parentLayerParameterName=self.GAP_SOURCE, optional=True,
        )
        self.addParameter(band)
        values = QgsProcessingParameterString(
            self.GAP_VALUES, self.tr("Values or ranges that are gaps (default: 1 and above)"),
            defaultValue="", optional=True,
        )
        values.setHelp(self.tr("E.g. '4, 0' for the cloud and shadow labels of a labelled map."))
        self.addParameter(values)
        for key, label in ((self.SHIFT_X, "Shift right (columns)"),
                           (self.SHIFT_Y, "Shift down (rows)")):
            shift = QgsProcessingParameterNumber(
                key, self.tr(label), QgsProcessingParameterNumber.Integer, defaultValue=0,
            )
            shift.setHelp(self.tr("The mask wraps around: what leaves one side enters the other."))
            self.addParameter(shift)
        self.addParameter(
            QgsProcessingParameterEnum(
                self.FLIP, self.tr("Flip the mask"), options=[self.tr(f) for f in FLIP_LABELS],
                defaultValue=0,
            )
        )
        self.addParameter(
            QgsProcessingParameterBoolean(
                self.TILE, self.tr("Repeat the mask when smaller than the image"),
                defaultValue=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                self.MODE, self.tr("Gap pixels"), options=[self.tr(m) for m in MODE_LABELS],
                defaultValue=0,
            )
        )
        cloud = QgsProcessingParameterNumber(
            self.CLOUD_VALUE, self.tr("Cloud value (brightened mode, as stored)"),
            QgsProcessingParameterNumber.Double, defaultValue=CLOUD_DN,
        )
        cloud.setHelp(self.tr("8000 is a thick cloud in Sentinel-2 DN (reflectance 0.8)."))
        edge = QgsProcessingParameterNumber(
            self.EDGE, self.tr("Soft cloud edge width (brightened mode, pixels)"),
            QgsProcessingParameterNumber.Integer, defaultValue=3, minValue=0, maxValue=100,
        )
        self.add_advanced(cloud, edge)
        for key, label in ((self.OUTPUT, "Cloudy image"), (self.GAP_MASK, "Gap mask"),
                           (self.EVALUATION_MASK, "Evaluation mask")):
            self.addParameter(QgsProcessingParameterRasterDestination(key, self.tr(label)))
        for key, label in ((self.GAP_PIXELS, "Gap pixels"),
                           (self.EVALUATION_PIXELS, "Evaluation pixels (removed clear pixels)"),
                           (self.EVALUATION_FRACTION, "Fraction of the image's data removed")):
            self.addOutput(QgsProcessingOutputNumber(key, self.tr(label)))

    def mask_settings(
        self, parameters: dict[str, Any], context: QgsProcessingContext
    ) -> MaskSettings:
        band = self.parameterAsInt(parameters, self.GAP_BAND, context) or 1
        text = self.parameterAsString(parameters, self.GAP_VALUES, context)
        ranges = tuple(parse_value_ranges(text)) if text.strip() else DEFAULT_GAP_VALUES.ranges
        return MaskSettings(method="values", ranges=ranges, band=band)

    def processAlgorithm(  # noqa: N802 - QGIS API
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> dict[str, Any]:
        clear = self.raster_path(parameters, self.INPUT, context)
        source = self.raster_path(parameters, self.GAP_SOURCE, context)
        outputs = [
            self.parameterAsOutputLayer(parameters, key, context)
            for key in (self.OUTPUT, self.GAP_MASK, self.EVALUATION_MASK)
        ]
        with domain_errors():
            settings = self.mask_settings(parameters, context)
        layout = MaskLayout(
            shift=(
                self.parameterAsInt(parameters, self.SHIFT_X, context),
                self.parameterAsInt(parameters, self.SHIFT_Y, context),
            ),
            flip=FLIPS[self.parameterAsEnum(parameters, self.FLIP, context)],
            tile=self.parameterAsBool(parameters, self.TILE, context),
        )
        report = run_core(
            simulate_gap_files, feedback, clear, source, *outputs,
            settings=settings, layout=layout,
            mode=MODES[self.parameterAsEnum(parameters, self.MODE, context)],
            cloud_value=self.parameterAsDouble(parameters, self.CLOUD_VALUE, context),
            edge=self.parameterAsInt(parameters, self.EDGE, context),
        )
        feedback.pushInfo(
            f"{report.gaps} gap pixels; {report.evaluation} clear pixels removed "
            f"({100 * report.evaluation_fraction:.1f} % of the pixels with data)."
        )
        if report.evaluation == 0:
            feedback.pushWarning(
                "No pixel with data was removed: shift, flip or pick another band of the mask."
            )
        elif report.evaluation_fraction >= 1.0:
            feedback.pushWarning(
                "Every pixel with data was removed: a fill from the image itself has nothing "
                "left to work from (only fills from other dates can fill it). Shift, flip or "
                "tile a mask with clear parts, or pick another band of it."
            )
        return {
            self.OUTPUT: outputs[0],
            self.GAP_MASK: outputs[1],
            self.EVALUATION_MASK: outputs[2],
            self.GAP_PIXELS: report.gaps,
            self.EVALUATION_PIXELS: report.evaluation,
            self.EVALUATION_FRACTION: report.evaluation_fraction,
        }
