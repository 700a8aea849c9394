"""Processing algorithm: sample patch locations (a filtered grid or the user's own), split them."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsFeature,
    QgsFeatureSink,
    QgsFields,
    QgsGeometry,
    QgsPointXY,
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QVariant

from ..core.prepare.patch_sampling import (
    SPLIT_METHODS,
    TRAIN,
    VALIDATION,
    SamplingReport,
    SamplingSettings,
    sample_patches,
)
from .base import GapfillAlgorithm, raster_crs, run_core
from .layers import centres, features_in, new_field, polygons_wkt

SPLIT_LABELS = {
    "random": "Random (seeded)",
    "blocks": "Spatial blocks (validation never next to training)",
}


def location_fields() -> QgsFields:
    fields = QgsFields()
    for name, kind in (("id", QVariant.Int), ("split", QVariant.String),
                       ("gap_fraction", QVariant.Double), ("valid_fraction", QVariant.Double),
                       ("patch_size", QVariant.Int), ("split_method", QVariant.String)):
        fields.append(new_field(name, kind))
    return fields


class SamplePatches(GapfillAlgorithm):
    INPUT = "INPUT"
    GAP_MASK = "GAP_MASK"
    SOURCES = "SOURCES"
    LOCATIONS = "LOCATIONS"
    AOI = "AOI"
    PATCH_SIZE = "PATCH_SIZE"
    STRIDE = "STRIDE"
    MAX_GAP = "MAX_GAP_FRACTION"
    MIN_GAP = "MIN_GAP_FRACTION"
    SPLIT = "SPLIT"
    VALIDATION_FRACTION = "VALIDATION_FRACTION"
    BLOCK = "BLOCK_PATCHES"
    SEED = "SEED"
    MAX_TRAIN = "MAX_TRAIN"
    MAX_VALIDATION = "MAX_VALIDATION"
    OUTPUT = "OUTPUT"
    TRAIN_COUNT = "TRAIN_COUNT"
    VALIDATION_COUNT = "VALIDATION_COUNT"
    SPLIT_METHOD = "SPLIT_METHOD"

    GROUP = "prepare"

    def name(self) -> str:
        return "samplepatches"

    def displayName(self) -> str:  # noqa: N802 - QGIS API
        return self.tr("Sample patch locations")

    def shortHelpString(self) -> str:  # noqa: N802 - QGIS API
        return self.tr(
            "Chooses where training patches are cut: a regular grid of patches (size and "
            "stride in pixels of the target) over the area every raster covers, or the points "
            "(or polygon centroids) you drew. Layers in another CRS are reprojected.\n\n"
            "Filters: no patch contains no-data in any raster (nor 255 in the gap mask); at "
            "most / at least a fraction of gap pixels (e.g. at most 0 for clear patches on "
            "which gaps are simulated, at least 0.2 to validate on real gaps); inside the area "
            "of interest polygons. When no patch passes, the error says which filter removed "
            "how many.\n\n"
            "Split: random (seeded), or by spatial blocks: whole blocks of the image go to "
            "validation and training patches touching a validation patch are dropped, so that "
            "validation is not measured on the neighbours of training patches. The output "
            "points (patch centres) carry id, split, gap_fraction, valid_fraction, patch_size "
            "and split_method; edit them by hand if you like, then run 'Extract patches'."
        )

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:  # noqa: N802
        self.addParameter(
            QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Target image (sets the grid)"))
        )
        self.addParameter(
            QgsProcessingParameterRasterLayer(
                self.GAP_MASK, self.tr("Gap mask of the target"), optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterMultipleLayers(
                self.SOURCES, self.tr("Other rasters (SAR, other dates, DEM, reference…)"),
                QgsProcessing.TypeRaster, optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterFeatureSource(
                self.LOCATIONS,
                self.tr("Your own locations (points or polygons) instead of a grid"),
                [QgsProcessing.TypeVectorPoint, QgsProcessing.TypeVectorPolygon], optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterFeatureSource(
                self.AOI, self.tr("Area of interest"), [QgsProcessing.TypeVectorPolygon],
                optional=True,
            )
        )
        self.add_number(self.PATCH_SIZE, "Patch size (pixels)", 64, 1)
        self.add_number(self.STRIDE, "Stride (pixels; 0 = the patch size)", 0, 0)
        for key, label, default in ((self.MAX_GAP, "Maximum gap fraction", 1.0),
                                    (self.MIN_GAP, "Minimum gap fraction", 0.0)):
            self.addParameter(
                QgsProcessingParameterNumber(
                    key, self.tr(label), QgsProcessingParameterNumber.Double,
                    defaultValue=default, minValue=0.0, maxValue=1.0,
                )
            )
        self.addParameter(
            QgsProcessingParameterEnum(
                self.SPLIT, self.tr("Train/validation split"),
                options=[self.tr(SPLIT_LABELS[key]) for key in SPLIT_METHODS], defaultValue=0,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.VALIDATION_FRACTION, self.tr("Validation fraction"),
                QgsProcessingParameterNumber.Double, defaultValue=0.2, minValue=0.0,
                maxValue=1.0,
            )
        )
        for key, label, default, minimum in (
            (self.BLOCK, "Split block side (in strides)", 4, 1),
            (self.SEED, "Random seed", 0, 0),
            (self.MAX_TRAIN, "Maximum training patches (0 = all)", 0, 0),
            (self.MAX_VALIDATION, "Maximum validation patches (0 = all)", 0, 0),
        ):
            self.add_number(key, label, default, minimum, advanced=True)
        self.addParameter(
            QgsProcessingParameterFeatureSink(
                self.OUTPUT, self.tr("Patch locations"), QgsProcessing.TypeVectorPoint
            )
        )
        for key, label in ((self.TRAIN_COUNT, "Training patches"),
                           (self.VALIDATION_COUNT, "Validation patches")):
            self.addOutput(QgsProcessingOutputNumber(key, self.tr(label)))
        self.addOutput(QgsProcessingOutputString(self.SPLIT_METHOD, self.tr("Split method")))

    def add_number(
        self, key: str, label: str, default: int, minimum: int, advanced: bool = False
    ) -> None:
        parameter = QgsProcessingParameterNumber(
            key, self.tr(label), QgsProcessingParameterNumber.Integer, defaultValue=default,
            minValue=minimum,
        )
        if advanced:
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(parameter)

    def settings(
        self, parameters: dict[str, Any], context: QgsProcessingContext
    ) -> SamplingSettings:
        def integer(key: str) -> int:
            return self.parameterAsInt(parameters, key, context)

        def real(key: str) -> float:
            return self.parameterAsDouble(parameters, key, context)

        return SamplingSettings(
            patch_size=integer(self.PATCH_SIZE),
            stride=integer(self.STRIDE),
            max_gap_fraction=real(self.MAX_GAP),
            min_gap_fraction=real(self.MIN_GAP),
            split=SPLIT_METHODS[self.parameterAsEnum(parameters, self.SPLIT, context)],
            validation_fraction=real(self.VALIDATION_FRACTION),
            block_patches=integer(self.BLOCK),
            seed=integer(self.SEED),
            max_train=integer(self.MAX_TRAIN),
            max_validation=integer(self.MAX_VALIDATION),
        )

    def processAlgorithm(  # noqa: N802 - QGIS API
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> dict[str, Any]:
        target = self.raster_path(parameters, self.INPUT, context)
        crs = raster_crs(target)
        locations = None
        source = self.parameterAsSource(parameters, self.LOCATIONS, context)
        if source is not None:
            locations = [
                centre
                for feature in features_in(source, crs, context, feedback, "locations")
                for centre in centres(feature)
            ]
            feedback.pushInfo(f"{len(locations)} locations drawn by you are measured.")
        aoi_source = self.parameterAsSource(parameters, self.AOI, context)
        aoi = polygons_wkt(aoi_source, crs, context, feedback) if aoi_source else []
        if aoi_source is not None and not aoi:
            raise QgsProcessingException(
                "The area of interest layer has no polygon (it is empty, or its features have "
                "no geometry): patches would be drawn from the whole image. Draw the area, or "
                "leave the parameter empty to sample everywhere."
            )
        settings = self.settings(parameters, context)
        report = run_core(
            sample_patches, feedback, target,
            gap_mask=self.raster_path(parameters, self.GAP_MASK, context),
            sources=self.raster_paths(parameters, self.SOURCES, context),
            settings=settings, locations=locations, aoi=aoi,
        )
        self.log(report, feedback)
        sink, destination = self.parameterAsSink(
            parameters, self.OUTPUT, context, location_fields(), QgsWkbTypes.Point, crs
        )
        if sink is None:
            raise QgsProcessingException(self.invalidSinkError(parameters, self.OUTPUT))
        fields = location_fields()
        for location in report.locations:
            feature = QgsFeature(fields)
            feature.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(location.x, location.y)))
            feature.setAttributes([
                location.id, location.split, location.gap_fraction, location.valid_fraction,
                settings.patch_size, report.split_method,
            ])
            sink.addFeature(feature, QgsFeatureSink.FastInsert)
        return {
            self.OUTPUT: destination,
            self.TRAIN_COUNT: report.count(TRAIN),
            self.VALIDATION_COUNT: report.count(VALIDATION),
            self.SPLIT_METHOD: report.split_method,
        }

    @staticmethod
    def log(report: SamplingReport, feedback: QgsProcessingFeedback) -> None:
        feedback.pushInfo(f"{report.candidates} candidate patches.")
        for reason, count in report.removed.items():
            if count:
                feedback.pushInfo(f"  {count} removed: they {reason}.")
        if report.border_removed:
            feedback.pushInfo(
                f"  {report.border_removed} training patches dropped: they touched a "
                "validation block."
            )
        for split, count in report.capped.items():
            if count:
                feedback.pushInfo(f"  {count} {split} patches left out by the maximum count.")
        feedback.pushInfo(
            f"{report.count(TRAIN)} training and {report.count(VALIDATION)} validation patches, "
            f"split by {'spatial blocks' if report.split_method == 'blocks' else 'random draw'}."
        )
        for message in report.messages:
            feedback.pushWarning(message)
