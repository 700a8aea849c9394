"""Many scenes and one mosaic in tiles on real Dask processes (a LocalCluster of two worker
processes; a `dask scheduler` and two `dask worker` processes, one killed mid-run), against the
same fills run in one process: bit-identical outputs, resume from the manifest, a failing job
that stops nothing else, a cancelled run that leaves nothing that looks complete."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, osr

from gapfill.core.distributed.jobs import make_job, read_job_table
from gapfill.core.distributed.manifest import change_of
from gapfill.core.distributed.methods import Hooks
from gapfill.core.distributed.runner import run_jobs
from gapfill.core.errors import Cancelled, GapfillError
from rasters import read

SCENES = ("4287", "5254", "6553")
WORKERS = 2


def write_raster(path: Path, data: np.ndarray, kind: int) -> Path:
    data = data.reshape(-1, *data.shape[-2:])
    dataset = gdal.GetDriverByName("GTiff").Create(
        str(path), data.shape[2], data.shape[1], data.shape[0], kind, ["TILED=YES"]
    )
    dataset.SetGeoTransform((500000.0, 10.0, 0.0, 5000000.0, 0.0, -10.0))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    dataset.SetProjection(srs.ExportToWkt())
    for index, band in enumerate(data, start=1):
        dataset.GetRasterBand(index).WriteArray(band)
    dataset = None
    return path


@pytest.fixture(scope="module")
def mosaic(data_dir, tmp_path_factory) -> tuple[Path, Path]:
    """A 1536×1100 image (3 bands) tiled from the real labelled scene, with its clouds and
    shadows as the gap mask: four tiles of 1024 px, two of them clipped by the edges."""
    folder = tmp_path_factory.mktemp("mosaic")
    image = gdal.Open(str(data_dir / "cloud_labels/s2_l1c_6band.tif")).ReadAsArray()[:3]
    labels = gdal.Open(str(data_dir / "cloud_labels/labels.tif")).ReadAsArray()
    data = np.tile(image, (1, 3, 3))[:, :1100, :1536]
    gaps = np.isin(np.tile(labels, (3, 3))[:1100, :1536], (0, 4)).astype(np.uint8)
    return (write_raster(folder / "mosaic.tif", data, gdal.GDT_UInt16),
            write_raster(folder / "gaps.tif", gaps, gdal.GDT_Byte))


def one_process(job, output: Path) -> np.ndarray:
    """The job's fill in this process, on the whole image: the reference."""
    job.fill.run(job, str(output), None, Hooks())
    return read(output)


def scene_table(data_dir: Path, folder: Path, broken: bool = False) -> Path:
    rows = [
        {"target": data_dir / f"sen12mscr/{name}_s2_cloudy.tif",
         "mask": data_dir / f"sen12mscr/{name}_cloudmask.tif",
         "output": f"out/{name}.tif", "method": method, "options": options}
        for name, (method, options) in zip(
            SCENES, [("pyramid", ""), ("spatial", "max_distance=40"), ("pyramid", "")],
            strict=True)
    ]
    if broken:  # a multi-band "mask": this job fails on its worker, the others run
        rows[1]["mask"] = data_dir / "sen12mscr/1302_s1.tif"
    table = folder / "jobs.csv"
    with open(table, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return table


def recorded_state(records: dict, folder: Path) -> list[str]:
    """Each job's recorded status and how its recorded files differ now, and every file of the
    outputs' folder (hidden ones are partial files): what a re-run decides on (a failure of
    this test once in several full runs had its reason cut)."""
    return [
        f"{job_id}: {record['status']}; changed: "
        f"{[(item['path'], change_of(item)) for item in files]}"
        for job_id, record in records.items()
        for files in [record.get("inputs", []) + record.get("outputs", [])]
    ] + [f"in {folder}: {sorted(path.name for path in folder.iterdir())}"]


def test_many_scenes_match_one_process_and_a_rerun_checks_and_skips(data_dir, tmp_path):
    jobs = read_job_table(scene_table(data_dir, tmp_path, broken=True))
    manifest = tmp_path / "run.json"
    lines: list[str] = []
    summary = run_jobs(jobs, manifest, workers=WORKERS, log=lines.append)
    assert summary.workers == WORKERS and sorted(summary.done) == sorted(
        job.id for job in jobs if job.id != "out/5254.tif")
    assert "gap mask" in summary.failed["out/5254.tif"]
    assert not (tmp_path / "out/5254.tif").exists()
    assert not list((tmp_path / "out").glob(".*"))  # no partial file left by the failure
    for job in jobs:
        if job.id in summary.done:
            expected = one_process(job, tmp_path / "reference.tif")
            np.testing.assert_array_equal(read(job.output), expected)
    records = json.loads(manifest.read_text())["jobs"]
    done = records["out/4287.tif"]
    assert done["status"] == "done" and done["worker"].startswith("tcp://127.0.0.1")
    assert done["report"]["gaps"] > 0 and done["outputs"][0]["sha256"]
    assert records["out/5254.tif"]["status"] == "failed"

    before = recorded_state(records, tmp_path / "out")
    lines.clear()
    again = run_jobs(jobs, manifest, workers=WORKERS, log=lines.append)
    assert sorted(again.skipped) == sorted(summary.done) and list(again.failed) == [
        "out/5254.tif"], "\n".join(before + lines)

    changed = jobs[0].output  # an output edited since: checked, found changed, filled again
    with open(changed, "r+b") as stream:
        stream.seek(-16, os.SEEK_END)
        stream.write(b"\0" * 16)
    third = run_jobs(jobs, manifest, workers=WORKERS, log=lines.append)
    assert third.done == [jobs[0].id] and jobs[0].id not in third.skipped
    assert any("changed since the last run" in line and "other content, same size, last written"
               in line for line in lines), "\n".join(lines)
    np.testing.assert_array_equal(read(changed), one_process(jobs[0], tmp_path / "again.tif"))

    lines.clear()  # other settings: every job runs again, and the log says why
    fourth = run_jobs(jobs, manifest, workers=WORKERS, tile_size=1024, log=lines.append)
    assert not fourth.skipped and any("definition or tile size changed" in line
                                      for line in lines)


def test_an_output_the_run_did_not_write_is_kept(data_dir, tmp_path):
    jobs = read_job_table(scene_table(data_dir, tmp_path))
    (tmp_path / "out").mkdir()
    Path(jobs[0].output).write_bytes(b"someone's file")
    summary = run_jobs(jobs, tmp_path / "run.json", workers=1)
    assert "did not write it" in summary.failed[jobs[0].id]
    assert Path(jobs[0].output).read_bytes() == b"someone's file"
    assert len(summary.done) == 2


@pytest.mark.parametrize(("method", "suffix"), [("pyramid", "tif"), ("spatial", "vrt")])
def test_a_mosaic_in_tiles_is_bit_identical_to_one_process(mosaic, tmp_path, method, suffix):
    target, gaps = mosaic
    job = make_job("mosaic", target=str(target), mask=str(gaps), method=method,
                   output=str(tmp_path / f"filled.{suffix}"))
    summary = run_jobs([job], tmp_path / "run.json", workers=WORKERS, tile_size=1024)
    assert summary.done == ["mosaic"]
    expected = one_process(job, tmp_path / "reference.tif")
    np.testing.assert_array_equal(read(job.output), expected)
    record = json.loads((tmp_path / "run.json").read_text())["jobs"]["mosaic"]
    assert record["facts"] == {"tiles": 4}
    assert record["report"]["gaps"] == int((read(gaps)[0] == 1).sum())
    hidden = [path.name for path in tmp_path.iterdir() if path.name.startswith(".")]
    assert hidden == []  # the tiles of a GeoTIFF mosaic are removed once it is written
    if suffix == "tif":
        assert gdal.Open(job.output).GetRasterBand(1).GetOverviewCount() > 0  # a COG
    else:
        assert len(list((tmp_path / "filled.tiles").glob("*.tif"))) == 4


def test_a_cancelled_mosaic_leaves_no_output_and_resumes_from_its_tiles(mosaic, tmp_path):
    target, gaps = mosaic
    job = make_job("mosaic", target=str(target), mask=str(gaps), method="pyramid",
                   output=str(tmp_path / "filled.tif"))
    manifest = tmp_path / "run.json"
    seen: list[float] = []
    with pytest.raises(Cancelled):  # stopped once the first tile is in
        run_jobs([job], manifest, workers=WORKERS, tile_size=1024, progress=seen.append,
                 cancelled=lambda: bool(seen) and seen[-1] > 0)
    assert not Path(job.output).exists()
    kept = json.loads(manifest.read_text())["jobs"]["mosaic"]
    assert kept["status"] == "running" and len(kept["tiles"]) >= 1

    lines: list[str] = []
    summary = run_jobs([job], manifest, workers=WORKERS, tile_size=1024, log=lines.append)
    assert summary.done == ["mosaic"]
    reused = next(line for line in lines if "tiles of 1024 px" in line)
    assert "(0 done by an earlier run)" not in reused
    np.testing.assert_array_equal(read(job.output), one_process(job, tmp_path / "ref.tif"))


def test_bad_tables_are_refused_with_what_to_do(data_dir, tmp_path):
    table = scene_table(data_dir, tmp_path)
    text = table.read_text().replace("pyramid", "pyramids", 1)
    table.write_text(text)
    with pytest.raises(GapfillError, match="line 2: The method 'pyramids' is not one of"):
        read_job_table(table)
    table.write_text("target,output,method,options\na.tif,b.tif,spatial,max_distance=far\n")
    with pytest.raises(GapfillError, match="max_distance=far is not a whole number"):
        read_job_table(table)
    table.write_text("target,output,colour\na.tif,b.tif,red\n")
    with pytest.raises(GapfillError, match="unknown columns colour"):
        read_job_table(table)
    with pytest.raises(GapfillError, match="not a multiple of 1024"):
        run_jobs([], tmp_path / "run.json", tile_size=1000)


def test_jobs_that_would_overwrite_an_input_through_a_link_or_a_vrt_are_refused(tmp_path):
    source = write_raster(tmp_path / "a.tif", np.ones((1, 8, 8), np.uint16), gdal.GDT_UInt16)
    gdal.BuildVRT(str(tmp_path / "a.vrt"), [str(source)])
    (tmp_path / "link.tif").symlink_to(source)
    table = tmp_path / "jobs.csv"
    table.write_text("id,target,output,method\none,a.vrt,a.tif,spatial\n")
    with pytest.raises(GapfillError, match="writes its own input '.*a.vrt'"):
        read_job_table(table)
    table.write_text("id,target,output,method\none,a.vrt,b.tif,spatial\n"
                     "two,c.tif,link.tif,spatial\n")
    with pytest.raises(GapfillError, match="reads '.*a.vrt', the output of job 'two'"):
        read_job_table(table)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def dask_process(*arguments: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    return subprocess.Popen([str(Path(sys.executable).with_name("dask")), *arguments], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_a_worker_killed_mid_run_on_a_real_scheduler(mosaic, data_dir, tmp_path):
    """`dask scheduler` and two `dask worker` processes (no nanny: a killed worker stays
    dead); one is killed as the tiles are submitted: its tasks run on the other one."""
    address = f"tcp://127.0.0.1:{free_port()}"
    scheduler = dask_process("scheduler", "--host", "127.0.0.1", "--port",
                             address.rsplit(":", 1)[1], "--no-dashboard")
    workers = [dask_process("worker", address, "--nthreads", "1", "--no-nanny",
                            "--no-dashboard", "--host", "127.0.0.1") for _ in range(2)]
    try:
        from distributed import Client

        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        target, gaps = mosaic
        jobs = [make_job("mosaic", target=str(target), mask=str(gaps), method="pyramid",
                         output=str(tmp_path / "filled.tif")),
                *read_job_table(scene_table(data_dir, tmp_path))]

        def kill_a_worker(line: str) -> None:
            if "tiles of 1024 px" in line and workers[0].poll() is None:
                workers[0].send_signal(signal.SIGKILL)

        summary = run_jobs(jobs, tmp_path / "run.json", scheduler=address, tile_size=1024,
                           log=kill_a_worker)
        assert workers[0].wait(10) == -signal.SIGKILL
        assert summary.cluster == address and summary.workers == 2
        assert sorted(summary.done) == sorted(job.id for job in jobs)
        for number, job in enumerate(jobs):
            expected = one_process(job, tmp_path / f"reference{number}.tif")
            np.testing.assert_array_equal(read(job.output), expected)
    finally:
        for process in [*workers, scheduler]:
            if process.poll() is None:
                process.terminate()
        for process in [*workers, scheduler]:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.mark.torch  # the scene fill's adapted network competes
def test_the_scene_fill_runs_as_a_job_with_its_options(data_dir, tmp_path):
    paths = {}
    for name in ("s2_cloudy", "cloudmask", "s1"):
        paths[name] = str(tmp_path / f"{name}.tif")
        gdal.Translate(paths[name], str(data_dir / f"sen12mscr/4287_{name}.tif"),
                       srcWin=[64, 64, 128, 128])
    job = make_job("scene", target=paths["s2_cloudy"], mask=paths["cloudmask"],
                   sar=paths["s1"], output=str(tmp_path / "filled.tif"), method="scene",
                   options_text="budget_minutes=1; max_steps=10; bundled=false")
    summary = run_jobs([job], tmp_path / "run.json", workers=1)
    assert summary.done == ["scene"]
    record = json.loads((tmp_path / "run.json").read_text())["jobs"]["scene"]
    assert record["facts"]["chosen"] and record["report"]["unfilled"] == 0
    assert record["job"]["options"]["max_steps"] == 10
    gaps = read(paths["cloudmask"])[0] == 1
    filled, cloudy = read(job.output), read(paths["s2_cloudy"])
    np.testing.assert_array_equal(filled[:, ~gaps], cloudy[:, ~gaps])  # only gaps change
