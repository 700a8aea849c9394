"""Large benchmark inputs tiled from the real 256×256 samples, built by strips of tiles.

Each 256×256 sample is laid out as a grid of tiles, each flipped up-down and/or left-right by a
seeded draw so that the mosaic is not trivially periodic. Every date and the gap mask share the
same flips, so the inputs stay co-registered. One strip of tiles (bands × 256 × size) is in
memory at a time, never the whole image. A mosaic already on disk is reused when it was built
from the same sample pixels with the same size, tiles and seed (a tag in its metadata says so).
"""

from __future__ import annotations

import os
import tempfile
import zlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
from osgeo import gdal, osr

from harness import data_folder

TILE = 256
SEED = 2018
EPSG = 32633  # UTM 33N, where the sen12mscr_ts patch (near Rome) lies
PIXEL = 10.0
IMAGE_NODATA = 0  # Sentinel-2 convention; the samples hold no zero
MASK_NODATA = 255
TAG = "GAPFILL_BENCH_MOSAIC"
TIME_SERIES = "sen12mscr_ts"
TARGET_DATE = date(2018, 9, 18)  # about half of it under real clouds
OTHER_DATES = (date(2018, 9, 3), date(2018, 9, 28))


@dataclass(frozen=True)
class MosaicSet:
    """The benchmark inputs of one size: target, its gap mask and the other dates."""

    size: int
    target: Path
    mask: Path
    others: tuple[Path, ...]
    target_date: date = TARGET_DATE
    other_dates: tuple[date, ...] = OTHER_DATES

    @classmethod
    def in_folder(cls, folder: Path, size: int) -> MosaicSet:
        """Where the inputs of `size` live (or will be built) in `folder`."""
        named = folder / f"mosaic-{size}"
        return cls(
            size,
            named / f"s2_{TARGET_DATE}.tif",
            named / f"gap_mask_{TARGET_DATE}.tif",
            tuple(named / f"s2_{when}.tif" for when in OTHER_DATES),
        )

    @property
    def paths(self) -> tuple[Path, ...]:
        return (self.target, self.mask, *self.others)


def flip_plan(tiles: int, seed: int = SEED) -> np.ndarray:
    """(tiles, tiles, 2) booleans: flip each tile up-down, left-right."""
    return np.random.default_rng(seed).integers(0, 2, size=(tiles, tiles, 2)).astype(bool)


def utm_origin(sample: gdal.Dataset) -> tuple[float, float]:
    """The sample's upper-left corner in EPSG:32633, snapped to the 10 m grid."""
    source, target = osr.SpatialReference(), osr.SpatialReference()
    source.ImportFromWkt(sample.GetProjection())
    target.ImportFromEPSG(EPSG)
    for srs in (source, target):
        srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    x0, _, _, y0, _, _ = sample.GetGeoTransform()
    x, y, _ = osr.CoordinateTransformation(source, target).TransformPoint(x0, y0)
    return round(x / PIXEL) * PIXEL, round(y / PIXEL) * PIXEL


def strip(sample: np.ndarray, flips: np.ndarray, size: int) -> np.ndarray:
    """One row of flipped tiles, (bands, rows, size)."""
    tiles = []
    for flip_y, flip_x in flips:
        tile = sample[:, ::-1] if flip_y else sample
        tiles.append(tile[:, :, ::-1] if flip_x else tile)
    return np.concatenate(tiles, axis=2)[:, :, :size]


def tile_mosaic(
    source: Path, output: Path, size: int, origin: tuple[float, float], nodata: int,
    options: list[str],
) -> None:
    """Write `source` (256×256) tiled into a size×size GeoTIFF `output`, unless already there."""
    sample = gdal.Open(str(source))
    pixels = sample.ReadAsArray()
    pixels = pixels.reshape(-1, *pixels.shape[-2:])
    signature = f"{source.name} crc32={zlib.crc32(pixels.tobytes())} tile={TILE} seed={SEED}"
    existing = gdal.Open(str(output)) if output.exists() else None
    if existing is not None and existing.RasterXSize == existing.RasterYSize == size:
        if existing.GetMetadataItem(TAG) == signature:
            return
    existing = None
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.stem}.partial.tif")
    bands = pixels.shape[0]
    data_type = sample.GetRasterBand(1).DataType
    mosaic = gdal.GetDriverByName("GTiff").Create(
        str(partial), size, size, bands, data_type, options
    )
    mosaic.SetGeoTransform((origin[0], PIXEL, 0.0, origin[1], 0.0, -PIXEL))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(EPSG)
    mosaic.SetProjection(srs.ExportToWkt())
    for index in range(1, bands + 1):
        band = mosaic.GetRasterBand(index)
        band.SetNoDataValue(nodata)
        band.SetDescription(sample.GetRasterBand(index).GetDescription())
    tiles = -(-size // TILE)
    plan = flip_plan(tiles)
    for row in range(tiles):
        block = strip(pixels, plan[row], size)[:, : size - row * TILE]
        mosaic.WriteArray(block, 0, row * TILE)
    mosaic.SetMetadataItem(TAG, signature)
    mosaic = None
    os.replace(partial, output)


def build_mosaics(folder: Path, size: int) -> MosaicSet:
    """Build (or reuse) the target, gap mask and other dates of `size` in `folder`."""
    from gapfill.core.masks.gap_mask import MaskSettings, build_gap_mask
    from gapfill.core.raster.output import creation_options

    series = data_folder(TIME_SERIES) / TIME_SERIES
    inputs = MosaicSet.in_folder(folder, size)
    target_sample = series / f"s2_{TARGET_DATE}.tif"
    origin = utm_origin(gdal.Open(str(target_sample)))
    image_options = creation_options(np.dtype(np.uint16), compatible=True)
    sources = [target_sample, *(series / f"s2_{when}.tif" for when in OTHER_DATES)]
    for source, output in zip(sources, (inputs.target, *inputs.others), strict=True):
        tile_mosaic(source, output, size, origin, IMAGE_NODATA, image_options)
    with tempfile.TemporaryDirectory() as scratch:
        sample_mask = Path(scratch) / inputs.mask.name
        build_gap_mask(str(target_sample), sample_mask, MaskSettings(method="spectral"))
        tile_mosaic(
            sample_mask, inputs.mask, size, origin, MASK_NODATA,
            creation_options(np.dtype(np.uint8), compatible=True),
        )
    return inputs
