"""ONNX Runtime sessions on CUDA or the CPU; the log says which provider actually runs the model.

CUDA is used when asked for ("cuda") or when an NVIDIA driver is present ("auto"). If ONNX
Runtime cannot start its CUDA provider (missing CUDA/cuDNN libraries, no GPU), the session falls
back to the CPU with a warning: a fill never fails for want of a GPU.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, get_args

from ..dependencies import require
from ..errors import GapfillError

Device = Literal["auto", "cpu", "cuda"]
DEVICES: tuple[str, ...] = get_args(Device)
CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"
LogFn = Callable[[str], None]


def no_log(_message: str) -> None:
    """Default log callback: ignore."""


def cpu_threads() -> int:
    """Cores this process may use (affinity, containers), which ONNX Runtime's default ignores."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def nvidia_driver_present() -> bool:
    """True when the NVIDIA driver library loads; without it CUDA can only fail, noisily."""
    names = ("nvcuda.dll",) if os.name == "nt" else ("libcuda.so.1", "libcuda.so")
    for name in names:
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


def session_options(ort: Any, threads: int | None) -> Any:
    """One sequential graph on all usable cores. Idle ONNX Runtime threads sleep instead of
    spinning, so the thread that reads and writes rasters keeps a core on small machines."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or cpu_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: provider fallbacks are reported by us
    return options


def _open(ort: Any, model: str | Path | bytes, options: Any, providers: list[str]) -> Any:
    source = model if isinstance(model, bytes) else str(model)
    try:
        return ort.InferenceSession(source, sess_options=options, providers=providers)
    except Exception as error:  # ONNX Runtime's errors derive from Exception only
        name = "the model" if isinstance(model, bytes) else f"the model '{model}'"
        raise GapfillError(
            f"ONNX Runtime cannot load {name}: {error}. Check that it is an ONNX file, "
            "complete and readable."
        ) from error


def _try_cuda(ort: Any, model: str | Path | bytes, options: Any, log: LogFn) -> Any | None:
    """A session on CUDA, or None after logging why not."""
    loader_output = io.StringIO()
    with contextlib.redirect_stdout(loader_output):
        if hasattr(ort, "preload_dlls"):  # CUDA/cuDNN from NVIDIA's pip packages, if installed
            ort.preload_dlls()
        try:
            session = _open(ort, model, options, [CUDA, CPU])
        except GapfillError as error:
            log(f"Warning: the model could not be loaded on CUDA ({error}); trying the CPU.")
            return None
    if CUDA in session.get_providers():
        return session
    details = " ".join(loader_output.getvalue().split())
    log(
        "Warning: ONNX Runtime could not start its CUDA provider (it needs an NVIDIA GPU and "
        "the CUDA and cuDNN libraries its build was made for"
        + (f"; {details}" if details else "")
        + "). Running on the CPU instead."
    )
    return None


def create_session(
    model: str | Path | bytes,
    device: Device = "auto",
    *,
    threads: int | None = None,
    log: LogFn = no_log,
) -> Any:
    """An onnxruntime.InferenceSession on `device`, falling back to the CPU when CUDA fails."""
    if device not in DEVICES:
        raise GapfillError(f"Unknown device '{device}': use one of {', '.join(DEVICES)}.")
    ort = require("onnxruntime", "Running an ONNX model")
    options = session_options(ort, threads)
    session = None
    if device == "cuda" and CUDA not in ort.get_available_providers():
        log(
            "Warning: CUDA was asked for but this ONNX Runtime is built for the CPU only "
            "(install onnxruntime-gpu for NVIDIA GPUs). Running on the CPU."
        )
    elif device == "cuda" or (
        device == "auto" and CUDA in ort.get_available_providers() and nvidia_driver_present()
    ):
        session = _try_cuda(ort, model, options, log)
    if session is None:
        # Without a planned memory pattern, peak memory drops by a quarter (a 976 px tile of
        # the bundled model: 1012 → 751 MiB) at the same speed.
        options.enable_mem_pattern = False
        session = _open(ort, model, options, [CPU])
    log(f"ONNX Runtime {ort.__version__} runs the model on {provider_used(session)}.")
    return session


def provider_used(session: Any) -> str:
    """The execution provider that runs the graph, in words for the log."""
    provider = session.get_providers()[0]
    if provider == CUDA:
        device = session.get_provider_options().get(CUDA, {}).get("device_id", "0")
        return f"the GPU ({CUDA}, device {device})"
    if provider == CPU:
        threads = session.get_session_options().intra_op_num_threads
        return f"the CPU ({CPU}, {threads} threads)"
    return provider
