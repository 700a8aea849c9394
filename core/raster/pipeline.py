"""Read → compute → write over blocks, with compute overlapped on a thread pool.

GDAL datasets are not thread-safe, so reads and writes stay on the calling thread, in order;
only the numerical work (numpy, ONNX Runtime: both release the GIL) runs in the pool. At most
`workers + 1` blocks are in flight, so memory is bounded by the block size, not the image size.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

from ..progress import CancelledFn, ProgressFn, check_cancelled, never_cancelled, no_progress

W = TypeVar("W")
CANCEL_POLL_S = 0.2  # how often a wait for a block looks at the cancel flag


def run_pipeline(
    items: Iterable[W],
    total: int,
    read: Callable[[W], Any],
    compute: Callable[[Any], Any],
    write: Callable[[W, Any], None],
    *,
    workers: int = 2,
    progress: ProgressFn = no_progress,
    cancelled: CancelledFn = never_cancelled,
) -> None:
    """Process every item; raise `Cancelled` when asked to stop, within a fraction of a second
    even while a block computes (a block still computing is left to finish on its own: it
    only computes, and nothing of it is written)."""
    pending: deque[tuple[W, Future]] = deque()
    done = 0

    def finish_oldest() -> None:
        nonlocal done
        item, future = pending.popleft()
        while not future.done():
            check_cancelled(cancelled)
            wait([future], timeout=CANCEL_POLL_S)
        write(item, future.result())
        done += 1
        progress(done / max(total, 1))

    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    completed = False
    try:
        for item in items:
            check_cancelled(cancelled)
            payload = read(item)
            pending.append((item, pool.submit(compute, payload)))
            if len(pending) > workers:
                finish_oldest()
        while pending:
            check_cancelled(cancelled)
            finish_oldest()
        check_cancelled(cancelled)  # a cancel during the last block still discards the output
        completed = True
    finally:
        pool.shutdown(wait=completed, cancel_futures=True)
