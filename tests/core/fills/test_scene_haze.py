"""The scene fill keeps off the haze its gap mask missed (real SEN12MS-CR sample with hazy cloud
edges): the margin's pixels are read by no fill, are kept as they are, and the log says so;
and the adapted network reads the SAR despeckled."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from osgeo import gdal

from gapfill.core.fills.scene.fill_scene import SceneSettings
from gapfill.core.fills.scene.network import despeckled
from gapfill.core.fills.scene.run import fill_scene_files
from gapfill.core.raster.proximity import distance_to
from rasters import read

HAZY = "5349"  # 6 % cloud, its edges hazy for about 16 px
CLASSICAL = SceneSettings(adapt=False, bundled=False, source_margin=8)


def fill(target: Path, mask: Path, output: Path, settings: SceneSettings):
    return fill_scene_files(str(target), output, gap_mask=str(mask), settings=settings)


def test_the_margin_is_read_by_no_fill_and_keeps_its_values(data_dir, tmp_path):
    target = data_dir / f"sen12mscr/{HAZY}_s2_cloudy.tif"
    mask = data_dir / f"sen12mscr/{HAZY}_cloudmask.tif"
    values, gap = read(target), read(mask)[0] > 0
    near = (distance_to(gap) <= CLASSICAL.source_margin) & ~gap
    changed = values.copy()
    changed[:, near] = 9000  # what a fill reading the margin could not miss
    changed_path = tmp_path / "changed.tif"
    copy = gdal.GetDriverByName("GTiff").CreateCopy(str(changed_path), gdal.Open(str(target)))
    for band in range(copy.RasterCount):
        copy.GetRasterBand(band + 1).WriteArray(changed[band])
    copy = None
    fill(target, mask, tmp_path / "a.tif", CLASSICAL)
    fill(changed_path, mask, tmp_path / "b.tif", CLASSICAL)
    first, second = read(tmp_path / "a.tif"), read(tmp_path / "b.tif")
    np.testing.assert_array_equal(first[:, gap], second[:, gap])
    np.testing.assert_array_equal(second[:, ~gap], changed[:, ~gap])  # the margin's kept too
    assert (second[:, gap] < 9000).all()


def test_the_haze_is_measured_by_default_and_said(data_dir, tmp_path):
    target = data_dir / f"sen12mscr/{HAZY}_s2_cloudy.tif"
    mask = data_dir / f"sen12mscr/{HAZY}_cloudmask.tif"
    measured = fill(target, mask, tmp_path / "m.tif", replace(CLASSICAL, source_margin=None))
    note = next(n for n in measured.notes if n.startswith("Haze around the clouds"))
    assert "grow it by 16 px" in note and measured.source_margin == 16
    every_pixel = fill(target, mask, tmp_path / "0.tif", replace(CLASSICAL, source_margin=0))
    assert not any("Haze" in n for n in every_pixel.notes)
    gap = read(mask)[0] > 0
    kept_off, next_to = read(tmp_path / "m.tif")[:, gap], read(tmp_path / "0.tif")[:, gap]
    assert kept_off.mean() < next_to.mean()  # the hazy edge's brightness is not carried in


def test_the_network_reads_the_sar_despeckled(data_dir):
    """Real S1: the pixel-to-pixel speckle the network would paint as texture is mostly gone,
    the level is kept, and pixels without SAR stay without."""
    sar = read(data_dir / "sen12mscr/4287_s1.tif").astype(np.float64)
    sar[:, :10, :10] = np.nan
    smooth = despeckled(sar)
    assert np.isnan(smooth[:, :10, :10]).all() and np.isfinite(smooth[:, 10:, 10:]).all()
    step = np.nanstd(np.diff(sar, axis=2)), np.nanstd(np.diff(smooth, axis=2))
    assert step[1] < 0.5 * step[0]  # 0.39 measured
    assert abs(np.nanmean(smooth) - np.nanmean(sar)) < 0.05 * abs(np.nanmean(sar))
