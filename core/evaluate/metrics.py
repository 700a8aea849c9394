"""Quality of a fill, measured on evaluation pixels only (pixels whose true value is known).

MAE, RMSE, PSNR, SSIM, bias per band and overall, the spectral angle (SAM) over the bands and the
NDVI error, on values scaled explicitly (Sentinel-2 DN / 10000 clipped to [0, 1] by default, PSNR
with data range 1), the protocol of DSen2-CR and UnCRtainTS, so numbers compare with published
ones. Pure numpy (QGIS's Python may lack scipy); images are streamed through
`MetricsAccumulator` block by block, each block read with an `SSIM_RADIUS` halo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from ..errors import GapfillError

if TYPE_CHECKING:
    from ..raster.access import Window

SSIM_SIGMA = 1.5
SSIM_RADIUS = int(3.5 * SSIM_SIGMA + 0.5)  # 5: the 11×11 window of Wang et al. and scikit-image
SSIM_K1, SSIM_K2 = 0.01, 0.03
SSIM_CELL = 128  # px: SSIM is mapped cell by cell (`ssim_sum`)


@dataclass(frozen=True)
class Scaling:
    """How stored values become the compared values: (value + offset) / divisor, then clipped."""

    divisor: float = 10000.0
    offset: float = 0.0
    clip: tuple[float, float] | None = (0.0, 1.0)

    def apply(self, values: np.ndarray) -> np.ndarray:
        """Scaled float64 copy; non-finite values (no data) stay non-finite."""
        scaled = (np.asarray(values, dtype=np.float64) + self.offset) / self.divisor
        return scaled if self.clip is None else np.clip(scaled, *self.clip)

    def describe(self) -> str:
        """The scaling in words, written next to every result."""
        if self.divisor == 1 and self.offset == 0 and self.clip is None:
            return "values as stored (no scaling)"
        sign = "+" if self.offset >= 0 else "-"
        value = f"(DN {sign} {abs(self.offset):g})" if self.offset else "DN"
        text = f"{value} / {self.divisor:g}"
        if self.clip is not None:
            text += f", clipped to [{self.clip[0]:g}, {self.clip[1]:g}]"
        return text


SENTINEL2_REFLECTANCE = Scaling()
SENTINEL2_L2A_OFFSET = Scaling(offset=-1000.0)  # L2A from processing baseline 04.00
NO_SCALING = Scaling(divisor=1.0, clip=None)
SCALING_PRESETS = {  # by the names the command line takes
    "sentinel2": SENTINEL2_REFLECTANCE,
    "sentinel2-l2a-offset": SENTINEL2_L2A_OFFSET,
    "none": NO_SCALING,
}


@dataclass(frozen=True)
class BandMetrics:
    """Metrics of one band (1-based `band`) over its `evaluated` pixels."""

    band: int
    evaluated: int
    unfilled: int
    mae: float
    rmse: float
    psnr: float
    ssim: float
    bias: float


@dataclass(frozen=True)
class Metrics:
    """Overall metrics, pooled over every evaluated band value, and the per-band ones.

    `psnr` is `inf` for a perfect fill; a metric is `nan` when nothing could be measured (no
    evaluation pixel was filled) and `None` when it does not apply (SAM of one band, NDVI not
    asked for). `evaluated` and `unfilled` count band values (pixels × bands).
    """

    evaluated: int
    unfilled: int
    mae: float
    rmse: float
    psnr: float
    ssim: float
    bias: float
    sam: float | None
    ndvi_mae: float | None
    data_range: float
    scaling: str
    bands: tuple[BandMetrics, ...]

    @property
    def filled_fraction(self) -> float:
        """Share of the evaluation band values the fill gave a value to."""
        return self.evaluated / (self.evaluated + self.unfilled)


def gaussian_kernel(sigma: float = SSIM_SIGMA, radius: int = SSIM_RADIUS) -> np.ndarray:
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    weights = np.exp(-0.5 * (offsets / sigma) ** 2)
    return weights / weights.sum()


def _blur_rows(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    radius = len(kernel) // 2
    padded = np.pad(image, ((radius, radius), (0, 0)), mode="symmetric")
    out = np.zeros_like(image)
    for offset, weight in enumerate(kernel):
        out += weight * padded[offset : offset + image.shape[0]]
    return out


def gaussian_filter(
    image: np.ndarray, sigma: float = SSIM_SIGMA, radius: int = SSIM_RADIUS
) -> np.ndarray:
    """Separable Gaussian blur of a 2-D array, mirrored at the borders like scipy.ndimage's
    'reflect' mode, so SSIM matches scikit-image without needing scipy."""
    kernel = gaussian_kernel(sigma, radius)
    blurred = _blur_rows(np.asarray(image, dtype=np.float64), kernel)
    return _blur_rows(blurred.T, kernel).T


def ssim_map(reference: np.ndarray, filled: np.ndarray, data_range: float = 1.0) -> np.ndarray:
    """SSIM of each pixel of two 2-D arrays (Gaussian window σ 1.5, population covariance).

    Non-finite pixels (no data) are left out of every window and get `nan`; with none, this is
    scikit-image's `structural_similarity(..., gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, full=True)` map.
    """
    valid = np.isfinite(reference) & np.isfinite(filled)
    x = np.where(valid, reference, 0.0)
    y = np.where(valid, filled, 0.0)
    weight = gaussian_filter(valid.astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):

        def local_mean(values: np.ndarray) -> np.ndarray:
            return gaussian_filter(values) / weight

        mean_x, mean_y = local_mean(x), local_mean(y)
        var_x = local_mean(x * x) - mean_x * mean_x
        var_y = local_mean(y * y) - mean_y * mean_y
        cov = local_mean(x * y) - mean_x * mean_y
        c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
        ssim = ((2 * mean_x * mean_y + c1) * (2 * cov + c2)) / (
            (mean_x**2 + mean_y**2 + c1) * (var_x + var_y + c2)
        )
    return np.where(valid, ssim, np.nan)


def ssim_sum(
    reference: np.ndarray, filled: np.ndarray, where: np.ndarray, data_range: float = 1.0,
    origin: tuple[int, int] = (0, 0),
) -> float:
    """Sum of the SSIM map of two 2-D arrays over `where`, a mask of the region starting at
    `origin` (row, column). Mapped cell by cell (SSIM_CELL px with the window's reach around
    each), only where a cell holds such pixels: the whole map's values, for the share of its
    cost that sparse pixels need (the scene fill's report blocks: several times less), and
    faster even where every cell does (the cells stay in cache)."""
    height, width = where.shape
    top, left = origin
    total = 0.0
    for row in range(0, height, SSIM_CELL):
        for col in range(0, width, SSIM_CELL):
            part = where[row : row + SSIM_CELL, col : col + SSIM_CELL]
            if not part.any():
                continue
            y, x = top + row, left + col
            y0, x0 = max(0, y - SSIM_RADIUS), max(0, x - SSIM_RADIUS)
            y1 = min(reference.shape[0], y + part.shape[0] + SSIM_RADIUS)
            x1 = min(reference.shape[1], x + part.shape[1] + SSIM_RADIUS)
            mapped = ssim_map(reference[y0:y1, x0:x1], filled[y0:y1, x0:x1], data_range)
            inner = mapped[y - y0 : y - y0 + part.shape[0], x - x0 : x - x0 + part.shape[1]]
            total += float(inner[part].sum())
    return total


def spectral_angle(reference: np.ndarray, filled: np.ndarray) -> np.ndarray:
    """Angle in degrees between the spectra (axis 0) of each pixel.

    Kahan's formula 2·atan2(|u − v|, |u + v|) on unit vectors stays exact for identical spectra,
    where arccos of the cosine does not. A zero spectrum is at 0° from another zero spectrum and
    at 90° from any other.
    """
    norm_r = np.linalg.norm(reference, axis=0)
    norm_f = np.linalg.norm(filled, axis=0)
    zero_r, zero_f = norm_r == 0, norm_f == 0
    unit_r = reference / np.where(zero_r, 1.0, norm_r)
    unit_f = filled / np.where(zero_f, 1.0, norm_f)
    angle = 2 * np.arctan2(
        np.linalg.norm(unit_r - unit_f, axis=0), np.linalg.norm(unit_r + unit_f, axis=0)
    )
    angle = np.where(zero_r | zero_f, np.where(zero_r & zero_f, 0.0, np.pi / 2), angle)
    return np.degrees(angle)


def ndvi(red: np.ndarray, nir: np.ndarray) -> np.ndarray:
    """(NIR − red) / (NIR + red); 0 where both are 0 (no signal)."""
    total = nir + red
    return np.divide(nir - red, total, out=np.zeros(total.shape), where=total != 0)


def psnr(mse: float, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB; `inf` for a perfect fill (MSE 0)."""
    if mse == 0:
        return math.inf
    return 10 * math.log10(data_range**2 / mse)


def _mean(total: float, count: int) -> float:
    return total / count if count else math.nan


class MetricsAccumulator:
    """Sums of errors over evaluation pixels, fed block by block, turned into `Metrics`.

    Each block may carry a halo around the `inner` window whose pixels are counted, so SSIM sees
    the same neighbours as on the whole image: read blocks with a halo of `SSIM_RADIUS`.
    """

    def __init__(
        self,
        bands: int,
        *,
        scaling: Scaling = SENTINEL2_REFLECTANCE,
        data_range: float = 1.0,
        ndvi_bands: tuple[int, int] | None = None,
        ssim: bool = True,
    ) -> None:
        """`ndvi_bands` are the 0-based indices of the red and near-infrared bands; without
        `ssim` (the costliest metric) SSIM is NaN, for choices made on the other metrics."""
        if not data_range > 0:
            raise GapfillError(f"The data range must be positive (got {data_range}).")
        if ndvi_bands is not None and (
            len(set(ndvi_bands)) != 2 or not all(0 <= b < bands for b in ndvi_bands)
        ):
            raise GapfillError(
                f"The NDVI needs two different bands among the {bands} bands (0-based red and "
                f"near-infrared indices); got {ndvi_bands}."
            )
        self.bands = bands
        self.scaling = scaling
        self.data_range = data_range
        self.ndvi_bands = ndvi_bands
        self.with_ssim = ssim
        self.evaluated = np.zeros(bands, dtype=np.int64)
        self.unfilled = np.zeros(bands, dtype=np.int64)
        self.abs_sum = np.zeros(bands)
        self.square_sum = np.zeros(bands)
        self.signed_sum = np.zeros(bands)
        self.ssim_sum = np.zeros(bands)
        self.sam_sum, self.sam_count = 0.0, 0
        self.ndvi_sum, self.ndvi_count = 0.0, 0

    def add(
        self,
        reference: np.ndarray,
        filled: np.ndarray,
        evaluation: np.ndarray,
        inner: Window | None = None,
    ) -> None:
        """Count one block: (bands, h, w) images as stored (or (h, w) for one band) and an
        evaluation mask, (h, w) or per band (bands, h, w), 1 (True) = evaluate, anything else
        (0, 255 outside) = not. Filled values that are not finite count as unfilled."""
        reference = self._image(reference, "reference")
        filled = self._image(filled, "filled image")
        if filled.shape != reference.shape:
            raise GapfillError(
                f"The filled image ({_shape_text(filled.shape)}) and the reference "
                f"({_shape_text(reference.shape)}) differ; compare images of the same grid and "
                "bands."
            )
        evaluate = np.broadcast_to(self._mask(evaluation, reference.shape), reference.shape)
        x, y, w, h = inner or (0, 0, reference.shape[2], reference.shape[1])
        core = (slice(None), slice(y, y + h), slice(x, x + w))
        evaluate = evaluate[core]
        ref, fil = reference[core], filled[core]
        missing = evaluate & ~np.isfinite(ref)
        if missing.any():
            raise GapfillError(
                f"The reference has no data at {int(missing.sum())} evaluation pixel value(s); "
                "evaluate only pixels whose true value is known."
            )
        done = evaluate & np.isfinite(fil)
        self.unfilled += (evaluate & ~done).sum(axis=(1, 2))
        self.evaluated += done.sum(axis=(1, 2))
        error = np.where(done, fil - ref, 0.0)
        self.abs_sum += np.abs(error).sum(axis=(1, 2))
        self.square_sum += (error**2).sum(axis=(1, 2))
        self.signed_sum += error.sum(axis=(1, 2))
        for band in np.flatnonzero(done.any(axis=(1, 2))) if self.with_ssim else ():
            self.ssim_sum[band] += ssim_sum(
                reference[band], filled[band], done[band], self.data_range, (y, x)
            )
        if self.bands > 1:
            every = done.all(axis=0)
            self.sam_sum += spectral_angle(ref[:, every], fil[:, every]).sum()
            self.sam_count += int(every.sum())
        if self.ndvi_bands is not None:
            red, nir = self.ndvi_bands
            both = done[red] & done[nir]
            change = ndvi(fil[red][both], fil[nir][both]) - ndvi(ref[red][both], ref[nir][both])
            self.ndvi_sum += np.abs(change).sum()
            self.ndvi_count += int(both.sum())

    def result(self) -> Metrics:
        """The metrics so far; raises when the evaluation mask selected no pixel at all."""
        evaluated, unfilled = int(self.evaluated.sum()), int(self.unfilled.sum())
        if evaluated + unfilled == 0:
            raise GapfillError(
                "The evaluation mask selects no pixel (1 = evaluate), so there is nothing to "
                "measure. Give the mask of the pixels that were removed and whose true value is "
                "known."
            )
        bands = tuple(
            BandMetrics(
                band=index + 1,
                evaluated=int(self.evaluated[index]),
                unfilled=int(self.unfilled[index]),
                **self._summary(
                    self.evaluated[index],
                    self.abs_sum[index],
                    self.square_sum[index],
                    self.signed_sum[index],
                    self.ssim_sum[index],
                ),
            )
            for index in range(self.bands)
        )
        if not self.with_ssim:
            bands = tuple(replace(band, ssim=math.nan) for band in bands)
        overall = self._summary(
            evaluated,
            self.abs_sum.sum(),
            self.square_sum.sum(),
            self.signed_sum.sum(),
            self.ssim_sum.sum(),
        )
        return Metrics(
            evaluated=evaluated,
            unfilled=unfilled,
            **overall,
            sam=_mean(self.sam_sum, self.sam_count) if self.bands > 1 else None,
            ndvi_mae=None if self.ndvi_bands is None else _mean(self.ndvi_sum, self.ndvi_count),
            data_range=self.data_range,
            scaling=self.scaling.describe(),
            bands=bands,
        )

    def _summary(
        self, count: int, abs_sum: float, square_sum: float, signed_sum: float, ssim_sum: float
    ) -> dict[str, float]:
        mse = _mean(square_sum, count)
        return {
            "mae": _mean(abs_sum, count),
            "rmse": math.sqrt(mse),
            "psnr": psnr(mse, self.data_range),
            "ssim": _mean(ssim_sum, count) if self.with_ssim else math.nan,
            "bias": _mean(signed_sum, count),
        }

    def _image(self, values: np.ndarray, role: str) -> np.ndarray:
        array = np.asarray(values)
        if array.ndim == 2:
            array = array[np.newaxis]
        if array.ndim != 3 or array.shape[0] != self.bands:
            raise GapfillError(
                f"The {role} ({_shape_text(array.shape)}) does not have the {self.bands} band(s) "
                "being evaluated; give (bands, height, width) images with the same bands."
            )
        return self.scaling.apply(array)

    @staticmethod
    def _mask(evaluation: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        mask = np.asarray(evaluation)
        if mask.shape not in (shape[1:], shape):
            raise GapfillError(
                f"The evaluation mask ({_shape_text(mask.shape)}) does not match the images "
                f"({_shape_text(shape)}); it must be on the same grid, with one band or one per "
                "band."
            )
        return mask == 1


def _shape_text(shape: tuple[int, ...]) -> str:
    """'13 bands of 256×256 px' for (13, 256, 256), width first as GIS users say it."""
    if len(shape) == 3:
        return f"{shape[0]} band(s) of {shape[2]}×{shape[1]} px"
    if len(shape) == 2:
        return f"{shape[1]}×{shape[0]} px"
    return f"shape {shape}"


def evaluate(
    reference: np.ndarray,
    filled: np.ndarray,
    evaluation: np.ndarray,
    *,
    scaling: Scaling = SENTINEL2_REFLECTANCE,
    data_range: float = 1.0,
    ndvi_bands: tuple[int, int] | None = None,
) -> Metrics:
    """Metrics of a whole image held in memory; see `MetricsAccumulator.add` for the inputs."""
    bands = np.shape(reference)[0] if np.ndim(reference) == 3 else 1
    accumulator = MetricsAccumulator(
        bands, scaling=scaling, data_range=data_range, ndvi_bands=ndvi_bands
    )
    accumulator.add(reference, filled, evaluation)
    return accumulator.result()
