"""Fill many scenes through processing.run: a table of real scenes on Dask workers inside QGIS
(threads: QGIS's executable cannot start Python worker processes), the same pixels as the
single fill, a resumed run, and bad input refused with what to do."""

import json

import numpy as np
import processing
import pytest
from qgis.core import QgsProcessingException

from feedback import RecordingFeedback
from rasters import read


@pytest.fixture()
def table(data_dir, tmp_path):
    rows = [f"{data_dir}/sen12mscr/{name}_s2_cloudy.tif,{data_dir}/sen12mscr/{name}_cloudmask"
            f".tif,out/{name}.tif" for name in ("4287", "5254")]
    path = tmp_path / "jobs.csv"
    path.write_text("target,mask,output\n" + "\n".join(rows) + "\n")
    return path


def test_a_table_of_scenes_matches_the_single_fill_and_resumes(provider, data_dir, table,
                                                               tmp_path):
    parameters = {"JOBS": str(table), "METHOD": 3, "WORKERS": 2,  # pyramid
                  "MANIFEST": str(tmp_path / "run.json")}
    result = processing.run("gapfill:fillmany", parameters)
    assert (result["DONE"], result["SKIPPED"], result["FAILED"]) == (2, 0, 0)
    single = processing.run("gapfill:fillspatial", {
        "INPUT": str(data_dir / "sen12mscr/4287_s2_cloudy.tif"),
        "GAP_MASK": str(data_dir / "sen12mscr/4287_cloudmask.tif"), "METHOD": 1,
        "OUTPUT": str(tmp_path / "single.tif"),
    })
    np.testing.assert_array_equal(read(tmp_path / "out/4287.tif"), read(single["OUTPUT"]))
    assert json.loads((tmp_path / "run.json").read_text())["jobs"]["out/4287.tif"]["worker"]
    feedback = RecordingFeedback()
    again = processing.run("gapfill:fillmany", parameters, feedback=feedback)
    assert (again["DONE"], again["SKIPPED"], again["FAILED"]) == (0, 2, 0), "\n".join(
        [*feedback.lines, str(sorted(path.name for path in (tmp_path / "out").iterdir()))]
    )  # every line: the reason a job ran again is in them; hidden files would be partials


def test_bad_input_is_refused_with_what_to_do(provider, table, tmp_path):
    manifest = str(tmp_path / "run.json")
    with pytest.raises(QgsProcessingException, match="folder of scenes: no jobs were given"):
        processing.run("gapfill:fillmany", {"MANIFEST": manifest})
    with pytest.raises(QgsProcessingException, match="either a table of jobs .*, not both"):
        processing.run("gapfill:fillmany", {"JOBS": str(table), "SCENES": str(tmp_path),
                                             "MANIFEST": manifest})
    with pytest.raises(QgsProcessingException, match="not a multiple of 1024"):
        processing.run("gapfill:fillmany", {"JOBS": str(table), "TILE_SIZE": 1000,
                                             "MANIFEST": manifest})
    with pytest.raises(QgsProcessingException, match="cannot be reached"):
        processing.run("gapfill:fillmany", {"JOBS": str(table), "MANIFEST": manifest,
                                             "SCHEDULER": "tcp://127.0.0.1:9"})
    assert not (tmp_path / "out").exists()
