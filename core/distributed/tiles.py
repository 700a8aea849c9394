"""One image larger than a machine, filled as tiles on several: the plan of tiles, the sum of
their reports, and the mosaic written from them (a VRT of the tiles, or one cloud-optimised
GeoTIFF).

A tile is a window of the image's block grid, filled by the fill engine exactly as in a
whole-image run: the same blocks, each read with the fill's own halo (the spatial fill's
search distance, `pyramid_fill.pyramid_halo`, the histogram window) from the whole image, so
the mosaic's pixels are those of the one-machine result, bit for bit.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from osgeo import gdal

from ..errors import GapfillError
from ..raster.access import Window, quiet_gdal
from ..raster.fill_engine import FillReport
from ..raster.output import atomic_path, has_zstd

TILE_MULTIPLE = 1024  # every fill's block size divides it (512 or 1024; the pyramid's ≤ 1024
# for search distances up to 1024 px, whose coarsest cell is then at most 1024)


def check_tile_size(size: int) -> int:
    if size < 0 or size % TILE_MULTIPLE:
        raise GapfillError(
            f"The tile size {size} is not a multiple of {TILE_MULTIPLE} pixels: a tile must be "
            f"made of whole blocks of the fills. Give 0 (no tiling) or a multiple of "
            f"{TILE_MULTIPLE}, e.g. 4096."
        )
    return size


def tile_plan(width: int, height: int, size: int) -> dict[str, Window]:
    """Tiles of `size`×`size` pixels (the last row and column clipped), by name."""
    return {
        f"r{y // size:03d}c{x // size:03d}": (x, y, min(size, width - x), min(size, height - y))
        for y in range(0, height, size)
        for x in range(0, width, size)
    }


def is_vrt(output: str) -> bool:
    return Path(output).suffix.lower() == ".vrt"


def tiles_folder(output: str) -> Path:
    """Where the tiles of `output` are written: beside a VRT, which reads them (kept); hidden
    beside a GeoTIFF, which copies them (removed once it is written)."""
    path = Path(output)
    if is_vrt(output):
        return path.with_name(f"{path.stem}.tiles")
    return path.with_name(f".{path.stem}.tiles.partial")


def tile_path(output: str, name: str) -> str:
    return str(tiles_folder(output) / f"{name}.tif")


def merge_reports(reports: list[FillReport]) -> FillReport:
    """The report of the whole image from its tiles' (messages once each)."""
    merged = FillReport(clear_required=any(report.clear_required for report in reports))
    for report in reports:
        merged.pixels += report.pixels
        merged.gaps += report.gaps
        merged.filled += report.filled
        merged.clear += report.clear
        merged.messages += [m for m in report.messages if m not in merged.messages]
    return merged


def write_mosaic(tiles: list[str], output: str) -> None:
    """The tiles as one raster: a VRT (for `.vrt` outputs) or a cloud-optimised GeoTIFF with
    overviews, written only when complete."""
    vrt = output if is_vrt(output) else str(tiles_folder(output) / "mosaic.vrt")
    with atomic_path(vrt) as temporary:
        build_vrt(tiles, temporary)
    if not is_vrt(output):
        write_cog(vrt, output)


def build_vrt(tiles: list[str], path: Path) -> None:
    """A VRT of the tiles (paths relative to it), with their band descriptions and no-data."""
    first = gdal.Open(tiles[0])
    descriptions = [first.GetRasterBand(i + 1).GetDescription() for i in range(first.RasterCount)]
    nodata = first.GetRasterBand(1).GetNoDataValue()
    first = None
    options = gdal.BuildVRTOptions(  # tiles never overlap: plain copies, no masking by no-data
        srcNodata="None", VRTNodata="None" if nodata is None else repr(float(nodata))
    )
    with quiet_gdal():
        mosaic = gdal.BuildVRT(str(path), tiles, options=options)
    if mosaic is None:
        raise GapfillError(f"The tiles {tiles[0]}… cannot be put together into one raster: "
                           f"{gdal.GetLastErrorMsg()}")
    for index, description in enumerate(descriptions, start=1):
        mosaic.GetRasterBand(index).SetDescription(description)
    mosaic = None


def cog_options() -> list[str]:
    compression = ["COMPRESS=ZSTD", "LEVEL=1"] if has_zstd() else ["COMPRESS=DEFLATE", "LEVEL=1"]
    return [*compression, "PREDICTOR=YES", "BLOCKSIZE=256", "BIGTIFF=IF_SAFER",
            "OVERVIEWS=AUTO", "RESAMPLING=AVERAGE"]


def write_cog(vrt: str, output: str) -> None:
    with atomic_path(output) as temporary:
        with quiet_gdal():
            gdal.ErrorReset()
            written = gdal.Translate(
                str(temporary), vrt, options=gdal.TranslateOptions(
                    format="COG", creationOptions=cog_options()
                ),
            )
            message = gdal.GetLastErrorMsg()
        if written is None:
            raise GapfillError(f"Writing the mosaic '{output}' failed: {message}")
        written = None


def remove_tiles(output: str) -> None:
    shutil.rmtree(tiles_folder(output), ignore_errors=True)
