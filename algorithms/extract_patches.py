"""Processing algorithm: cut patches of every role's raster into a patch dataset folder."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    NULL,
    QgsCoordinateReferenceSystem,
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingFeatureSource,
    QgsProcessingFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
)

from ..core.prepare.patch_dataset import SPLITS
from ..core.prepare.patch_extraction import extract_patches
from ..core.prepare.patch_sampling import TRAIN, PatchPoint
from .base import GapfillAlgorithm, raster_crs, run_core
from .layers import centres, features_in

ROLE_PARAMETERS = {  # parameter → role of docs/patch_dataset.md
    "INPUT": ("target", "Target image (sets the grid)"),
    "GAP_MASK": ("gap_mask", "Gap mask of the target"),
    "SAR": ("sar", "SAR image at the target's date"),
    "OPTICAL_BEFORE": ("optical_before", "Optical image of an earlier date"),
    "OPTICAL_AFTER": ("optical_after", "Optical image of a later date"),
    "DEM": ("dem", "DEM"),
    "REFERENCE": ("reference", "Reference: the clear target (the label)"),
}


class ExtractPatches(GapfillAlgorithm):
    POINTS = "POINTS"
    SPLIT_FIELD = "SPLIT_FIELD"
    PATCH_SIZE = "PATCH_SIZE"
    OVERWRITE = "OVERWRITE"
    OUTPUT = "OUTPUT"
    TRAIN_COUNT = "TRAIN_COUNT"
    VALIDATION_COUNT = "VALIDATION_COUNT"
    SKIPPED_COUNT = "SKIPPED_COUNT"

    GROUP = "prepare"

    def name(self) -> str:
        return "extractpatches"

    def displayName(self) -> str:  # noqa: N802 - QGIS API
        return self.tr("Extract patches")

    def shortHelpString(self) -> str:  # noqa: N802 - QGIS API
        return self.tr(
            "Cuts a patch of every given raster around each location (points, or polygon "
            "centroids, e.g. from 'Sample patch locations') and writes a patch dataset folder "
            "for the training package: one memory-mappable NumPy array per role and split "
            "(N × bands × size × size, native data type), locations.csv and manifest.json "
            "(roles, bands, data types, no-data, CRS, pixel size, scaling, provenance; see "
            "docs/patch_dataset.md).\n\n"
            "Every raster is read on the target's grid (aligned on the fly). The split comes "
            "from the split field (train / validation; empty = leave the patch out; all "
            "training when the layer has no such field). Points in another CRS are reprojected. "
            "Patches falling off the image or hitting no-data are skipped and counted.\n\n"
            "A raster written by 'Scale raster' gives float32 arrays, and its scaling is "
            "recorded in the manifest. The output folder must be empty, unless 'Overwrite' is "
            "set: then the dataset in it is replaced (other files stay)."
        )

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:  # noqa: N802
        for key, (role, label) in ROLE_PARAMETERS.items():
            self.addParameter(
                QgsProcessingParameterRasterLayer(key, self.tr(label), optional=role != "target")
            )
        self.addParameter(
            QgsProcessingParameterFeatureSource(
                self.POINTS, self.tr("Patch locations (points or polygons)"),
                [QgsProcessing.TypeVectorPoint, QgsProcessing.TypeVectorPolygon],
            )
        )
        self.addParameter(
            QgsProcessingParameterField(
                self.SPLIT_FIELD, self.tr("Split field (train / validation)"),
                defaultValue="split", parentLayerParameterName=self.POINTS, optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.PATCH_SIZE, self.tr("Patch size (pixels)"),
                QgsProcessingParameterNumber.Integer, defaultValue=64, minValue=1,
            )
        )
        self.addParameter(
            QgsProcessingParameterBoolean(
                self.OVERWRITE, self.tr("Overwrite the dataset in a non-empty folder"),
                defaultValue=False,
            )
        )
        self.addParameter(
            QgsProcessingParameterFolderDestination(self.OUTPUT, self.tr("Dataset folder"))
        )
        for key, label in ((self.TRAIN_COUNT, "Training patches"),
                           (self.VALIDATION_COUNT, "Validation patches"),
                           (self.SKIPPED_COUNT, "Skipped locations")):
            self.addOutput(QgsProcessingOutputNumber(key, self.tr(label)))

    @staticmethod
    def points(
        source: QgsProcessingFeatureSource,
        split_field: str,
        crs: QgsCoordinateReferenceSystem,
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> tuple[list[PatchPoint], str]:
        """The patch centres in the target's CRS, and how their split was made."""
        names = source.fields().names()
        if split_field not in names:
            feedback.pushWarning(
                f"The locations have no field '{split_field}': every patch is for training."
            )
        methods = set()
        points = []
        for feature in features_in(source, crs, context, feedback, "patch locations"):
            ident = feature["id"] if "id" in names and feature["id"] != NULL else feature.id()
            split = feature[split_field] if split_field in names else TRAIN
            if "split_method" in names:
                methods.add(feature["split_method"])
            points += [
                PatchPoint(int(ident), x, y, None if split == NULL else str(split))
                for x, y in centres(feature)
            ]
        method = methods.pop() if len(methods) == 1 and NULL not in methods else "field"
        return points, str(method)

    def processAlgorithm(  # noqa: N802 - QGIS API
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> dict[str, Any]:
        roles = {
            role: path
            for key, (role, _) in ROLE_PARAMETERS.items()
            if (path := self.raster_path(parameters, key, context))
        }
        crs = raster_crs(roles["target"])
        source = self.parameterAsSource(parameters, self.POINTS, context)
        split_field = self.parameterAsString(parameters, self.SPLIT_FIELD, context) or "split"
        points, split_method = self.points(source, split_field, crs, context, feedback)
        output = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        report = run_core(
            extract_patches, feedback, roles, points, output,
            patch_size=self.parameterAsInt(parameters, self.PATCH_SIZE, context),
            overwrite=self.parameterAsBool(parameters, self.OVERWRITE, context),
            split_method=split_method,
        )
        counts = ", ".join(f"{report.counts[split]} {split}" for split in SPLITS)
        feedback.pushInfo(f"Extracted {counts} patches of {', '.join(roles)} into '{output}'.")
        reasons = {
            "off_image": "fall (partly) off the target image",
            "nodata": "hit no-data in some raster",
            "excluded": "have no split (left out)",
        }
        for key, count in report.skipped.items():
            if count:
                feedback.pushWarning(f"{count} locations skipped: they {reasons[key]}.")
        for message in report.messages:
            feedback.pushWarning(message)
        return {
            self.OUTPUT: output,
            self.TRAIN_COUNT: report.counts["train"],
            self.VALIDATION_COUNT: report.counts["validation"],
            self.SKIPPED_COUNT: sum(report.skipped.values()),
        }
