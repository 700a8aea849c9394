"""Processing algorithm: fill many scenes (a table of jobs or a folder of scenes), or images
larger than one machine (as tiles), on Dask distributed."""

from __future__ import annotations

from typing import Any

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from ..core.distributed.methods import METHODS
from .base import GapfillAlgorithm, domain_errors, run_core

METHOD_NAMES = tuple(METHODS)


class FillMany(GapfillAlgorithm):
    JOBS = "JOBS"
    SCENES = "SCENES"
    OUTPUT_FOLDER = "OUTPUT_FOLDER"
    METHOD = "METHOD"
    OPTIONS = "OPTIONS"
    BUILD_MASKS = "BUILD_MASKS"
    SCHEDULER = "SCHEDULER"
    WORKERS = "WORKERS"
    TILE_SIZE = "TILE_SIZE"
    OVERWRITE = "OVERWRITE"
    MANIFEST = "MANIFEST"

    ICON = "fill.svg"

    def name(self) -> str:
        return "fillmany"

    def displayName(self) -> str:  # noqa: N802 - QGIS API
        return self.tr("Fill many scenes (Dask distributed)")

    def shortHelpString(self) -> str:  # noqa: N802 - QGIS API
        methods = "; ".join(f"{m.name}: {m.help}" for m in METHODS.values())
        return self.tr(
            "Runs many fills as tasks on Dask distributed: the workers of a running Dask "
            "scheduler (its address, e.g. tcp://10.0.0.5:8786; every path must mean the same "
            "file on every worker), or, without one, worker threads in this QGIS. The jobs "
            "are a CSV table (columns id, target, mask, other_dates, other_masks, sar, dem, "
            "output, method, options; target and output required; several paths separated by "
            "';'; mask 'build' builds one; options as 'name=value; name=value'), or a folder "
            "of scenes (one subfolder each holding target.tif and optionally mask.tif, "
            "sar.tif, dem.tif, other_dates/*.tif; the fills go to the output folder). Rows "
            f"without a method take the default method. Methods: {methods}.\n"
            "Images larger than the tile size (a multiple of 1024 px; 0 = whole images) are "
            "filled as tiles on several workers, bit-identical to a whole-image fill (temporal, "
            "histogram, spatial and pyramid fills); a .vrt output keeps the tiles, a .tif one "
            "becomes one cloud-optimised GeoTIFF.\n"
            "Each output is written only when complete. The manifest (JSON) records every job: "
            "inputs, method, output checksums, worker, time, error. Run again with the same "
            "manifest to resume: jobs done whose inputs and outputs are unchanged are skipped, "
            "finished tiles are kept. One failing job never stops the others; the failures are "
            "listed in the log and counted in FAILED."
        )

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:  # noqa: N802
        self.addParameter(QgsProcessingParameterFile(
            self.JOBS, self.tr("Table of jobs (CSV)"), extension="csv", optional=True
        ))
        self.addParameter(QgsProcessingParameterFile(
            self.SCENES, self.tr("or: folder of scenes"),
            behavior=QgsProcessingParameterFile.Folder, optional=True,
        ))
        self.addParameter(QgsProcessingParameterEnum(
            self.METHOD, self.tr("Default method (rows without one, every scene of a folder)"),
            options=list(METHOD_NAMES), defaultValue=METHOD_NAMES.index("pyramid"),
        ))
        self.addParameter(QgsProcessingParameterString(
            self.OPTIONS, self.tr("Options of the default method (name=value; …)"),
            defaultValue="", optional=True,
        ))
        self.addParameter(QgsProcessingParameterBoolean(
            self.BUILD_MASKS, self.tr("Build a gap mask for jobs without one (spectral score)"),
            defaultValue=False,
        ))
        self.addParameter(QgsProcessingParameterString(
            self.SCHEDULER, self.tr("Dask scheduler address (empty: workers in this QGIS)"),
            defaultValue="", optional=True,
        ))
        self.add_advanced(
            QgsProcessingParameterNumber(
                self.WORKERS, self.tr("Local workers (0 = one per two cores)"),
                QgsProcessingParameterNumber.Integer, defaultValue=0, minValue=0,
            ),
            QgsProcessingParameterNumber(
                self.TILE_SIZE, self.tr("Tile size for large images (px, multiple of 1024; 0 = "
                                        "whole images)"),
                QgsProcessingParameterNumber.Integer, defaultValue=0, minValue=0,
            ),
            QgsProcessingParameterBoolean(
                self.OVERWRITE, self.tr("Replace existing outputs"), defaultValue=False
            ),
        )
        self.addParameter(QgsProcessingParameterFolderDestination(
            self.OUTPUT_FOLDER, self.tr("Output folder (for a folder of scenes)"), optional=True,
            createByDefault=False,
        ))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.MANIFEST, self.tr("Run manifest (resumes from it when it exists)"),
            self.tr("JSON files (*.json)"),
        ))
        for name, text in (("DONE", "Jobs done"), ("SKIPPED", "Jobs skipped (done before)"),
                           ("FAILED", "Jobs failed")):
            self.addOutput(QgsProcessingOutputNumber(name, self.tr(text)))

    def processAlgorithm(  # noqa: N802 - QGIS API
        self,
        parameters: dict[str, Any],
        context: QgsProcessingContext,
        feedback: QgsProcessingFeedback,
    ) -> dict[str, Any]:
        from ..core.distributed.jobs import load_jobs
        from ..core.distributed.runner import run_jobs, summary_lines

        table = self.parameterAsFile(parameters, self.JOBS, context)
        scenes = self.parameterAsFile(parameters, self.SCENES, context)
        if bool(table) == bool(scenes):
            raise QgsProcessingException(
                "Give either a table of jobs (CSV) or a folder of scenes, not both."
                if table else
                "Give a table of jobs (CSV) or a folder of scenes: no jobs were given."
            )
        folder = self.parameterAsString(parameters, self.OUTPUT_FOLDER, context)
        manifest = self.parameterAsFileOutput(parameters, self.MANIFEST, context)
        method = METHOD_NAMES[self.parameterAsEnum(parameters, self.METHOD, context)]
        with domain_errors():
            jobs = load_jobs(table or scenes, folder or None, method,
                             self.parameterAsString(parameters, self.OPTIONS, context),
                             self.parameterAsBool(parameters, self.BUILD_MASKS, context))
        summary = run_core(
            run_jobs, feedback, jobs, manifest,
            scheduler=self.parameterAsString(parameters, self.SCHEDULER, context) or None,
            workers=self.parameterAsInt(parameters, self.WORKERS, context),
            processes=False,  # QGIS's executable cannot start Python worker processes
            tile_size=self.parameterAsInt(parameters, self.TILE_SIZE, context),
            overwrite=self.parameterAsBool(parameters, self.OVERWRITE, context),
            log=feedback.pushInfo,
        )
        *lines, last = summary_lines(summary)
        for line in lines:
            (feedback.reportError if line.startswith("FAILED") else feedback.pushInfo)(line)
        feedback.pushInfo(last)
        return {"MANIFEST": manifest, "DONE": len(summary.done),
                "SKIPPED": len(summary.skipped), "FAILED": len(summary.failed)}
