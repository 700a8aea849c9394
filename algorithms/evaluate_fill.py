"""Processing algorithm: measure filled images against a reference, write CSV, JSON and HTML."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingOutputFile,
    QgsProcessingOutputHtml,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ..core.evaluate.evaluation import EvaluationSettings, evaluate_files, name_images
from ..core.evaluate.metrics import (
    NO_SCALING,
    SENTINEL2_L2A_OFFSET,
    SENTINEL2_REFLECTANCE,
    Scaling,
)
from ..core.evaluate.report import write_report
from .base import GapfillAlgorithm, domain_errors, run_core

SCALINGS: list[tuple[str, Scaling | None]] = [
    ("Sentinel-2 reflectance: DN / 10000, clipped to [0, 1]", SENTINEL2_REFLECTANCE),
    (
        "Sentinel-2 L2A from processing baseline 04.00: (DN − 1000) / 10000, clipped to [0, 1]",
        SENTINEL2_L2A_OFFSET,
    ),
    ("Values as stored (no scaling)", NO_SCALING),
    ("Custom: the divisor, offset and clipping below", None),
]


class EvaluateFill(GapfillAlgorithm):
    REFERENCE = "REFERENCE"
    FILLED = "FILLED"
    EVALUATION_MASK = "EVALUATION_MASK"
    GAPS_INPUT = "GAPS_INPUT"
    OTHER_FILLED = "OTHER_FILLED"
    METHOD_NAMES = "METHOD_NAMES"
    SCALING = "SCALING"
    DIVISOR = "DIVISOR"
    OFFSET = "OFFSET"
    CLIP = "CLIP"
    DATA_RANGE = "DATA_RANGE"
    NDVI = "NDVI"
    BAND_NAMES = "BAND_NAMES"
    OUTPUT_FOLDER = "OUTPUT_FOLDER"
    CSV = "CSV"
    JSON = "JSON"
    HTML = "HTML"
    MAE = "MAE"
    RMSE = "RMSE"
    PSNR = "PSNR"
    SSIM = "SSIM"
    SAM = "SAM"
    FILLED_FRACTION = "FILLED_FRACTION"

    GROUP = "evaluate"

    def name(self) -> str:
        return "evaluatefill"

    def displayName(self) -> str:  # noqa: N802 - QGIS API
        return self.tr("Evaluate fill")

    def shortHelpString(self) -> str:  # noqa: N802 - QGIS API
        return self.tr(
            "Measures how close filled images are to a reference on the evaluation pixels only "
            "(pixels removed from the reference, e.g. by 'Simulate gaps'): MAE, RMSE, PSNR, SSIM "
            "(Gaussian window σ 1.5) and bias per band and overall, the spectral angle (SAM, "
            "degrees) over the bands, optionally the NDVI error, and the fraction of evaluation "
            "pixels each fill gave a value to.\n\n"
            "Evaluation pixels: the evaluation mask (1 = evaluate; a gap mask works too), or, "
            "without one, the pixels where the input with gaps has no data.\n\n"
            "Values are scaled before comparison, and the scaling is written in every output: "
            "by default Sentinel-2 DN / 10000 clipped to [0, 1] with PSNR over a data range of "
            "1, the protocol of DSen2-CR and UnCRtainTS, so numbers compare with published "
            "ones.\n\n"
            "Give other filled images to compare methods side by side. Images on another grid "
            "are aligned to the reference on the fly; images with other bands are refused.\n\n"
            "Writes metrics.csv, metrics.json and report.html (quick-looks of the input, each "
            "fill, the reference and the absolute error, with the metrics tables and the run "
            "parameters) into the output folder."
        )

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:  # noqa: N802
        self.addParameter(
            QgsProcessingParameterRasterLayer(self.REFERENCE, self.tr("Reference (true image)"))
        )
        self.addParameter(QgsProcessingParameterRasterLayer(self.FILLED, self.tr("Filled image")))
        mask = QgsProcessingParameterRasterLayer(
            self.EVALUATION_MASK, self.tr("Evaluation mask (1 = evaluate; or a gap mask)"),
            optional=True,
        )
        mask.setHelp(self.tr(
            "One band, or one band per image band. Default: the no-data pixels of the input "
            "with gaps."
        ))
        self.addParameter(mask)
        gaps = QgsProcessingParameterRasterLayer(
            self.GAPS_INPUT, self.tr("Input with gaps (quick-look; default evaluation pixels)"),
            optional=True,
        )
        self.addParameter(gaps)
        self.addParameter(
            QgsProcessingParameterMultipleLayers(
                self.OTHER_FILLED, self.tr("Other filled images to compare"),
                QgsProcessing.TypeRaster, optional=True,
            )
        )
        names = QgsProcessingParameterString(
            self.METHOD_NAMES,
            self.tr("Method names, filled image first (optional, e.g. 'temporal, spatial')"),
            defaultValue="", optional=True,
        )
        names.setHelp(self.tr("Default: the file names."))
        self.addParameter(names)
        self.addParameter(
            QgsProcessingParameterEnum(
                self.SCALING, self.tr("Scaling of the values"),
                options=[self.tr(label) for label, _ in SCALINGS], defaultValue=0,
            )
        )
        divisor = QgsProcessingParameterNumber(
            self.DIVISOR, self.tr("Custom scaling: divisor"),
            QgsProcessingParameterNumber.Double, defaultValue=10000.0, minValue=1e-12,
        )
        offset = QgsProcessingParameterNumber(
            self.OFFSET, self.tr("Custom scaling: offset added before dividing"),
            QgsProcessingParameterNumber.Double, defaultValue=0.0,
        )
        clip = QgsProcessingParameterBoolean(
            self.CLIP, self.tr("Custom scaling: clip to [0, 1]"), defaultValue=True
        )
        data_range = QgsProcessingParameterNumber(
            self.DATA_RANGE, self.tr("Data range of the scaled values (PSNR peak, SSIM)"),
            QgsProcessingParameterNumber.Double, defaultValue=1.0, minValue=1e-12,
        )
        data_range.setHelp(self.tr("1 for reflectance in [0, 1]."))
        band_names = QgsProcessingParameterString(
            self.BAND_NAMES, self.tr("Sentinel-2 band names in file order (NDVI, quick-look)"),
            defaultValue="", optional=True,
        )
        band_names.setHelp(self.tr(
            "Only when the band descriptions do not name the bands, e.g. 'B2,B3,B4,B8,B11,B12'."
        ))
        for parameter in (divisor, offset, clip, data_range, band_names):
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        for parameter in (divisor, offset, clip, data_range):
            self.addParameter(parameter)
        self.addParameter(
            QgsProcessingParameterBoolean(
                self.NDVI, self.tr("Also measure the NDVI error (needs bands B4 and B8)"),
                defaultValue=False,
            )
        )
        self.addParameter(band_names)
        self.addParameter(
            QgsProcessingParameterFolderDestination(self.OUTPUT_FOLDER, self.tr("Report folder"))
        )
        self.addOutput(QgsProcessingOutputFile(self.CSV, self.tr("Metrics table (CSV)")))
        self.addOutput(QgsProcessingOutputFile(self.JSON, self.tr("Metrics (JSON)")))
        self.addOutput(QgsProcessingOutputHtml(self.HTML, self.tr("Report (HTML)")))
        for key, label in (
            (self.MAE, "MAE of the filled image"),
            (self.RMSE, "RMSE of the filled image"),
            (self.PSNR, "PSNR of the filled image (dB; inf when perfect)"),
            (self.SSIM, "SSIM of the filled image"),
            (self.SAM, "SAM of the filled image (degrees)"),
            (self.FILLED_FRACTION, "Fraction of the evaluation pixels filled"),
        ):
            self.addOutput(QgsProcessingOutputNumber(key, self.tr(label)))

    def settings(
        self, parameters: dict[str, Any], context: QgsProcessingContext
    ) -> EvaluationSettings:
        scaling = SCALINGS[self.parameterAsEnum(parameters, self.SCALING, context)][1]
        if scaling is None:
            clip = self.parameterAsBool(parameters, self.CLIP, context)
            scaling = Scaling(
                divisor=self.parameterAsDouble(parameters, self.DIVISOR, context),
                offset=self.parameterAsDouble(parameters, self.OFFSET, context),
                clip=(0.0, 1.0) if clip else None,
            )
        return EvaluationSettings(
            scaling=scaling,
            data_range=self.parameterAsDouble(parameters, self.DATA_RANGE, context),
            ndvi=self.parameterAsBool(parameters, self.NDVI, context),
            band_names=self.parameterAsString(parameters, self.BAND_NAMES, context),
        )

    def processAlgorithm(  # noqa: N802 - QGIS API
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> dict[str, Any]:
        reference = self.raster_path(parameters, self.REFERENCE, context)
        paths = [
            self.raster_path(parameters, self.FILLED, context),
            *self.raster_paths(parameters, self.OTHER_FILLED, context),
        ]
        folder = self.parameterAsString(parameters, self.OUTPUT_FOLDER, context)
        with domain_errors():
            images = name_images(
                paths, self.parameterAsString(parameters, self.METHOD_NAMES, context)
            )
        evaluation = run_core(
            evaluate_files, feedback, reference, images,
            evaluation_mask=self.raster_path(parameters, self.EVALUATION_MASK, context),
            gaps_input=self.raster_path(parameters, self.GAPS_INPUT, context),
            settings=self.settings(parameters, context),
        )
        with domain_errors():
            files = write_report(evaluation, folder)
        for message in evaluation.messages:
            feedback.pushWarning(message)
        feedback.pushInfo(
            f"{evaluation.evaluation_pixels} evaluation pixels; values scaled as "
            f"{evaluation.settings.scaling.describe()}."
        )
        for image, metrics in zip(evaluation.filled, evaluation.metrics, strict=True):
            feedback.pushInfo(
                f"{image.name}: MAE {metrics.mae:.4g}, RMSE {metrics.rmse:.4g}, PSNR "
                f"{metrics.psnr:.4g} dB, SSIM {metrics.ssim:.4g}, filled "
                f"{100 * metrics.filled_fraction:.1f} %."
            )
        first = evaluation.metrics[0]
        numbers = {
            self.MAE: first.mae,
            self.RMSE: first.rmse,
            self.PSNR: first.psnr,
            self.SSIM: first.ssim,
            self.SAM: first.sam,
            self.FILLED_FRACTION: first.filled_fraction,
        }
        return {
            self.OUTPUT_FOLDER: folder,
            self.CSV: str(files.csv),
            self.JSON: str(files.json),
            self.HTML: str(files.html),
            # numpy scalars do not cross into QVariant: plain floats (None: not applicable)
            **{key: None if value is None else float(value) for key, value in numbers.items()},
        }
