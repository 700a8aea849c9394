"""Domain errors: each message says what is wrong and what to do about it."""

from collections.abc import Callable, Sequence


class GapfillError(ValueError):
    """Bad input or a state the user can fix; algorithms turn it into a QgsProcessingException.

    A message that tells the user to set an option writes it as `{name}` (a configuration
    field, listed in `options`): each front end names it as its user sees it (`--cloud-masks`
    on the command line, 'Cloud masks' (CLOUD_MASKS) in Processing) through `worded`; the
    plain text names the field itself, as a configuration file spells it."""

    def __init__(self, message: str, *, options: Sequence[str] = ()) -> None:
        self.template = message
        self.options = tuple(options)
        super().__init__(self.worded(field_name))

    def worded(self, name: Callable[[str], str]) -> str:
        """The message with each option named by `name(field)`."""
        text = self.template
        for option in self.options:
            text = text.replace("{" + option + "}", name(option))
        return text


def field_name(option: str) -> str:
    """An option as a configuration file (YAML, a dict of settings) spells it."""
    return f"'{option}'"


def flag_name(option: str) -> str:
    """An option as the command lines spell it: `cloud_masks` is `--cloud-masks`."""
    return "--" + option.replace("_", "-")


class RasterOpenError(GapfillError):
    """A raster cannot be opened or read."""


class NoOverlapError(GapfillError):
    """Two rasters do not share any area."""


class MissingDependencyError(ImportError):
    """An optional Python package (onnxruntime, torch) is not installed.

    The message says how to install it into QGIS; `problem` is its first sentence (what is
    missing, for what) and `distribution` the pip name, so that a command line can give its
    own fix."""

    def __init__(self, message: str, *, problem: str = "", distribution: str = "") -> None:
        super().__init__(message, name=distribution or None)
        self.problem = problem or message
        self.distribution = distribution


class Cancelled(RuntimeError):
    """The user cancelled the run; partial outputs have been removed."""
