"""SSIM of the metrics: the whole map against the map cell by cell (`metrics.ssim_sum`), side
by side in one process, on the scene fill's layouts (a fifth of the blocks scored) and with
every pixel scored. Values are a fill with noise on random reflectances: the cost of a map
does not depend on them.

    python benchmarks/bench_ssim.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from harness import machine, make_plugin_importable

CASES = (  # (side of the stored window, side of its split blocks): the scene fill's layouts
    (592, 128),  # a 512 px validation window with its margin
    (1024, 256),  # a scene of 1024² read as one window
)
REPORT_SHARE, GAP_SHARE = 0.1875, 0.3  # layouts.SHARES[REPORT]; simulated gaps in a block


def best_of(repeat: int, step) -> tuple[float, float]:
    """(fastest seconds, value) of `repeat` runs."""
    times, value = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        value = step()
        times.append(time.perf_counter() - start)
    return min(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    make_plugin_importable()
    from gapfill.core.evaluate.metrics import SSIM_CELL, ssim_map, ssim_sum

    rng = np.random.default_rng(0)
    print(f"| window | blocks | scored | whole map ms | by cells of {SSIM_CELL} px ms | ratio |")
    print("|---|---:|---|---:|---:|---:|")
    for side, block in CASES:
        reference = rng.random((side, side))
        filled = reference + 0.05 * rng.standard_normal(reference.shape)
        count = -(-side // block)
        blocks = np.kron(rng.random((count, count)) < REPORT_SHARE, np.ones((block, block), bool))
        layouts = {
            "report blocks": blocks[:side, :side] & (rng.random(reference.shape) < GAP_SHARE),
            "every pixel": np.ones(reference.shape, bool),
        }
        for name, where in layouts.items():
            pair = (reference, filled)
            whole, expected = best_of(args.repeat, lambda w=where, p=pair: float(
                ssim_map(*p)[w].sum()))
            cells, value = best_of(args.repeat, lambda w=where, p=pair: ssim_sum(*p, w))
            assert abs(value - expected) <= 1e-9 * abs(expected)
            print(f"| {side}² | {block} px | {name} | {1000 * whole:.0f} | {1000 * cells:.0f} | "
                  f"{whole / cells:.1f}× |")
    print(f"\n{machine()}")


if __name__ == "__main__":
    main()
