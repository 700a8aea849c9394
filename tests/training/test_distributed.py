"""Data-parallel training under torchrun, on the CPU with the gloo backend, 2 processes."""

from __future__ import annotations

import csv
import subprocess

from gapfill.training.checkpoints import load_checkpoint


def test_torchrun_two_processes(synthetic, tmp_path, child_env, python):
    run = tmp_path / "run"
    result = subprocess.run(
        [
            python,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "gapfill.training",
            "train",
            "--dataset",
            str(synthetic),
            "--output",
            str(run),
            "--width",
            "4",
            "--depth",
            "2",
            "--epochs",
            "2",
            "--batch-size",
            "2",
            "--device",
            "cpu",
            "--no-progress-bar",
            "--epoch-samples",
            "0",
            "--force-export",
        ],
        env=child_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "2 processes" in result.stdout
    assert result.stdout.count("Epoch 2/2") == 1  # only process 0 reports and writes
    with (run / "log.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["epoch"] for row in rows] == ["1", "2"]
    # 6 training patches over 2 processes: each runs 3 patches (2 batches of 2) per epoch,
    # where one process would run 3 batches
    state = load_checkpoint(run / "last.pt")
    assert state["epoch"] == 2
    assert int(state["optimizers"][0]["state"][0]["step"]) == 2 * 2
    assert (run / "model.onnx").stat().st_size > 0
