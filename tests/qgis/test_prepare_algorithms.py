"""The training-data algorithms through processing.run on the real time series.

The algorithm instances are run directly, so these tests need no provider registration.
"""

import csv
import json

import numpy as np
import processing
import pytest
from osgeo import gdal
from patch_inputs import CLOUDY, EARLIER, build_mask, date
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFeature,
    QgsGeometry,
    QgsProcessingException,
    QgsProject,
    QgsRectangle,
    QgsVectorLayer,
)

from gapfill.algorithms.extract_patches import ExtractPatches
from gapfill.algorithms.raster_statistics import ComputeStatistics
from gapfill.algorithms.sample_patches import SamplePatches
from gapfill.algorithms.scale_raster import ScaleRaster
from gapfill.algorithms.unscale_raster import UnscaleRaster
from gapfill.core.prepare.patch_dataset import open_arrays, read_locations, read_manifest
from gapfill.core.raster.access import Grid
from rasters import read, same_georeference

UTM = QgsCoordinateReferenceSystem("EPSG:32633")


@pytest.fixture(scope="module")
def mask(provider, data_dir, tmp_path_factory):
    return build_mask(data_dir, tmp_path_factory.mktemp("mask"))


@pytest.fixture(scope="module")
def sampled(mask, data_dir, tmp_path_factory):
    """Patch centres of 32 px, at most 30 % gaps, split by spatial blocks."""
    output = tmp_path_factory.mktemp("points") / "points.gpkg"
    return processing.run(
        SamplePatches(),
        {
            "INPUT": str(date(data_dir, CLOUDY)),
            "GAP_MASK": str(mask),
            "SOURCES": [str(date(data_dir, EARLIER))],
            "PATCH_SIZE": 32,
            "MAX_GAP_FRACTION": 0.3,
            "SPLIT": 1,
            "BLOCK_PATCHES": 2,
            "VALIDATION_FRACTION": 0.3,
            "OUTPUT": str(output),
        },
    )


def memory_layer(kind: str, crs: QgsCoordinateReferenceSystem, geometries, fields=""):
    layer = QgsVectorLayer(f"{kind}?crs={crs.authid()}{fields}", "drawn", "memory")
    features = []
    for geometry, attributes in geometries:
        feature = QgsFeature(layer.fields())
        feature.setGeometry(geometry)
        feature.setAttributes(attributes)
        features.append(feature)
    layer.dataProvider().addFeatures(features)
    return layer


def to_utm(layer: QgsVectorLayer) -> QgsVectorLayer:
    """The same points in UTM 33N, with their attributes."""
    transform = QgsCoordinateTransform(layer.crs(), UTM, QgsProject.instance())
    moved = []
    for feature in layer.getFeatures():
        geometry = QgsGeometry(feature.geometry())
        geometry.transform(transform)
        moved.append((geometry, feature.attributes()[1:]))
    fields = "&field=id:integer&field=split:string&field=gap_fraction:double" \
        "&field=valid_fraction:double&field=patch_size:integer&field=split_method:string"
    return memory_layer("Point", UTM, moved, fields)


def test_statistics_json_and_table(mask, data_dir, tmp_path):
    result = processing.run(
        ComputeStatistics(),
        {
            "INPUT": str(date(data_dir, CLOUDY)),
            "GAP_MASK": str(mask),
            "PERCENTILES": "2, 50, 98",
            "OUTPUT": str(tmp_path / "stats.json"),
            "OUTPUT_TABLE": str(tmp_path / "stats.csv"),
        },
    )
    document = json.loads((tmp_path / "stats.json").read_text())
    clear = (read(mask)[0] == 0)
    blue = read(date(data_dir, CLOUDY))[1][clear].astype(float)
    band = document["bands"][1]
    assert band["count"] == clear.sum() and band["mean"] == pytest.approx(blue.mean())
    assert band["percentiles"]["50"] == np.percentile(blue, 50)
    with open(result["OUTPUT_TABLE"], newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 13 and rows[1]["name"] == "B2"
    assert float(rows[1]["p98"]) == pytest.approx(band["percentiles"]["98"])


def test_scale_and_unscale_round_trip(data_dir, tmp_path):
    source = date(data_dir, CLOUDY)
    statistics = processing.run(
        ComputeStatistics(), {"INPUT": str(source), "OUTPUT": str(tmp_path / "stats.json")}
    )["OUTPUT"]
    scaled = processing.run(
        ScaleRaster(),
        {"INPUT": str(source), "STATISTICS": statistics, "METHOD": "minmax",
         "OUTPUT": str(tmp_path / "scaled.tif")},
    )["OUTPUT"]
    assert read(scaled).dtype == np.float32 and read(scaled).max() == 1
    restored = processing.run(
        UnscaleRaster(), {"INPUT": scaled, "OUTPUT": str(tmp_path / "restored.tif")}
    )["OUTPUT"]
    np.testing.assert_array_equal(read(restored), read(source))
    assert same_georeference(restored, source)
    by_number = processing.run(  # the option's number, as `qgis_process help` offers it
        ScaleRaster(),
        {"INPUT": str(source), "STATISTICS": statistics, "METHOD": 0,
         "OUTPUT": str(tmp_path / "by_number.tif")},
    )["OUTPUT"]
    np.testing.assert_array_equal(read(by_number), read(scaled))


def test_scale_refuses_ambiguous_or_unknown_sources(data_dir, tmp_path):
    base = {"INPUT": str(date(data_dir, CLOUDY)), "OUTPUT": str(tmp_path / "out.tif")}
    with pytest.raises(QgsProcessingException, match="exactly one source of scaling"):
        processing.run(ScaleRaster(), base)
    with pytest.raises(QgsProcessingException, match="Unknown scaling preset 'landsat'"):
        processing.run(ScaleRaster(), {**base, "PRESET": "landsat"})


def test_sampled_points_layer(sampled, data_dir):
    layer = QgsVectorLayer(sampled["OUTPUT"], "points", "ogr")
    assert layer.crs().authid() == "EPSG:4326"
    assert layer.featureCount() == sampled["TRAIN_COUNT"] + sampled["VALIDATION_COUNT"]
    assert sampled["SPLIT_METHOD"] == "blocks" and sampled["VALIDATION_COUNT"] > 0
    names = layer.fields().names()
    assert {"id", "split", "gap_fraction", "valid_fraction", "patch_size"} <= set(names)
    for feature in layer.getFeatures():
        assert feature["gap_fraction"] <= 0.3 and feature["patch_size"] == 32
        assert feature["split"] in ("train", "validation")


def test_drawn_polygons_and_area_of_interest_in_another_crs(data_dir, tmp_path):
    """Locations drawn as UTM polygons (centroids), an AOI in UTM: both reprojected."""
    target = date(data_dir, CLOUDY)
    grid = Grid.of(gdal.Open(str(target)))
    xmin, ymin, xmax, ymax = grid.bounds
    wgs84 = QgsCoordinateReferenceSystem("EPSG:4326")
    transform = QgsCoordinateTransform(wgs84, UTM, QgsProject.instance())
    whole = QgsGeometry.fromRect(QgsRectangle(xmin, ymin, xmax, ymax))
    left = QgsGeometry.fromRect(QgsRectangle(xmin, ymin, (xmin + xmax) / 2, ymax))
    for geometry in (whole, left):
        geometry.transform(transform)
    small = [QgsGeometry(whole.centroid().buffer(30, 4))]
    drawn = memory_layer("Polygon", UTM, [(g, []) for g in small])
    result = processing.run(
        SamplePatches(),
        {"INPUT": str(target), "LOCATIONS": drawn, "PATCH_SIZE": 16, "VALIDATION_FRACTION": 0,
         "OUTPUT": str(tmp_path / "drawn.gpkg")},
    )
    points = list(QgsVectorLayer(result["OUTPUT"]).getFeatures())
    assert len(points) == 1
    centre = points[0].geometry().asPoint()
    assert centre.x() == pytest.approx((xmin + xmax) / 2, abs=2 * grid.geotransform[1])
    aoi = memory_layer("Polygon", UTM, [(left, [])])
    result = processing.run(
        SamplePatches(),
        {"INPUT": str(target), "AOI": aoi, "PATCH_SIZE": 32, "OUTPUT": str(tmp_path / "aoi.gpkg")},
    )
    xs = [f.geometry().asPoint().x() for f in QgsVectorLayer(result["OUTPUT"]).getFeatures()]
    assert xs and max(xs) < (xmin + xmax) / 2
    with pytest.raises(QgsProcessingException, match="area of interest layer has no polygon"):
        processing.run(SamplePatches(), {  # an empty AOI would otherwise mean everywhere
            "INPUT": str(target), "AOI": memory_layer("Polygon", UTM, []), "PATCH_SIZE": 32,
            "OUTPUT": str(tmp_path / "empty.gpkg")})
    assert not (tmp_path / "empty.gpkg").exists()


def test_extract_from_points_in_another_crs(sampled, mask, data_dir, tmp_path):
    layer = QgsVectorLayer(sampled["OUTPUT"], "points", "ogr")
    parameters = {
        "INPUT": str(date(data_dir, CLOUDY)),
        "GAP_MASK": str(mask),
        "OPTICAL_BEFORE": str(date(data_dir, EARLIER)),
        "PATCH_SIZE": 32,
    }
    native = processing.run(
        ExtractPatches(), {**parameters, "POINTS": layer, "OUTPUT": str(tmp_path / "native")}
    )
    moved = processing.run(
        ExtractPatches(),
        {**parameters, "POINTS": to_utm(layer), "OUTPUT": str(tmp_path / "moved")},
    )
    assert native["TRAIN_COUNT"] == sampled["TRAIN_COUNT"] == moved["TRAIN_COUNT"]
    assert native["VALIDATION_COUNT"] == sampled["VALIDATION_COUNT"]
    assert native["SKIPPED_COUNT"] == 0
    assert read_locations(native["OUTPUT"]) == read_locations(moved["OUTPUT"])
    first, second = (open_arrays(r["OUTPUT"], "validation") for r in (native, moved))
    np.testing.assert_array_equal(first["optical_before"], second["optical_before"])
    manifest = read_manifest(native["OUTPUT"])
    assert manifest.split_method == "blocks"
    assert set(manifest.roles) == {"target", "gap_mask", "optical_before"}


def test_extract_refuses_a_non_empty_folder(sampled, data_dir, tmp_path):
    folder = tmp_path / "dataset"
    folder.mkdir()
    (folder / "old.txt").write_text("keep")
    parameters = {"INPUT": str(date(data_dir, CLOUDY)), "POINTS": sampled["OUTPUT"],
                  "PATCH_SIZE": 32, "OUTPUT": str(folder)}
    with pytest.raises(QgsProcessingException, match="not empty"):
        processing.run(ExtractPatches(), parameters)
    result = processing.run(ExtractPatches(), {**parameters, "OVERWRITE": True})
    assert result["TRAIN_COUNT"] > 0 and (folder / "old.txt").exists()


def test_rasters_that_do_not_overlap(data_dir, tmp_path):
    with pytest.raises(QgsProcessingException, match="does not overlap"):
        processing.run(
            SamplePatches(),
            {"INPUT": str(date(data_dir, CLOUDY)),
             "SOURCES": [str(data_dir / "eolearn_slovenia" / "dem.tif")], "OUTPUT": "memory:"},
        )


def test_extract_refuses_another_date_on_another_scale(sampled, data_dir, tmp_path):
    """A reference or another date in reflectance 0–1 beside a target in digital numbers
    would teach a network the change of scale: refused before any patch is written."""
    reflectance = tmp_path / "reflectance.tif"
    gdal.Translate(str(reflectance), str(date(data_dir, EARLIER)), outputType=gdal.GDT_Float32,
                   scaleParams=[[0, 10000, 0, 1]])
    for role in ("REFERENCE", "OPTICAL_BEFORE"):
        with pytest.raises(QgsProcessingException, match="on different scales"):
            processing.run(ExtractPatches(), {
                "INPUT": str(date(data_dir, CLOUDY)), role: str(reflectance),
                "POINTS": sampled["OUTPUT"], "PATCH_SIZE": 32,
                "OUTPUT": str(tmp_path / "dataset"),
            })
    assert not (tmp_path / "dataset").exists()
