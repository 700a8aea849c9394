"""The GPU training-speed check (benchmarks/bench_training.py) runs end to end, tiny, on the CPU:
packing the real SEN12MS-CR samples, cutting patches with numpy alone, one DSen2-CR epoch."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_pack_then_run_one_epoch(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GAPFILL_DATA", str(data_dir))
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import bench_training

    bench_training.main(["pack", "--output", str(tmp_path)])
    packed = np.load(tmp_path / bench_training.SAMPLES_FILE)
    assert packed["target"].shape == packed["reference"].shape == (14, 13, 256, 256)
    assert packed["sar"].shape == (14, 2, 256, 256) and packed["gap_mask"].shape[1] == 1
    monkeypatch.setattr(sys, "argv", ["bench_training.py", "run"])
    bench_training.main([
        "run", "--samples", str(tmp_path / bench_training.SAMPLES_FILE), "--output",
        str(tmp_path / "out"), "--device", "cpu", "--width", "4", "--depth", "1",
        "--patch", "64", "--stride", "128", "--batch-size", "8",
    ])
    (result,) = json.loads((tmp_path / "out" / "bench_training.json").read_text())
    assert result["amp"] is False and result["samples_per_second"] > 0
    assert np.isfinite(result["train_loss"])
    report = (tmp_path / "out" / "bench_training.md").read_text()
    assert "54 training patches of 64 px" in report and "| off |" in report
