"""The algorithms in a separate `qgis_process` process, found through QGIS_PLUGINPATH, from the
repository and from the packaged zip."""

import configparser
import re
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from qgis_runner import REPO, QgisProcess, QgisProcessError
from rasters import read, same_georeference

# every algorithm of the provider (QGIS 3.22 would leave out any marked hidden from the modeler)
EXPECTED = [
    "gapfill:buildgapmask",
    "gapfill:checkenvironment",
    "gapfill:describemodel",
    "gapfill:evaluatefill",
    "gapfill:extractpatches",
    "gapfill:filldip",
    "gapfill:fillgaps",
    "gapfill:fillmany",
    "gapfill:fillscene",
    "gapfill:fillspatial",
    "gapfill:filltemporal",
    "gapfill:filltimeseries",
    "gapfill:installdependencies",
    "gapfill:rasterstatistics",
    "gapfill:removedependencies",
    "gapfill:samplepatches",
    "gapfill:scaleraster",
    "gapfill:simulategaps",
    "gapfill:trainmodel",
    "gapfill:unscaleraster",
]


@pytest.fixture(scope="module")
def qgis(tmp_path_factory):
    return QgisProcess(tmp_path_factory.mktemp("qgis"))


def test_list_shows_every_algorithm_and_none_is_deprecated(qgis):
    assert sorted(qgis.list_algorithms()) == EXPECTED
    assert "deprecated" not in qgis.call(["help", "gapfill:installdependencies"]).stdout.lower()


@pytest.mark.parametrize(
    ("algorithm", "parameter", "default"),
    [
        ("gapfill:fillspatial", "MAX_DISTANCE", "100"),
        ("gapfill:filldip", "ITERATIONS", "300"),
        ("gapfill:filltimeseries", "LAMBDA", "10"),
    ],
)
def test_help_shows_the_defaults(qgis, algorithm, parameter, default):
    """QGIS 3.40 prints 'Default value' itself; on 3.22 the parameter's help says it."""
    text = qgis.call(["help", algorithm]).stdout
    section = re.search(rf"^{parameter}: .*?(?=^[A-Z_]+: |\Z)", text, re.M | re.S)
    assert section and re.search(rf"Default(?: value)?:\s*{default}(?:\.0)?\b", section[0])


def test_mask_then_fill_chain(qgis, data_dir, tmp_path):
    """Nothing is written beside the inputs (copied here: qgis_process loads them as layers,
    whose renderer would have GDAL keep its statistics in an .aux.xml beside each)."""
    series = tmp_path / "inputs"
    series.mkdir()
    names = ["s2_2018-03-07.tif", "s2_2018-02-10.tif", "s2_2018-03-22.tif"]
    for name in names:
        shutil.copy(data_dir / "sen12mscr_ts" / name, series)
    target = series / "s2_2018-03-07.tif"
    mask = qgis.run(
        "gapfill:buildgapmask", {"INPUT": target, "DILATION": 1, "OUTPUT": tmp_path / "mask.tif"}
    )  # automatic: ukis-csmask, found in the venv
    assert mask["results"]["METHOD_USED"].startswith("ukis-csmask 6-band")
    assert 0.6 < mask["results"]["GAP_FRACTION"] < 1.0
    result = qgis.run(
        "gapfill:filltemporal",
        {
            "INPUT": target,
            "GAP_MASK": mask["results"]["OUTPUT"],
            "METHOD": 1,
            "OTHER_DATES": [series / "s2_2018-02-10.tif", series / "s2_2018-03-22.tif"],
            "OUTPUT": tmp_path / "filled.tif",
        },
    )  # the other dates' masks are built inside, the same way
    assert "building them" in " ".join(result["log"].get("info", []))
    output = result["results"]["OUTPUT"]
    assert result["results"]["FILLED_PIXELS"] > 0
    assert same_georeference(output, target)
    gap = read(tmp_path / "mask.tif")[0] == 1
    np.testing.assert_array_equal(read(output)[:, ~gap], read(target)[:, ~gap])
    spatial = qgis.run(
        "gapfill:fillspatial",
        {"INPUT": target, "GAP_MASK": tmp_path / "mask.tif", "MAX_DISTANCE": 300,
         "OUTPUT": tmp_path / "s.tif"},
    )  # the mask covers about nine tenths: some gaps lie over 100 px from a clear pixel
    assert spatial["results"]["UNFILLED_PIXELS"] == 0
    assert sorted(path.name for path in series.iterdir()) == sorted(names)


def test_errors_reach_the_command_line(qgis, data_dir, tmp_path):
    series = data_dir / "sen12mscr_ts"
    with pytest.raises(QgisProcessError, match="classes \\[42\\] do not exist"):
        qgis.run(
            "gapfill:buildgapmask",
            {
                "INPUT": series / "s2_2018-03-07.tif",
                "METHOD": 1,
                "SCL_CLASSES": "42",
                "OUTPUT": tmp_path / "m.tif",
            },
        )
    assert not (tmp_path / "m.tif").exists()


def test_packaged_zip_installs_and_runs(data_dir, tmp_path):
    subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "make_package.py"),
            "--output",
            str(tmp_path / "dist"),
        ],
        check=True,
        capture_output=True,
    )
    (archive,) = (tmp_path / "dist").glob("gapfill-*.zip")
    with zipfile.ZipFile(archive) as content:
        names = content.namelist()
        assert "gapfill/metadata.txt" in names and "gapfill/__init__.py" in names
        # the help texts point to docs/; the gap mask's style; the command line
        assert {"gapfill/docs/patch_dataset.md", "gapfill/docs/architecture.md"} <= set(names)
        assert {"gapfill/styles/gap_mask.qml", "gapfill/cli/main.py"} <= set(names)
        metadata = configparser.ConfigParser()
        metadata.read_string(content.read("gapfill/metadata.txt").decode("utf-8"))
        general = metadata["general"]
        assert general["changelog"].split()[0] == general["version"]  # newest entry first
        assert not [n for n in names if n.startswith(("gapfill/tests/", "gapfill/.venv/"))]
        content.extractall(tmp_path / "installed")
    qgis = QgisProcess(tmp_path / "qgis", plugin_folder=tmp_path / "installed" / "gapfill")
    assert sorted(qgis.list_algorithms()) == EXPECTED
    target = data_dir / "sen12mscr_ts" / "s2_2018-03-07.tif"
    result = qgis.run("gapfill:fillspatial", {"INPUT": target, "OUTPUT": tmp_path / "o.tif"})
    assert result["results"]["FILLED_PIXELS"] == 0  # no mask and no no-data: a copy
    np.testing.assert_array_equal(read(tmp_path / "o.tif"), read(target))


def test_plugin_loads_without_onnxruntime_or_torch(tmp_path):
    """Only QGIS's own Python packages: the plugin still loads and lists its algorithms."""
    qgis = QgisProcess(tmp_path / "bare", python_paths=[])
    for module in ("onnxruntime", "torch"):
        probe = subprocess.run(
            ["/usr/bin/python3", "-c", f"import {module}"],
            env=qgis.environment,
            capture_output=True,
        )
        assert probe.returncode != 0, f"{module} is importable without the venv"
    assert sorted(qgis.list_algorithms()) == EXPECTED


def test_sigterm_leaves_no_partial_file(data_dir, tmp_path):
    """A qgis_process run stopped by SIGTERM while it writes removes its hidden partial output."""
    import signal
    import time

    from osgeo import gdal

    from qgis_runner import executable

    source = data_dir / "sen12mscr_ts" / "s2_2018-03-07.tif"
    large = tmp_path / "large.vrt"  # 4096² px, 13 bands: seconds of work
    gdal.Translate(str(large), str(source), format="VRT", width=4096, height=4096)
    out = tmp_path / "out"
    out.mkdir()
    qgis = QgisProcess(tmp_path / "qgis")
    run = subprocess.Popen(
        [executable(), "run", "gapfill:buildgapmask", "--", f"INPUT={large}", "METHOD=0",
         f"OUTPUT={out / 'mask.tif'}"],
        env=qgis.environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 120
    while not list(out.glob(".*partial*")) and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.05)
    assert list(out.glob(".*partial*")), "the run never started writing"
    run.send_signal(signal.SIGTERM)
    _, stderr = run.communicate(timeout=120)
    assert run.returncode != 0
    assert list(out.iterdir()) == [], stderr[-2000:]
