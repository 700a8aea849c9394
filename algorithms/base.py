"""What every Gapfill algorithm shares: groups, icon, help, and running a core call safely."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from qgis.core import (
    Qgis,
    QgsApplication,
    QgsCoordinateReferenceSystem,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorLayer,
    QgsRasterLayer,
)
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

from ..core.environment.dependency_folder import dependency_root
from ..core.errors import Cancelled, GapfillError, MissingDependencyError, field_name
from ..core.raster.fill_engine import FillReport
from ..core.raster.output import check_not_inputs, check_output_file

ICONS = Path(__file__).resolve().parent.parent / "icons"
GROUPS = {
    "prepare": "Prepare",
    "fill": "Fill",
    "train": "Train",
    "evaluate": "Evaluate",
    "environment": "Environment",
}
T = TypeVar("T")
# `qgis_process help` prints each argument's default itself from QGIS 3.40 (seen there; 3.22 does
# not): before, the parameter's help says it.
HELP_SHOWS_DEFAULTS = Qgis.QGIS_VERSION_INT >= 34000


class GapfillAlgorithm(QgsProcessingAlgorithm):
    """Base: subclasses give name, display name, group id, help, icon and processAlgorithm."""

    GROUP = "fill"
    ICON = "gapfill.svg"
    # the engine's options this algorithm sets, by parameter: an error naming one names it
    OPTION_PARAMETERS: ClassVar[dict[str, str]] = {}

    def tr(self, text: str) -> str:
        return QCoreApplication.translate(type(self).__name__, text)

    def option_name(self, option: str) -> str:
        """An engine's option as this dialog and qgis_process call it."""
        parameter = self.parameterDefinition(self.OPTION_PARAMETERS.get(option, ""))
        return parameter_label(parameter) if parameter is not None else field_name(option)

    def createInstance(self) -> QgsProcessingAlgorithm:  # noqa: N802 - QGIS API
        return type(self)()

    def group(self) -> str:
        return self.tr(GROUPS[self.GROUP])

    def groupId(self) -> str:  # noqa: N802 - QGIS API
        return self.GROUP

    def icon(self) -> QIcon:
        return QIcon(str(ICONS / self.ICON))

    def svgIconPath(self) -> str:  # noqa: N802 - QGIS API
        return str(ICONS / self.ICON)

    def addParameter(  # noqa: N802 - QGIS API
        self, parameter: QgsProcessingParameterDefinition, createOutput: bool = True  # noqa: N803
    ) -> bool:
        """Add a parameter; where `qgis_process help` would not show its default, its help
        does (the search distance 100, the Whittaker λ 10, …)."""
        if not HELP_SHOWS_DEFAULTS and (default := default_text(parameter)):
            parameter.setHelp(f"{parameter.help()} Default: {default}.".strip())
        return super().addParameter(parameter, createOutput)

    def add_advanced(self, *parameters: QgsProcessingParameterDefinition) -> None:
        """Add tuning knobs, folded under 'Advanced parameters' in the dialog."""
        for parameter in parameters:
            parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            self.addParameter(parameter)

    def checkParameterValues(  # noqa: N802 - QGIS API
        self, parameters: dict[str, Any], context: QgsProcessingContext
    ) -> tuple[bool, str]:
        """QGIS's check of each value, then: no output may be one of the inputs (nothing would
        be left of the user's file), refused before any work in every algorithm."""
        for definition in self.parameterDefinitions():
            message = _unacceptable(definition, parameters.get(definition.name()), context)
            if message:
                return False, message
        try:
            outputs = self._output_files(parameters, context)
            check_not_inputs(self._input_files(parameters, context), outputs)
            for definition in self.destinationParameterDefinitions():
                name, kind = definition.name(), definition.type()
                if name in outputs and kind in ("rasterDestination", "fileDestination"):
                    check_output_file(name, outputs[name], kind == "rasterDestination")
        except GapfillError as error:
            return False, str(error)
        return True, ""

    def _input_files(
        self, parameters: dict[str, Any], context: QgsProcessingContext
    ) -> dict[str, list[str]]:
        files: dict[str, list[str]] = {}
        for definition in self.parameterDefinitions():
            name = definition.name()
            if parameters.get(name) in (None, ""):
                continue
            if isinstance(definition, QgsProcessingParameterRasterLayer):
                path = self.raster_path(parameters, name, context)
                files[name] = [path] if path else []
            elif isinstance(definition, QgsProcessingParameterMultipleLayers):
                files[name] = [
                    path.split("|")[0] for path in self.raster_paths(parameters, name, context)
                ]
            elif isinstance(definition, QgsProcessingParameterFile):
                files[name] = [self.parameterAsFile(parameters, name, context)]
            elif isinstance(definition, QgsProcessingParameterVectorLayer):
                layer = self.parameterAsVectorLayer(parameters, name, context)
                files[name] = [layer.source().split("|")[0]] if layer else []
        return files

    def _output_files(
        self, parameters: dict[str, Any], context: QgsProcessingContext
    ) -> dict[str, str]:
        files = {}
        for definition in self.destinationParameterDefinitions():
            name = definition.name()
            value = parameters.get(name)
            if value in (None, "") or str(value) == "TEMPORARY_OUTPUT":
                continue
            if isinstance(definition, QgsProcessingParameterRasterDestination):
                files[name] = self.parameterAsOutputLayer(parameters, name, context)
            elif isinstance(definition, QgsProcessingParameterFileDestination):
                files[name] = self.parameterAsFileOutput(parameters, name, context)
            else:
                files[name] = self.parameterAsString(parameters, name, context)
        return files

    def raster_path(
        self, parameters: dict[str, Any], name: str, context: QgsProcessingContext
    ) -> str | None:
        """The file behind a raster parameter (None when optional and empty)."""
        value = parameters.get(name)
        if _is_file(value):
            return str(value)  # a file path: no layer is loaded (QGIS would write statistics
            # into an .aux.xml beside the user's file when it sets up a layer's renderer)
        layer = self.parameterAsRasterLayer(parameters, name, context)
        if layer is None:
            return None
        return raster_source(layer, name)

    def raster_paths(
        self, parameters: dict[str, Any], name: str, context: QgsProcessingContext
    ) -> list[str]:
        """Files behind a multiple-layers parameter, in the order the user gave them."""
        values = parameters.get(name)
        if isinstance(values, list | tuple) and values and all(_is_file(v) for v in values):
            return [str(value) for value in values]
        layers = self.parameterAsLayerList(parameters, name, context)
        return [raster_source(layer, name) for layer in layers]


class DependencyFolderAlgorithm(GapfillAlgorithm):
    """Install / Remove dependencies: both change Gapfill's folder of the QGIS profile and put
    what is there in use at once. Not hidden from the modeler: QGIS 3.22 reads any of the
    hide flags as 'deprecated' and then leaves the algorithm out of `qgis_process list`."""

    GROUP = "environment"

    @staticmethod
    def dependency_root() -> Path:
        return dependency_root(Path(QgsApplication.qgisSettingsDirPath()))


def default_text(parameter: QgsProcessingParameterDefinition) -> str:
    """A parameter's default as `qgis_process run` takes it ('' when it has none to show)."""
    default = parameter.defaultValue()
    if default is None or default == "" or parameter.isDestination():
        return ""
    if isinstance(parameter, QgsProcessingParameterBoolean):
        return "true" if default else "false"
    if isinstance(parameter, QgsProcessingParameterEnum) and isinstance(default, int):
        options = parameter.options()
        return f"{default} ({options[default]})" if 0 <= default < len(options) else str(default)
    if isinstance(parameter, QgsProcessingParameterNumber):
        return f"{float(default):g}"
    return f"'{default}'" if isinstance(default, str) else str(default)
def _is_file(value: Any) -> bool:
    return isinstance(value, str | Path) and bool(str(value)) and Path(value).is_file()


def _unacceptable(
    definition: QgsProcessingParameterDefinition, value: Any, context: QgsProcessingContext
) -> str:
    """Why QGIS refuses `value`, with the range of a number ('' when acceptable). Raster files
    are not loaded as layers here (QGIS's check would, and its renderer writes an .aux.xml of
    statistics beside the user's file): their reading is checked when they are opened."""
    if isinstance(definition, QgsProcessingParameterRasterLayer) and _is_file(value):
        return ""
    if isinstance(definition, QgsProcessingParameterMultipleLayers) and (
        isinstance(value, list | tuple) and value and all(_is_file(v) for v in value)
    ):
        return ""
    if definition.checkValueIsAcceptable(value, context):
        return ""
    if isinstance(definition, QgsProcessingParameterEnum) and definition.usesStaticStrings():
        if str(value).isdigit() and int(value) < len(definition.options()):
            return ""  # the option's number, as `qgis_process help` offers it
    message = f"Incorrect value for '{definition.description()}' ({definition.name()})"
    layers = (QgsProcessingParameterRasterLayer, QgsProcessingParameterMultipleLayers)
    missing = [v for v in (value if isinstance(value, list | tuple) else [value])
               if isinstance(v, str) and v and not Path(v.split("|")[0]).exists()]
    if isinstance(definition, layers) and missing:
        message += (f": '{missing[0]}' does not exist, neither as a file nor as a layer of the "
                    "project. Check the path")
    elif isinstance(definition, QgsProcessingParameterNumber):
        message += f": give a number from {definition.minimum():g} to {definition.maximum():g}"
    elif isinstance(definition, QgsProcessingParameterEnum):
        options = ", ".join(f"{i} ({o})" for i, o in enumerate(definition.options()))
        message += f": give one of {options}"
    elif value in (None, "") and not definition.flags() & definition.FlagOptional:
        message += ": it is required"
    return message + "."


def raster_crs(path: str) -> QgsCoordinateReferenceSystem:
    """A raster's CRS as GDAL reads it: a layer loaded for it would have QGIS's renderer keep
    its statistics in an .aux.xml beside the user's file."""
    from osgeo import gdal

    dataset = gdal.Open(path)
    return QgsCoordinateReferenceSystem.fromWkt(dataset.GetProjection() if dataset else "")


def raster_source(layer: QgsRasterLayer, name: str) -> str:
    if not layer.isValid():
        raise QgsProcessingException(f"The layer given as {name} is not a valid raster.")
    if layer.providerType() != "gdal":
        raise QgsProcessingException(
            f"The layer given as {name} ('{layer.name()}') is not a file raster (provider "
            f"'{layer.providerType()}'). Save it as a GeoTIFF first (Export > Save As)."
        )
    return layer.source()


@contextmanager
def domain_errors(option_name: Callable[[str], str] = field_name) -> Iterator[None]:
    """Turn the engine's domain errors into Processing errors with the same message; the
    options it names are named by `option_name` (an algorithm's parameters)."""
    try:
        yield
    except Cancelled as error:
        raise QgsProcessingException("Cancelled: no output was written.") from error
    except GapfillError as error:
        raise QgsProcessingException(error.worded(option_name)) from error
    except MissingDependencyError as error:
        raise QgsProcessingException(str(error)) from error


def parameter_label(parameter: QgsProcessingParameterDefinition) -> str:
    """A parameter as an error names it: its description up to the first note, and its name
    for qgis_process ('Cloud masks for simulated gaps' (CLOUD_MASKS))."""
    label = re.split(r" \(|:|,", parameter.description(), maxsplit=1)[0]
    return f"'{label}' ({parameter.name()})"


def run_core(
    call: Callable[..., T],
    feedback: QgsProcessingFeedback,
    *args: Any,
    span: tuple[float, float] = (0.0, 1.0),
    option_name: Callable[[str], str] = field_name,
    **kwargs: Any,
) -> T:
    """Run a core function with QGIS progress (over `span` of the bar, for algorithms that
    make several core calls) and cancel, and domain errors translated (the options they name
    named by `option_name`)."""
    low, high = span
    with domain_errors(option_name):
        return call(
            *args,
            progress=lambda fraction: feedback.setProgress(100.0 * (low + (high - low) * fraction)),
            cancelled=feedback.isCanceled,
            **kwargs,
        )


def target_parameters(algorithm: GapfillAlgorithm) -> None:
    """The target image and its optional gap mask, common to every fill."""
    algorithm.addParameter(
        QgsProcessingParameterRasterLayer("INPUT", algorithm.tr("Target image (with gaps)"))
    )
    mask = QgsProcessingParameterRasterLayer(
        "GAP_MASK", algorithm.tr("Gap mask (1 = gap; default: the target's no-data)"),
        optional=True,
    )
    mask.setHelp(algorithm.tr("Build one with 'Build gap mask'. Pixels ≠ 0 are filled."))
    algorithm.addParameter(mask)


def fill_outputs(algorithm: GapfillAlgorithm) -> None:
    algorithm.addParameter(
        QgsProcessingParameterRasterDestination("OUTPUT", algorithm.tr("Filled image"))
    )
    algorithm.addOutput(
        QgsProcessingOutputNumber("FILLED_PIXELS", algorithm.tr("Gap pixels filled"))
    )
    algorithm.addOutput(
        QgsProcessingOutputNumber("UNFILLED_PIXELS", algorithm.tr("Gap pixels left as no-data"))
    )


def fill_results(report: FillReport, output: str, feedback: QgsProcessingFeedback) -> dict:
    """Log the pixel counts (warnings for what the user should know) and build the results."""
    for message in report.messages:
        feedback.pushWarning(message)
    if report.gaps:
        feedback.pushInfo(
            f"{report.filled} of {report.gaps} gap pixels filled "
            f"({100 * report.filled / report.gaps:.1f} %)."
        )
    if report.unfilled:
        feedback.pushWarning(
            f"{report.unfilled} gap pixels could not be filled and are no-data in the output."
        )
    return {"OUTPUT": output, "FILLED_PIXELS": report.filled, "UNFILLED_PIXELS": report.unfilled}
