"""Domain errors: each message says what is wrong and what to do about it."""


class GapfillError(ValueError):
    """Bad input or a state the user can fix; algorithms turn it into a QgsProcessingException."""


class RasterOpenError(GapfillError):
    """A raster cannot be opened or read."""


class NoOverlapError(GapfillError):
    """Two rasters do not share any area."""


class MissingDependencyError(ImportError):
    """An optional Python package (onnxruntime, torch) is not installed."""


class Cancelled(RuntimeError):
    """The user cancelled the run; partial outputs have been removed."""
