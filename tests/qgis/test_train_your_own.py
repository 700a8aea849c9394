"""docs/train_your_own.md: the qgis_process walkthrough runs as written, on the shared data,
with a tiny training (one epoch of a width-4 network) instead of the defaults."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from gapfill.core.learned.model_card import read_card
from qgis_runner import REPO, QgisProcess, executable

DOC = REPO / "docs" / "train_your_own.md"
TINY = "EPOCHS=1 EPOCH_SAMPLES=16 WIDTH=4 DEPTH=2 FORCE_EXPORT=true DEVICE=1"


def walkthrough() -> list[str]:
    """The command lines of the walkthrough block, as written."""
    text = DOC.read_text(encoding="utf-8")
    block = re.search(r"<!-- walkthrough -->\s*```sh\n(.*?)```\s*<!-- /walkthrough -->", text, re.S)
    assert block, "the walkthrough block of docs/train_your_own.md is missing"
    return [line for line in block.group(1).splitlines() if line.strip()]


def runnable(lines: list[str], data: Path) -> str:
    """The script the test runs: the environment is the test's own (no export, no install),
    the data folder is the test's, the training is tiny."""
    script = ["set -euo pipefail"]
    for line in lines:
        if line.startswith("export ") or "gapfill:installdependencies" in line:
            continue
        if line.startswith("D="):
            line = f"D={data}"
        if "gapfill:trainmodel" in line:
            keys = re.findall(r"\b([A-Z_]+)=", line)
            assert not {"EPOCHS", "WIDTH", "DEPTH"} & set(keys), "the doc trains with defaults"
            line = line.replace("gapfill:trainmodel --", f"gapfill:trainmodel -- {TINY}")
        script.append(line.replace("qgis_process.bin", executable()))
    return "\n".join(script) + "\n"


@pytest.mark.torch  # the walkthrough trains a model
def test_the_walkthrough_runs(data_dir, tmp_path):
    lines = walkthrough()
    assert sum("gapfill:extractpatches" in line for line in lines) == 3
    qgis = QgisProcess(tmp_path / "qgis")
    completed = subprocess.run(
        ["bash", "-c", runnable(lines, data_dir)],
        cwd=tmp_path,
        env={**qgis.environment, "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    work = tmp_path / "my-area"
    assert "39 training samples per epoch" in completed.stdout  # 13 + 13 + 13 patches
    assert "Baseline verdict: the model" in completed.stdout
    card = read_card(work / "model.onnx")
    assert card.validation_metrics["baselines"]["verdict"] in ("beats", "loses")
    report = json.loads((work / "report" / "metrics.json").read_text())
    names = [method["name"] for method in report["methods"]]
    assert names == ["my model", "spatial IDW", "spatial pyramid"]
    assert (work / "p315_filled.tif").is_file()
    shutil.rmtree(work)
