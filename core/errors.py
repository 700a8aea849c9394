"""Domain errors: each message says what is wrong and what to do about it."""


class GapfillError(ValueError):
    """Bad input or a state the user can fix; algorithms turn it into a QgsProcessingException."""


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
