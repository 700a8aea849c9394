"""Processing algorithm: fill gaps by learning from the scene itself, self-validated."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from qgis.core import (
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ..core.fills.scene.fill_scene import (
    BUDGET_RANGE,
    MAX_SOURCE_MARGIN,
    MEASURED,
    SceneSettings,
    margin_setting,
)
from ..core.fills.scene.run import fill_scene_files
from ..core.learned.onnx_session import DEVICES
from .base import GapfillAlgorithm, fill_outputs, fill_results, run_core, target_parameters


class FillScene(GapfillAlgorithm):
    INPUT = "INPUT"
    GAP_MASK = "GAP_MASK"
    OTHER_DATES = "OTHER_DATES"
    OTHER_MASKS = "OTHER_MASKS"
    DATES = "DATES"
    SAR = "SAR"
    DEM = "DEM"
    BUDGET = "BUDGET"
    DEVICE = "DEVICE"
    SEED = "SEED"
    MAX_STEPS = "MAX_STEPS"
    WINDOWS = "WINDOWS"
    BUNDLED = "BUNDLED"
    ADAPT = "ADAPT"
    SOURCE_MARGIN = "SOURCE_MARGIN"
    START_NETWORK = "START_NETWORK"
    SAVE_NETWORK = "SAVE_NETWORK"
    OPTION_PARAMETERS = {"no_adapt": ADAPT, "start_network": START_NETWORK,
                         "save_network": SAVE_NETWORK}
    OUTPUT = "OUTPUT"
    CONFIDENCE = "CONFIDENCE"
    REPORT_FOLDER = "REPORT_FOLDER"
    CHOSEN = "CHOSEN"
    REPORT_PSNR = "REPORT_PSNR"
    CLASSICAL_PSNR = "CLASSICAL_PSNR"

    ICON = "fill.svg"

    def name(self) -> str:
        return "fillscene"

    def displayName(self) -> str:  # noqa: N802 - QGIS API
        return self.tr("Fill gaps, learned from this scene")

    def shortHelpString(self) -> str:  # noqa: N802 - QGIS API
        return self.tr(
            "Fills the gaps of the target image with the fill that works best on this very "
            "scene, and says how good it is here.\n\n"
            "Real cloud shapes of the scene (its own gap mask, the other dates' masks) are laid "
            "on its clear pixels, in blocks split into training, selection and report. Every "
            "applicable fill competes: spatial pyramid interpolation and inverse distance, "
            "temporal interpolation and histogram matching (with other dates), each also "
            "corrected to the gap's edge (the difference to the target on a ring of clear "
            "pixels around each gap, interpolated into it), histogram matching from every date "
            "weighted by its fit around the gap, the nearest date's local linear regression, "
            "every date through similar pixels (a date's value plus the change of the pixels "
            "most like it on that date; with scipy), the bundled "
            "models that fit the layers given, and a network adapted to the scene: a correction "
            "of the best of them, trained within the time budget on the training blocks, which "
            "starts equal to that fill and keeps only what helps on the selection blocks. The "
            "best on the selection blocks fills the real gaps; the report blocks, never used to "
            "train or to choose, give its accuracy on this scene (MAE, RMSE, PSNR, SSIM, SAM, "
            "seam ratio) next to the best classical fill. Only gap pixels change; clear pixels "
            "are copied exactly.\n\n"
            "Without a gap mask one is built (Sentinel-2: as Build gap mask builds it by default, "
            "the best cloud/shadow detector installed and its haze buffer; "
            "otherwise the target's no-data); so are the other dates' masks. The "
            "optional confidence layer holds, per gap pixel, the expected absolute error and a "
            "90 % upper bound (the target's units), calibrated on the scene; the report folder "
            "gets an HTML and a JSON report. The budget (default 5 minutes) bounds the learning; "
            "the final fill of the whole scene comes on top. A fixed seed and a step limit give "
            "the same result every run on the CPU.\n\n"
            "Cloud masks often stop short of a cloud's thin edge and the haze around it. The "
            "scene fill measures that haze (the haze optimised transform, blue over red, by "
            "distance to the gaps against pixels far from them) and, where the ring around "
            "the gaps is hazy, no fill reads the clear pixels that close to a gap: on the "
            "SEN12MS-CR samples with haze this raised the fill's PSNR against a clear date by "
            "3 to 7 dB. Those pixels are kept as they are; the log says how far the haze "
            "reaches, so that the mask can be grown to fill them too. Set the margin yourself, "
            "or 0 to read every clear pixel.\n\nThe adapted network can be saved with its "
            "card (a .pt file) and given to the next scene of the same date and sensor as a "
            "start: it trains on from those weights (its inputs standardised on the new scene) "
            "and again keeps only what helps there. The network needs 'torch' (Install "
            "dependencies); without it the classical fills and bundled models still compete."
        )

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:  # noqa: N802
        target_parameters(self)
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.OTHER_DATES, self.tr("Images of other dates (optional)"),
            QgsProcessing.TypeRaster, optional=True,
        ))
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.OTHER_MASKS, self.tr("Gap masks of the other dates (same order; optional)"),
            QgsProcessing.TypeRaster, optional=True,
        ))
        self.addParameter(QgsProcessingParameterString(
            self.DATES,
            self.tr("Dates, target first (optional, e.g. 2018-05-06, 2018-04-26, 2018-05-21)"),
            defaultValue="", optional=True,
        ))
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.SAR, self.tr("SAR image of the target's date (optional)"), optional=True
        ))
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.DEM, self.tr("Elevation model (optional)"), optional=True
        ))
        self.addParameter(QgsProcessingParameterNumber(
            self.BUDGET, self.tr("Time budget for learning (minutes; default 5)"),
            QgsProcessingParameterNumber.Double, defaultValue=5.0, minValue=BUDGET_RANGE[0],
            maxValue=BUDGET_RANGE[1],
        ))
        device = QgsProcessingParameterEnum(
            self.DEVICE, self.tr("Device"), options=DEVICES, defaultValue=0
        )
        seed = QgsProcessingParameterNumber(
            self.SEED, self.tr("Random seed (default 0)"), QgsProcessingParameterNumber.Integer,
            defaultValue=0, minValue=0,
        )
        steps = QgsProcessingParameterNumber(
            self.MAX_STEPS, self.tr("Training steps at most (0 = until the budget or no "
                                    "progress)"),
            QgsProcessingParameterNumber.Integer, defaultValue=0, minValue=0, maxValue=10**7,
        )
        windows = QgsProcessingParameterNumber(
            self.WINDOWS, self.tr("Validation windows of 512 px in large scenes (default 6)"),
            QgsProcessingParameterNumber.Integer, defaultValue=6, minValue=1, maxValue=64,
        )
        bundled = QgsProcessingParameterBoolean(
            self.BUNDLED, self.tr("Bundled models compete"), defaultValue=True
        )
        adapt = QgsProcessingParameterBoolean(
            self.ADAPT, self.tr("Train a network adapted to the scene"), defaultValue=True
        )
        margin = QgsProcessingParameterNumber(
            self.SOURCE_MARGIN,
            self.tr("Clear pixels near the gaps no fill reads (px; -1 = as far as haze is "
                    "measured around them, 0 = none)"),
            QgsProcessingParameterNumber.Integer, defaultValue=MEASURED, minValue=MEASURED,
            maxValue=MAX_SOURCE_MARGIN,
        )
        self.add_advanced(device, seed, steps, windows, bundled, adapt, margin)
        self.addParameter(QgsProcessingParameterFile(
            self.START_NETWORK,
            self.tr("Start from an adapted network (.pt saved on a neighbouring scene; optional)"),
            extension="pt", optional=True,
        ))
        fill_outputs(self)
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.CONFIDENCE, self.tr("Confidence layer (expected error, 90 % bound)"),
            optional=True, createByDefault=False,
        ))
        self.addParameter(QgsProcessingParameterFolderDestination(
            self.REPORT_FOLDER, self.tr("Report folder (HTML and JSON)"), optional=True,
            createByDefault=False,
        ))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.SAVE_NETWORK, self.tr("Save the adapted network (with its card)"),
            fileFilter=self.tr("Adapted network (*.pt)"), optional=True, createByDefault=False,
        ))
        self.addOutput(QgsProcessingOutputString(self.CHOSEN, self.tr("Chosen fill")))
        self.addOutput(QgsProcessingOutputNumber(
            self.REPORT_PSNR, self.tr("PSNR of the chosen fill on the report blocks (dB)")
        ))
        self.addOutput(QgsProcessingOutputNumber(
            self.CLASSICAL_PSNR, self.tr("PSNR of the best classical fill there (dB)")
        ))

    def processAlgorithm(  # noqa: N802 - QGIS API
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> dict[str, Any]:
        output = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        confidence = self.parameterAsOutputLayer(parameters, self.CONFIDENCE, context) or None
        folder = self.parameterAsString(parameters, self.REPORT_FOLDER, context) or None
        save_network = self.parameterAsFileOutput(parameters, self.SAVE_NETWORK, context) or None
        steps = self.parameterAsInt(parameters, self.MAX_STEPS, context)
        settings = SceneSettings(
            budget_minutes=self.parameterAsDouble(parameters, self.BUDGET, context),
            max_steps=steps or None,
            seed=self.parameterAsInt(parameters, self.SEED, context),
            device=DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)],
            windows=self.parameterAsInt(parameters, self.WINDOWS, context),
            bundled=self.parameterAsBoolean(parameters, self.BUNDLED, context),
            adapt=self.parameterAsBoolean(parameters, self.ADAPT, context),
            source_margin=margin_setting(
                self.parameterAsInt(parameters, self.SOURCE_MARGIN, context)
            ),
        )
        result = run_core(
            fill_scene_files, feedback,
            self.raster_path(parameters, self.INPUT, context),
            output,
            option_name=self.option_name,
            gap_mask=self.raster_path(parameters, self.GAP_MASK, context),
            other_dates=self.raster_paths(parameters, self.OTHER_DATES, context),
            other_masks=self.raster_paths(parameters, self.OTHER_MASKS, context),
            dates=self.parameterAsString(parameters, self.DATES, context),
            sar=self.raster_path(parameters, self.SAR, context),
            dem=self.raster_path(parameters, self.DEM, context),
            settings=settings,
            report_folder=folder,
            confidence_output=confidence,
            start_network=self.parameterAsFile(parameters, self.START_NETWORK, context) or None,
            save_network_to=save_network,
            log=feedback.pushInfo,
        )
        for note in result.notes:
            feedback.pushWarning(note)
        results = fill_results(result.fill, output, feedback)
        chosen, classical = result.result_of(result.chosen), result.best_classical
        results |= {
            self.CHOSEN: result.chosen,
            self.REPORT_PSNR: chosen.report.psnr if chosen.report else math.nan,
            self.CLASSICAL_PSNR: classical.report.psnr if classical.report else math.nan,
        }
        if result.confidence_layer:
            results[self.CONFIDENCE] = result.confidence_layer
        if folder:
            results[self.REPORT_FOLDER] = folder
        if save_network and Path(save_network).is_file():
            results[self.SAVE_NETWORK] = save_network
        return results
