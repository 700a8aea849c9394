"""The `gapfill` command line and the Processing algorithms are two doors to the same engine:
with the same inputs and defaults they write the same pixels, and refuse with the same text."""

import json

import numpy as np
import processing
import pytest
from qgis.core import QgsProcessingException

from gapfill.cli.main import main
from rasters import read

TARGET, OTHERS = "2018-03-07", ("2018-02-10", "2018-03-22")


@pytest.fixture(scope="module")
def series(data_dir):
    folder = data_dir / "sen12mscr_ts"
    return [str(folder / f"s2_{day}.tif") for day in (TARGET, *OTHERS)]


def test_same_mask_and_fills_as_processing(provider, series, tmp_path):
    target, *others = series
    processing.run("gapfill:buildgapmask", {"INPUT": target, "OUTPUT": str(tmp_path / "p.tif")})
    assert main(["mask", target, "-o", str(tmp_path / "c.tif"), "-q"]) == 0
    np.testing.assert_array_equal(read(tmp_path / "c.tif"), read(tmp_path / "p.tif"))
    mask = str(tmp_path / "p.tif")
    arguments = ["fill", "temporal", target, "--gap-mask", mask, "--other-dates", *others]
    for number, method in ((2, "weighted"), (3, "regression")):
        processing.run(
            "gapfill:filltemporal",
            {"INPUT": target, "GAP_MASK": mask, "OTHER_DATES": others, "METHOD": number,
             "OUTPUT": str(tmp_path / f"p{method}.tif")},
        )  # fmt: skip
        written = str(tmp_path / f"c{method}.tif")
        assert main([*arguments, "--method", method, "-o", written, "-q"]) == 0
        np.testing.assert_array_equal(read(written), read(tmp_path / f"p{method}.tif"))
    processing.run(
        "gapfill:filltemporal",
        {"INPUT": target, "GAP_MASK": mask, "OTHER_DATES": others, "EDGE_CORRECTION": True,
         "OUTPUT": str(tmp_path / "pe.tif")},
    )  # fmt: skip
    assert main([*arguments, "--edge-correction", "-o", str(tmp_path / "ce.tif"), "-q"]) == 0
    np.testing.assert_array_equal(read(tmp_path / "ce.tif"), read(tmp_path / "pe.tif"))
    processing.run(
        "gapfill:fillspatial",
        {"INPUT": target, "GAP_MASK": mask, "OUTPUT": str(tmp_path / "ps.tif")},
    )
    spatial = ["fill", "spatial", target, "--gap-mask", mask, "-o", str(tmp_path / "cs.tif")]
    assert main(spatial) == 0
    np.testing.assert_array_equal(read(tmp_path / "cs.tif"), read(tmp_path / "ps.tif"))


def test_same_refusal_as_processing(provider, series, tmp_path, capsys):
    with pytest.raises(QgsProcessingException) as refused:
        processing.run(
            "gapfill:buildgapmask",
            {"INPUT": series[0], "METHOD": 1, "SCL_CLASSES": "42",
             "OUTPUT": str(tmp_path / "p.tif")},
        )
    capsys.readouterr()
    arguments = ["mask", series[0], "--method", "scl", "--classes", "42",
                 "-o", str(tmp_path / "c.tif")]
    assert main([*arguments, "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["error"] == str(refused.value)
