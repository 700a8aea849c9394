#!/usr/bin/env bash
# The GPU checks of issues 3 and 8 in one call on the lent `device` machine (PyTorch and numpy
# there; no QGIS, no GDAL): the ONNX fill on in-memory arrays with the CUDA provider against the
# GPU compute floor (bench_onnx.py --gpu-arrays, 10980² px), and one epoch of full-size DSen2-CR
# with and without mixed precision (bench_training.py run), and the scene fill's network: training
# steps per second and inference over a 10980² tile (bench_scene_gpu.py; numpy and torch only).
#
# Here, first: `make bench` (writes bench-output/bench_unet.onnx and sen12mscr_samples.npz) and
# `PYTHONPATH=scripts:benchmarks .venv/bin/python benchmarks/bench_training.py pack`. If the device's
# onnxruntime lacks the CUDA provider, bring ours with ../shared/tools/ort-gpu-parts.sh (its
# header says how) and run this after its --install step, with PYTHONPATH=/tmp/ort.
# Then one call: carry ["bench-output/bench_unet.onnx", "bench-output/sen12mscr_samples.npz",
# "bench-output/sen12mscr_training.npz"], command `bash scripts/gpu_checks.sh`; the reports
# come back under $OUT.
set -euo pipefail
out=${OUT:-bench-output/gpu}
mkdir -p "$out"
export PYTHONPATH=scripts:benchmarks${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
python3 -c 'import onnxruntime as o; print("onnxruntime", o.__version__, o.get_available_providers())'
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 benchmarks/bench_onnx.py --gpu-arrays --device cuda --output bench-output 2>&1 | tee "$out/gpu_arrays.log"
cp bench-output/bench_onnx_gpu.md "$out/"
python3 benchmarks/bench_training.py run --device cuda --output "$out" 2>&1 | tee "$out/training.log" | tail -15
python3 benchmarks/bench_scene_gpu.py --device cuda --output "$out" 2>&1 | tee "$out/scene.log" | tail -14
