"""Processing algorithm: build a gap mask (1 = gap, 0 = clear, 255 = no data) on the target grid."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterBand,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ..core.learned.onnx_session import DEVICES
from ..core.masks.detectors import CLASSES, LEVELS
from ..core.masks.gap_mask import (
    DEFAULT_SCL_GAPS,
    RECOMMENDED,
    SCL_CLASSES,
    MaskSettings,
    build_gap_mask,
    check_scl_classes,
    parse_integer_list,
    parse_value_ranges,
)
from .base import GapfillAlgorithm, domain_errors, run_core
from .styles import style_when_loaded

# Numbers 0–4 keep their meaning for qgis_process users; new methods are appended.
METHODS = [
    ("spectral", "Spectral cloud/shadow score of the target's Sentinel-2 bands"),
    ("scl", "Sentinel-2 Scene Classification (SCL) classes"),
    ("probability", "Cloud probability at or above a threshold"),
    ("values", "Values or ranges of a raster (e.g. a labelled map)"),
    ("nodata", "The target's own no-data"),
    ("automatic", "Automatic: the best cloud detector installed, else the spectral score"),
    ("ukis", "ukis-csmask (clouds and shadows)"),
    ("s2cloudless", "s2cloudless (cloud probability)"),
]
AUTOMATIC = 5
UKIS_MODELS = [0, 4, 6]


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
    FLAG = "FLAG"
    PRODUCT_LEVEL = "PRODUCT_LEVEL"
    CLOUD_THRESHOLD = "CLOUD_THRESHOLD"
    HAZE_BUFFER = "HAZE_BUFFER"
    RESOLUTION = "RESOLUTION"
    PIXEL_SIZE = "PIXEL_SIZE"
    UKIS_MODEL = "UKIS_MODEL"
    DN_OFFSET = "DN_OFFSET"
    DEVICE = "DEVICE"
    OUTPUT = "OUTPUT"
    GAP_FRACTION = "GAP_FRACTION"
    METHOD_USED = "METHOD_USED"

    GROUP = "prepare"
    ICON = "mask.svg"

    def name(self) -> str:
        return "buildgapmask"

    def displayName(self) -> str:  # noqa: N802 - QGIS API
        return self.tr("Build gap mask")

    def shortHelpString(self) -> str:  # noqa: N802 - QGIS API
        classes = ", ".join(f"{k} {v}" for k, v in SCL_CLASSES.items())
        ukis, s2c = RECOMMENDED["ukis"], RECOMMENDED["s2cloudless"]
        return self.tr(
            "Marks the pixels of the target image that must be filled: 1 = gap, 0 = clear, "
            "255 = no data (outside the image or the mask source). The mask is written on the "
            "target's grid; a mask source on another grid is aligned on the fly.\n\n"
            "Methods (the numbers are those of qgis_process METHOD=…):\n"
            "• 5 Automatic (default): ukis-csmask when it is installed, else s2cloudless "
            "(L1C), else the spectral score; the log says which ran and why.\n"
            "• 6 ukis-csmask (DLR): convolutional networks for Sentinel-2 L1C and L2A that find "
            "clouds and cloud shadows from B2, B3, B4, B8 (and B11, B12 for the better 6-band "
            "model), run at 30 m (the image is averaged to 30 m cells on the fly, the "
            "probabilities are interpolated back to its grid). CUDA when available.\n"
            "• 7 s2cloudless (Sentinel Hub): cloud probability of each pixel from the 10 L1C "
            "bands B1, B2, B4, B5, B8, B8A, B9, B10, B11, B12, at 20 m, averaged over a disk of "
            "4 cells. Clouds only; not for L2A (no B10).\n"
            "• 0 Spectral score: no extra package. Clouds are bright, white and not snow; "
            "shadows are dark in NIR/SWIR and blue (the DSen2-CR heuristic). Needs B2, B3, B4, "
            "B8, B11 (B1 and B10 used when present); misses thin cloud and haze, flags dark "
            "fields and water as shadow.\n"
            f"• 1 Scene Classification: the listed classes of an SCL layer ({classes}).\n"
            "• 2 Cloud probability: pixels at or above the threshold (e.g. s2cloudless 0–100).\n"
            "• 3 Values or ranges: e.g. '4, 0' or '1-3' of a labelled map.\n"
            "• 4 No-data: the target's own no-data pixels.\n\n"
            "The detectors are optional packages: install them with 'Install dependencies' "
            "(option 'Cloud detectors'). Bands are found from the band descriptions, the band "
            "count (13 = L1C, 12 = L2A, 6, 4) or the band names given; the product level from "
            "the metadata, file name or bands.\n\n"
            "Haze: a mask that stops at the bright core of a cloud leaves its hazy rim, which "
            "the fill keeps and then copies from other dates (histogram matching learns from "
            "it, spatial filling starts from it). Measured on 25 SEN12MS-CR cloudy/clear pairs "
            "(BENCHMARKS.md, 'Gap masks'): a lower cloud threshold and a buffer around the "
            "detected clouds and shadows leave about the same haze for the same pixels given "
            "up, but a lower threshold also takes bright ground for cloud (lower precision on "
            "labelled clouds). So by default ukis-csmask flags clouds at probability "
            f"{ukis.threshold:g} with a haze buffer of {ukis.buffer_metres:g} m, s2cloudless at "
            f"{s2c.threshold:g} with {s2c.buffer_metres:g} m: the buffers that leave the least "
            "haze for at most 5 points more of the image flagged; the spectral score gets none "
            "(its speckle makes any buffer cost more). 'Cloud threshold' and 'Haze buffer' "
            "change that (-1 = these defaults); 'Dilate gaps by' adds pixels on top, for every "
            "method."
        )

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Target image")))
        self.addParameter(
            QgsProcessingParameterEnum(
                self.METHOD, self.tr("Method"), options=[label for _, label in METHODS],
                defaultValue=AUTOMATIC,
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
            self.BAND_NAMES,
            self.tr("Sentinel-2 band names in file order (cloud-detecting methods)"),
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
        self.detector_parameters()
        self.addParameter(
            QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Gap mask"))
        )
        self.addOutput(
            QgsProcessingOutputNumber(self.GAP_FRACTION, self.tr("Fraction of pixels in gaps"))
        )
        self.addOutput(QgsProcessingOutputString(self.METHOD_USED, self.tr("Method that ran")))

    def detector_parameters(self) -> None:
        """What the cloud-detecting methods (spectral, automatic, ukis, s2cloudless) take."""
        self.addParameter(
            QgsProcessingParameterEnum(
                self.FLAG, self.tr("Classes to flag (cloud-detecting methods)"),
                options=[self.tr("Cloud"), self.tr("Cloud shadow")], allowMultiple=True,
                defaultValue=[0, 1],
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                self.PRODUCT_LEVEL, self.tr("Sentinel-2 product level"),
                options=[self.tr("Automatic (metadata, file name, bands)"), "L1C", "L2A"],
                defaultValue=0,
            )
        )
        threshold = QgsProcessingParameterNumber(
            self.CLOUD_THRESHOLD, self.tr("Cloud threshold (-1 = the method's default)"),
            QgsProcessingParameterNumber.Double, defaultValue=-1.0, minValue=-1.0, maxValue=1.0,
        )
        threshold.setHelp(self.tr(
            "A cloud probability (0–1) for ukis-csmask and s2cloudless, the smoothed cloud "
            "score for the spectral method. Lower flags more of the thin cloud around clouds."
        ))
        buffer = QgsProcessingParameterNumber(
            self.HAZE_BUFFER,
            self.tr("Haze buffer around clouds and shadows (m, -1 = the method's default)"),
            QgsProcessingParameterNumber.Double, defaultValue=-1.0, minValue=-1.0,
            maxValue=5000.0,
        )
        self.addParameter(threshold)
        self.addParameter(buffer)
        resolution = QgsProcessingParameterNumber(
            self.RESOLUTION,
            self.tr("Detector resolution (m, 0 = recommended: ukis-csmask 30, s2cloudless 20)"),
            QgsProcessingParameterNumber.Double, defaultValue=0.0, minValue=0.0,
        )
        pixel = QgsProcessingParameterNumber(
            self.PIXEL_SIZE, self.tr("Pixel size of an image without georeference (m)"),
            QgsProcessingParameterNumber.Double, defaultValue=0.0, minValue=0.0,
        )
        pixel.setHelp(self.tr(
            "0: unknown; the detectors then run on the image's own pixels and the haze buffer "
            "takes 10 m pixels. Georeferenced images know their pixel size."
        ))
        model = QgsProcessingParameterEnum(
            self.UKIS_MODEL, self.tr("ukis-csmask model"),
            options=[self.tr("Automatic (6 bands when B11 and B12 exist)"), self.tr("4 bands"),
                     self.tr("6 bands")],
            defaultValue=0,
        )
        offset = QgsProcessingParameterNumber(
            self.DN_OFFSET, self.tr("Offset added to the digital numbers before ÷ 10000"),
            QgsProcessingParameterNumber.Double, defaultValue=0.0,
        )
        offset.setHelp(self.tr(
            "-1000 for products of processing baseline 04.00 or later (from January 2022) "
            "read as stored, 0 for older or already harmonised products."
        ))
        device = QgsProcessingParameterEnum(
            self.DEVICE, self.tr("Device (ukis-csmask)"),
            options=[self.tr("Auto (GPU when available)"), "CPU", self.tr("CUDA GPU")],
            defaultValue=0,
        )
        self.add_advanced(resolution, pixel, model, offset, device)

    def settings(self, parameters: dict[str, Any], context: QgsProcessingContext) -> MaskSettings:
        method = METHODS[self.parameterAsEnum(parameters, self.METHOD, context)][0]
        settings = MaskSettings(
            method=method,
            band=self.parameterAsInt(parameters, self.SOURCE_BAND, context) or 1,
            band_names=self.parameterAsString(parameters, self.BAND_NAMES, context),
            dilation=self.parameterAsInt(parameters, self.DILATION, context),
            threshold=self.parameterAsDouble(parameters, self.THRESHOLD, context),
            flag=tuple(CLASSES[i] for i in self.parameterAsEnums(parameters, self.FLAG, context)),
            level=LEVELS[self.parameterAsEnum(parameters, self.PRODUCT_LEVEL, context)],
            cloud_threshold=self.default_as_none(parameters, self.CLOUD_THRESHOLD, context),
            buffer_metres=self.default_as_none(parameters, self.HAZE_BUFFER, context),
            resolution_metres=self.parameterAsDouble(parameters, self.RESOLUTION, context)
            or None,
            pixel_metres=self.parameterAsDouble(parameters, self.PIXEL_SIZE, context) or None,
            ukis_bands=UKIS_MODELS[self.parameterAsEnum(parameters, self.UKIS_MODEL, context)],
            reflectance_offset=self.parameterAsDouble(parameters, self.DN_OFFSET, context),
            device=DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)],
        )
        if method == "scl":
            text = self.parameterAsString(parameters, self.SCL_CLASSES, context)
            settings.classes = tuple(check_scl_classes(parse_integer_list(text)))
        if method == "values":
            text = self.parameterAsString(parameters, self.VALUES, context)
            settings.ranges = tuple(parse_value_ranges(text))
        return settings

    def default_as_none(
        self, parameters: dict[str, Any], name: str, context: QgsProcessingContext
    ) -> float | None:
        """A number where a negative value stands for the method's default (None)."""
        value = self.parameterAsDouble(parameters, name, context)
        return None if value < 0 else value

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
            build_gap_mask, feedback, target, output, settings, source_path=source,
            log=feedback.pushInfo,
        )
        feedback.pushInfo(
            f"{report.gaps} gap pixels ({100 * report.gap_fraction:.1f} % of the pixels with "
            f"data), {report.outside} pixels without data."
        )
        style_when_loaded(context, output, "gap_mask")  # gap, clear, no data: a legend
        return {
            self.OUTPUT: output,
            self.GAP_FRACTION: report.gap_fraction,
            self.METHOD_USED: report.method,
        }
