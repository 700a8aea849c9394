"""Does an adapted network saved on one scene help the scene fill of its neighbour?

Pairs of patches of one SEN12MS-CR scene of `sen12mscr_pairs` (the same date and orbit) whose
extents do not overlap: the scene fill runs on the first with its network saved, then on the
second twice, from scratch and started from the saved network, with the same seed and step
limit (so only the start differs; a short limit on the second is a large scene's budget,
spread over more pixels). Gap filling protocol as in bench_quality's case (f): the
spectral cloud/shadow mask of each cloudy image (dilated 2 px) laid on its clear image; the
fills are scored on those gap pixels against the clear image (DN / 10000 in [0, 1]).

    GAPFILL_DATA=../shared/data python benchmarks/bench_scene_neighbours.py \
        --output bench-output/neighbours [--steps 300] [--saved-steps 300] [--per-scene 2]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from harness import data_folder, make_plugin_importable

PAIRS = "sen12mscr_pairs"


def extent(path: Path) -> tuple[float, float, float, float]:
    from osgeo import gdal

    dataset = gdal.Open(str(path))
    x0, dx, _, y0, _, dy = dataset.GetGeoTransform()
    x1, y1 = x0 + dx * dataset.RasterXSize, y0 + dy * dataset.RasterYSize
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)


def disjoint(a: tuple, b: tuple) -> bool:
    return a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]


def neighbour_pairs(data: Path, per_scene: int) -> list[tuple[str, str]]:
    """Per scene, up to `per_scene` (saved on, started on) pairs of disjoint patches, each patch
    the second of one pair at most."""
    names = sorted(p.name[: -len("_s2_clear.tif")] for p in (data / PAIRS).glob("*_s2_clear.tif"))
    scenes: dict[str, list[str]] = {}
    for name in names:
        scenes.setdefault(name.rsplit("_p", 1)[0], []).append(name)
    pairs = []
    for patches in scenes.values():
        extents = {n: extent(data / PAIRS / f"{n}_s2_clear.tif") for n in patches}
        found = [(a, b) for a in patches for b in patches
                 if a != b and disjoint(extents[a], extents[b])]
        chosen: list[tuple[str, str]] = []
        for a, b in found:
            if len(chosen) < per_scene and b not in {second for _, second in chosen}:
                chosen.append((a, b))
        pairs += chosen
    return pairs


def simulated(data: Path, folder: Path, name: str) -> dict[str, Path]:
    """The cloudy image's spectral mask (dilated 2 px) laid on the clear image, built once."""
    from gapfill.core.evaluate.simulate_gaps import simulate_gap_files
    from gapfill.core.masks.gap_mask import MaskSettings, build_gap_mask

    paths = {k: folder / f"{name}_{k}.tif" for k in ("mask", "cloudy", "gaps", "evaluation")}
    if not paths["evaluation"].exists():
        build_gap_mask(str(data / PAIRS / f"{name}_s2_cloudy.tif"), paths["mask"],
                       MaskSettings(method="spectral", dilation=2))
        simulate_gap_files(str(data / PAIRS / f"{name}_s2_clear.tif"), str(paths["mask"]),
                           paths["cloudy"], paths["gaps"], paths["evaluation"])
    return paths | {"clear": data / PAIRS / f"{name}_s2_clear.tif"}


def gap_psnr(clear: Path, filled: Path, evaluation: Path) -> float:
    from osgeo import gdal

    where = gdal.Open(str(evaluation)).ReadAsArray() == 1
    truth = np.clip(gdal.Open(str(clear)).ReadAsArray()[:, where] / 10000.0, 0, 1)
    values = np.clip(gdal.Open(str(filled)).ReadAsArray()[:, where] / 10000.0, 0, 1)
    mse = float(((truth - values) ** 2).mean())
    return math.inf if mse == 0 else -10 * math.log10(mse)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=Path("bench-output/neighbours"))
    parser.add_argument("--steps", type=int, default=300, help="training steps on the second")
    parser.add_argument("--saved-steps", type=int, help="on the first (default: --steps)")
    parser.add_argument("--per-scene", type=int, default=2)
    args = parser.parse_args()
    make_plugin_importable()
    from gapfill.core.fills.scene.fill_scene import SceneSettings
    from gapfill.core.fills.scene.run import fill_scene_files

    data = data_folder(PAIRS)
    args.output.mkdir(parents=True, exist_ok=True)
    settings = SceneSettings(max_steps=args.steps, bundled=False)
    saving = SceneSettings(max_steps=args.saved_steps or args.steps, bundled=False)
    rows = []
    for first, second in neighbour_pairs(data, args.per_scene):
        network = args.output / f"{first}_s{saving.max_steps}.pt"
        a = simulated(data, args.output, first)
        if not network.exists():
            fill_scene_files(str(a["cloudy"]), args.output / f"{first}_filled.tif",
                             gap_mask=str(a["gaps"]), settings=saving, save_network_to=network)
        b = simulated(data, args.output, second)
        if not network.exists():
            print(f"{first}: no network saved (not validated), {second} left out", flush=True)
            continue
        row: dict[str, object] = {"saved on": first, "filled": second}
        for start, label in ((None, "from scratch"), (network, "started from it")):
            output = args.output / f"{second}_{'warm' if start else 'cold'}.tif"
            output.unlink(missing_ok=True)
            result = fill_scene_files(str(b["cloudy"]), output, gap_mask=str(b["gaps"]),
                                      settings=settings, start_network=start)
            adapted = next((r for r in result.candidates if r.name == "adapted network"), None)
            if adapted is None or adapted.report is None:
                break
            row[label] = {
                "chosen": result.chosen,
                "gap PSNR": gap_psnr(b["clear"], output, b["evaluation"]),
                "network report PSNR": adapted.report.psnr,
                "network accepted": result.network["accepted"],
            }
        else:
            rows.append(row)
        print(json.dumps(row) if row in rows else f"{second}: not validated, left out",
              flush=True)
    (args.output / f"neighbours_s{args.steps}.json").write_text(json.dumps(rows, indent=1))
    print("\n| saved on | filled | network report PSNR: scratch | started | chosen: scratch | "
          "started | gap PSNR: scratch | started |")
    print("|---|---|---:|---:|---|---|---:|---:|")
    for row in rows:
        cold, warm = row["from scratch"], row["started from it"]
        print(f"| {row['saved on']} | {row['filled']} | {cold['network report PSNR']:.2f} | "
              f"{warm['network report PSNR']:.2f} | {cold['chosen']} | {warm['chosen']} | "
              f"{cold['gap PSNR']:.2f} | {warm['gap PSNR']:.2f} |")
    for label in ("network report PSNR", "gap PSNR"):
        gains = [r["started from it"][label] - r["from scratch"][label] for r in rows]
        print(f"mean gain of the start, {label}: {np.mean(gains):+.2f} dB "
              f"(worst {min(gains):+.2f}, best {max(gains):+.2f}, {len(gains)} pairs)")


if __name__ == "__main__":
    main()
