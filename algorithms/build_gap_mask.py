"""Processing algorithm: build a gap mask (1 = gap, 0 = clear, 255 = no data) on the target grid."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBand,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ..core.masks.gap_mask import (
    DEFAULT_SCL_GAPS,
    SCL_CLASSES,
    MaskSettings,
    build_gap_mask,
    check_scl_classes,
    parse_integer_list,
    parse_value_ranges,
)
from .base import GapfillAlgorithm, domain_errors, run_core
from .styles import style_when_loaded

METHODS = [
    ("spectral", "Spectral cloud/shadow score of the target's Sentinel-2 bands"),
    ("scl", "Sentinel-2 Scene Classification (SCL) classes"),
    ("probability", "Cloud probability at or above a threshold"),
    ("values", "Values or ranges of a raster (e.g. a labelled map)"),
    ("nodata", "The target's own no-data"),
]


class BuildGapMask(GapfillAlgorithm):
    INPUT = "INPUT"
    METHOD = "METHOD"
    SOURCE = "SOURCE"
    SOURCE_BAND = "SOURCE_BAND"
    SCL_CLASSES = "SCL_CLASSES"
    THRESHOLD = "THRESHOLD"
    VALUES = "VALUES"
    BAND_NAMES = "BAND_NAMES"
    DILATION = "DILATION"
    OUTPUT = "OUTPUT"
    GAP_FRACTION = "GAP_FRACTION"

    GROUP = "prepare"
    ICON = "mask.svg"

    def name(self) -> str:
        return "buildgapmask"

    def displayName(self) -> str:  # noqa: N802 - QGIS API
        return self.tr("Build gap mask")

    def shortHelpString(self) -> str:  # noqa: N802 - QGIS API
        classes = ", ".join(f"{k} {v}" for k, v in SCL_CLASSES.items())
        return self.tr(
            "Marks the pixels of the target image that must be filled: 1 = gap, 0 = clear, "
            "255 = no data (outside the image or the mask source). The mask is written on the "
            "target's grid; a mask source on another grid is aligned on the fly.\n\n"
            "Methods:\n"
            "• Spectral score: when no mask product exists (e.g. SEN12MS-CR). Clouds are bright, "
            "white and not snow; shadows are dark in NIR/SWIR and blue (the DSen2-CR heuristic). "
            "Needs bands B2, B3, B4, B8, B11 (B1 and B10 used when present); large water bodies "
            "may be flagged as shadow.\n"
            f"• Scene Classification: the listed classes of an SCL layer ({classes}).\n"
            "• Cloud probability: pixels at or above the threshold (e.g. s2cloudless 0–100).\n"
            "• Values or ranges: e.g. '4, 0' or '1-3' of a labelled map.\n"
            "• No-data: the target's own no-data pixels.\n\n"
            "Dilation grows the gaps by N pixels, as cloud edges are soft."
        )

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Target image")))
        self.addParameter(
            QgsProcessingParameterEnum(
                self.METHOD, self.tr("Method"), options=[label for _, label in METHODS],
                defaultValue=0,
            )
        )
        source = QgsProcessingParameterRasterLayer(
            self.SOURCE, self.tr("Mask source (SCL, cloud probability or labelled raster)"),
            optional=True,
        )
        source.setHelp(self.tr("Default: the target image itself."))
        self.addParameter(source)
        self.addParameter(
            QgsProcessingParameterBand(
                self.SOURCE_BAND, self.tr("Band of the mask source"), defaultValue=1,
                parentLayerParameterName=self.SOURCE, optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterString(
                self.SCL_CLASSES, self.tr("Scene Classification classes that are gaps"),
                defaultValue=", ".join(str(c) for c in DEFAULT_SCL_GAPS),
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.THRESHOLD, self.tr("Cloud probability threshold"),
                QgsProcessingParameterNumber.Double, defaultValue=40.0,
            )
        )
        self.addParameter(
            QgsProcessingParameterString(
                self.VALUES, self.tr("Values or ranges that are gaps (e.g. '4, 0' or '1-3')"),
                defaultValue="", optional=True,
            )
        )
        names = QgsProcessingParameterString(
            self.BAND_NAMES, self.tr("Sentinel-2 band names in file order (spectral score)"),
            defaultValue="", optional=True,
        )
        names.setHelp(self.tr(
            "Only when the band descriptions do not name the bands and the band count is not "
            "13 (L1C), 12 (L2A), 10, 6 (B2,B3,B4,B8,B11,B12) or 4. Example: 'B2,B3,B4,B8,B11,B12'."
        ))
        names.setFlags(names.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(names)
        self.addParameter(
            QgsProcessingParameterNumber(
                self.DILATION, self.tr("Dilate gaps by (pixels)"),
                QgsProcessingParameterNumber.Integer, defaultValue=0, minValue=0, maxValue=250,
            )
        )
        self.addParameter(
            QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Gap mask"))
        )
        self.addOutput(
            QgsProcessingOutputNumber(self.GAP_FRACTION, self.tr("Fraction of pixels in gaps"))
        )

    def settings(self, parameters: dict[str, Any], context: QgsProcessingContext) -> MaskSettings:
        method = METHODS[self.parameterAsEnum(parameters, self.METHOD, context)][0]
        settings = MaskSettings(
            method=method,
            band=self.parameterAsInt(parameters, self.SOURCE_BAND, context) or 1,
            band_names=self.parameterAsString(parameters, self.BAND_NAMES, context),
            dilation=self.parameterAsInt(parameters, self.DILATION, context),
            threshold=self.parameterAsDouble(parameters, self.THRESHOLD, context),
        )
        if method == "scl":
            text = self.parameterAsString(parameters, self.SCL_CLASSES, context)
            settings.classes = tuple(check_scl_classes(parse_integer_list(text)))
        if method == "values":
            text = self.parameterAsString(parameters, self.VALUES, context)
            settings.ranges = tuple(parse_value_ranges(text))
        return settings

    def processAlgorithm(  # noqa: N802 - QGIS API
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> dict[str, Any]:
        target = self.raster_path(parameters, self.INPUT, context)
        source = self.raster_path(parameters, self.SOURCE, context)
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        with domain_errors():
            settings = self.settings(parameters, context)
        report = run_core(
            build_gap_mask, feedback, target, output, settings, source_path=source
        )
        feedback.pushInfo(
            f"{report.gaps} gap pixels ({100 * report.gap_fraction:.1f} % of the pixels with "
            f"data), {report.outside} pixels without data."
        )
        style_when_loaded(context, output, "gap_mask")  # gap, clear, no data: a legend
        return {self.OUTPUT: output, self.GAP_FRACTION: report.gap_fraction}
