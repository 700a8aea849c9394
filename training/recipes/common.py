"""What the recipes of the bundled models share: the training command, the export, and the
held-out evaluation through `qgis_process`, by scene, with its verdict for the card.

Two protocols, each on whole 256×256 held-out images, the fills run as a user runs them
(`gapfill:fillgaps`, `gapfill:fillspatial` by inverse distance and by pyramid, `gapfill:filldip`)
and scored by
`gapfill:evaluatefill` on the removed pixels (DN / 10000 clipped to [0, 1]):

- pure gap filling, the protocol the project decides defaults on: real cloud and shadow shapes
  (`cloud_labels`, labels 4 and 0, never used in training; each image takes another 256×256
  quarter of the 512×512 labels) laid on the clear image with `gapfill:simulategaps`, scored
  against that same image;
- the SEN12MS-CR protocol: the cloudy image with its cloud mask (the sample's mask, or the
  spectral gap mask of `gapfill:buildgapmask` when there is none), scored under the mask
  against the clear image of the other date.

Figures are kept per image, averaged per scene, and the card's `baselines` entry
(`core.learned.baselines`) holds the mean over the scenes with its verdict against both spatial
fills, inverse distance and pyramid (Deep Image Prior is shown next to them, but is not a
classical fill). The `stamp` step measures the bundled model as it is (weights unchanged) and
writes that verdict into its card and its note.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from quality_cases import DIP, FILLS, PYRAMID, SPATIAL, Runner

from harness import make_plugin_importable

REPO = Path(__file__).resolve().parents[2]
SEED = 0
KEYS = ("mae", "rmse", "psnr", "ssim", "sam", "ndvi_mae")  # and "filled_fraction", kept aside
LABELS, CLOUD_LABELS = "cloud_labels/labels.tif", "4, 0"  # clouds and shadows
QUARTERS = ((0, 0), (256, 0), (0, 256), (256, 256))
PURE, SEN12MSCR = "pure gap filling", "SEN12MS-CR"
METRIC_SCALING = "DN / 10000, clipped to [0, 1]"
RGB = [4, 3, 2]

Results = dict[str, dict[str, dict[str, float]]]  # case (or scene) → method → metric → value


@dataclass(frozen=True)
class Image:
    """A held-out image: its scene, its clear image, and its cloudy one (with a cloud mask or
    not) when the SEN12MS-CR protocol applies; `sar` for the models that take Sentinel-1."""

    scene: str
    label: str
    clear: Path
    cloudy: Path | None = None
    cloud_mask: Path | None = None
    sar: Path | None = None


def plugin_path() -> str:
    """The sys.path entry through which `gapfill` (this repository) is imported."""
    make_plugin_importable()
    return next(
        entry for entry in sys.path if entry and (Path(entry) / "gapfill").resolve() == REPO
    )


def with_options(options: list[str], changes: dict[str, str]) -> list[str]:
    """`options` (flag, value, …) with the values of the flags in `changes` replaced."""
    changed = list(options)
    for flag, value in changes.items():
        changed[changed.index(flag) + 1] = value
    return changed


def train_command(dataset: Path, run: Path, masks: list[str], options: list[str]) -> list[str]:
    """The training CLI's command line: `options`, with simulated gaps from `masks`."""
    return [
        sys.executable, "-m", "gapfill.training", "train", "--dataset", str(dataset),
        "--output", str(run), *options, "--cloud-masks", *masks,
    ]  # fmt: skip


def run_training(command: list[str], threads: int = 2) -> float:
    """Run the training CLI with `threads` OpenMP threads; its wall seconds."""
    environment = {**os.environ, "PYTHONPATH": plugin_path(), "OMP_NUM_THREADS": str(threads)}
    print(f"$ PYTHONPATH={plugin_path()} " + shlex.join(command), flush=True)
    started = time.monotonic()
    subprocess.run(command, check=True, env=environment)
    return time.monotonic() - started


def shown_command(command: list[str], data: Path) -> str:
    """`command` as a model note shows it: relative to the repository and the data folder."""
    return (
        shlex.join(command)
        .replace(sys.executable, "python")
        .replace(f"{data}/", "../shared/data/")
        .replace(f"{REPO}/", "")
    )


def export(run: Path, model: Path, name: str, description: str, licence: str) -> None:
    """Export the run's last epoch (not the best on held-out data: no selection bias)."""
    from gapfill.training.export import export_checkpoint

    model.parent.mkdir(exist_ok=True)
    card = export_checkpoint(
        run / "last.pt", model, name=name, description=description, licence=licence,
        tile_size=1024, log=print,
    )  # fmt: skip
    print(f"Exported {model} ({model.stat().st_size / 1e6:.2f} MB): {card.name}", flush=True)


def write_card(model: Path, metrics: dict[str, Any], training_data: str) -> None:
    """Record the held-out metrics (with their `baselines` verdict) and the training data."""
    from gapfill.core.learned.model_card import read_card, write_card

    card = read_card(model)
    changed = dataclasses.replace(card, validation_metrics=metrics, training_data=training_data)
    write_card(model, changed)


# ---------------------------------------------------------------- evaluation


Fills = Callable[[Runner, Image, Path, object, object], dict[str, str]]


def single_date_fills(model: Path, name: str, with_sar: bool, dip: bool = True) -> Fills:
    """The model, both spatial fills and (when `dip`) Deep Image Prior (with the S1 image as
    its auxiliary source when `with_sar`) on one target and its gap mask."""

    def fills(runner: Runner, image: Image, folder: Path, target: object, mask: object) -> dict:
        sar = {"SAR": image.sar} if with_sar else {}
        found = {
            name: runner.run("gapfill:fillgaps", {
                "MODEL": model, "INPUT": target, "GAP_MASK": mask, "DEVICE": 1,
                "OUTPUT": folder / "model.tif", **sar,
            })["OUTPUT"],
        }  # fmt: skip
        for method, file in ((SPATIAL, "spatial.tif"), (PYRAMID, "pyramid.tif")):
            algorithm, options = FILLS[method]
            found[method] = runner.run(algorithm, {
                "INPUT": target, "GAP_MASK": mask, "OUTPUT": folder / file, **options,
            })["OUTPUT"]  # fmt: skip
        if not dip:
            return {method: str(path) for method, path in found.items()}
        algorithm, options = FILLS[DIP]
        auxiliary = {"AUXILIARY": [image.sar]} if with_sar else {}
        found[DIP] = runner.run(algorithm, {
            "INPUT": target, "GAP_MASK": mask, "OUTPUT": folder / "dip.tif", **options,
            **auxiliary,
        })["OUTPUT"]  # fmt: skip
        return {method: str(path) for method, path in found.items()}

    return fills


def scores(document: dict) -> dict[str, dict[str, float]]:
    return {
        method["name"]: {key: float(method["overall"][key]) for key in (*KEYS, "filled_fraction")}
        for method in document["methods"]
    }


def pure_gap_filling(runner: Runner, image: Image, index: int, fills: Fills) -> dict:
    """Real cloud shapes laid on the clear image, filled, scored against that image."""
    folder = runner.folder / "pure" / image.label
    shift = QUARTERS[index % len(QUARTERS)]
    simulated = runner.run("gapfill:simulategaps", {
        "INPUT": image.clear, "GAP_SOURCE": runner.path(LABELS), "GAP_VALUES": CLOUD_LABELS,
        "SHIFT_X": shift[0], "SHIFT_Y": shift[1], "OUTPUT": folder / "gaps.tif",
        "GAP_MASK": folder / "gap_mask.tif", "EVALUATION_MASK": folder / "evaluation.tif",
    })  # fmt: skip
    filled = fills(runner, image, folder, simulated["OUTPUT"], simulated["GAP_MASK"])
    document = runner.evaluate(
        folder, image.clear, filled, EVALUATION_MASK=simulated["EVALUATION_MASK"],
        GAPS_INPUT=simulated["OUTPUT"],
    )  # fmt: skip
    quicklook(image.clear, Path(str(simulated["GAP_MASK"])), filled, folder / "quicklook.png")
    return scores(document)


def real_clouds(runner: Runner, image: Image, fills: Fills) -> dict:
    """The cloudy image with its cloud mask, scored under it against the clear image."""
    folder = runner.folder / "sen12mscr" / image.label
    mask = image.cloud_mask
    if mask is None:
        mask = runner.run("gapfill:buildgapmask", {
            "INPUT": image.cloudy, "METHOD": 0, "OUTPUT": folder / "cloud_mask.tif",
        })["OUTPUT"]  # fmt: skip
    filled = fills(runner, image, folder, image.cloudy, mask)
    document = runner.evaluate(folder, image.clear, filled, EVALUATION_MASK=mask,
                               GAPS_INPUT=image.cloudy)  # fmt: skip
    quicklook(image.clear, Path(str(mask)), filled, folder / "quicklook.png", Path(image.cloudy))
    return scores(document)


def evaluate_images(
    data: Path, work: Path, images: Sequence[Image], fills: Fills, jobs: int = 2
) -> dict[str, Results]:
    """protocol → image → method → metrics, both protocols (SEN12MS-CR where it applies)."""
    from concurrent.futures import ThreadPoolExecutor

    runner = Runner(data, work / "evaluation")
    tasks = [(PURE, image, index) for index, image in enumerate(images)]
    tasks += [(SEN12MSCR, image, index) for index, image in enumerate(images) if image.cloudy]

    def run(task: tuple[str, Image, int]) -> tuple[str, str, dict]:
        protocol, image, index = task
        if protocol == PURE:
            found = pure_gap_filling(runner, image, index, fills)
        else:
            found = real_clouds(runner, image, fills)
        print(f"{protocol} {image.label}: {json.dumps(found)}", flush=True)
        return protocol, image.label, found

    results: dict[str, Results] = {PURE: {}, SEN12MSCR: {}}
    with ThreadPoolExecutor(jobs) as pool:
        for protocol, label, found in pool.map(run, tasks):
            results[protocol][label] = found
    return results


def mean_of(results: Results, method: str) -> dict[str, float]:
    rows = [r[method] for r in results.values()]
    return {key: float(np.mean([row[key] for row in rows])) for key in (*KEYS, "filled_fraction")}


def by_scene(results: Results, images: Sequence[Image]) -> Results:
    """Each scene's mean over its images."""
    scenes: dict[str, Results] = {}
    for image in images:
        if image.label in results:
            scenes.setdefault(image.scene, {})[image.label] = results[image.label]
    return {
        scene: {method: mean_of(found, method) for method in next(iter(found.values()))}
        for scene, found in scenes.items()
    }


def rounded(value: float) -> float:
    return float(f"{value:.4g}")


def rounded_scores(scores: dict[str, float]) -> dict[str, float]:
    return {key: rounded(value) for key, value in scores.items()}


def table(scenes: Results, methods: Sequence[str], header: str = "held-out scene") -> str:
    """A Markdown table: each scene and the mean over the scenes, one row per method."""
    lines = [
        f"| {header} | method | MAE | RMSE | PSNR (dB) | SSIM | SAM (°) | NDVI MAE | filled |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    means = {method: mean_of(scenes, method) for method in methods}
    cases = {**scenes, f"mean of the {len(scenes)} scenes": means}
    for case, found in cases.items():
        for method in methods:
            values = " | ".join(f"{rounded(found[method][key]):g}" for key in KEYS)
            lines.append(
                f"| {case} | {method} | {values} | {found[method]['filled_fraction']:.1%} |"
            )
    return "\n".join(lines)


def verdict_entry(
    scenes: Results,
    model: str,
    protocol: str,
    evaluated_on: str,
    classical: Sequence[str] = (SPATIAL, PYRAMID),
    **extra: Any,
) -> dict[str, Any]:
    """The card's `baselines` entry of one protocol: mean over the scenes, per scene, verdict."""
    from gapfill.core.learned import baselines

    methods = list(next(iter(scenes.values())))
    return baselines.baselines(
        {method: rounded_scores(mean_of(scenes, method)) for method in methods},
        model=model,
        classical=list(classical),
        protocol=protocol,
        evaluated_on=evaluated_on,
        metric_scaling=METRIC_SCALING,
        per_scene={
            scene: {method: rounded_scores(found[method]) for method in methods}
            for scene, found in scenes.items()
        },
        **extra,
    )


def card_metrics(
    results: dict[str, Results], images: Sequence[Image], model: str, held_out: str
) -> dict[str, Any]:
    """What the card records: the model's mean held-out figures (pure gap filling) and the
    verdicts of both protocols, by scene."""
    from gapfill.core.learned import baselines

    pure = by_scene(results[PURE], images)
    others = {}
    if results[SEN12MSCR]:
        others[SEN12MSCR] = verdict_entry(
            by_scene(results[SEN12MSCR], images), model,
            "SEN12MS-CR: the cloudy image with its cloud mask, scored under the mask against "
            "the clear image of another date", f"{held_out} (the images with a cloudy date)",
        )  # fmt: skip
    entry = verdict_entry(
        pure, model, baselines.PURE_GAP_FILLING + f" (cloud_labels shapes, labels {CLOUD_LABELS})",
        held_out, other_protocols=others,
    )  # fmt: skip
    return {
        **entry["methods"][model],
        "evaluated_on": f"pure gap filling on {held_out}: mean of the scenes",
        "metric_scaling": METRIC_SCALING,
        "baselines": entry,
    }


def quicklook(
    reference: Path, mask: Path, filled: dict[str, str], output: Path, shown: Path | None = None
) -> Path:
    """`shown` (default: the reference) | its gaps in magenta | each fill | the reference,
    with the reference's stretch, for a look by eye (flat blobs, wrong colours)."""
    from osgeo import gdal

    from gapfill.core.raster import quicklook as look

    def rgb(path: Path | str) -> np.ndarray:
        return gdal.Open(str(path)).ReadAsArray(band_list=RGB).astype(np.float64)

    clear = rgb(reference)
    gaps = gdal.Open(str(mask)).ReadAsArray() != 0
    lower, upper = look.stretch_limits(clear, np.ones_like(gaps))
    first = look.to_bytes(rgb(shown or reference), lower, upper)
    marked = first.copy()
    marked[:, gaps] = np.array([255, 0, 255], dtype=np.uint8)[:, None]
    panels = [first, marked, *(look.to_bytes(rgb(path), lower, upper) for path in filled.values())]
    panels.append(look.to_bytes(clear, lower, upper))
    return look.write_png(output, look.side_by_side(panels))


def spectral_mask(image: Path, folder: Path, dilation: int = 0) -> np.ndarray:
    """The spectral gap mask of an image (core/masks/gap_mask.py), bool, built once."""
    from gapfill.core.masks.gap_mask import MaskSettings, build_gap_mask
    from gapfill.core.raster.access import open_raster, read_bands

    output = folder / f"{image.parent.name}_{image.stem}_{dilation}.tif"
    if not output.exists():
        folder.mkdir(parents=True, exist_ok=True)
        build_gap_mask(str(image), output, MaskSettings("spectral", dilation=dilation))
    dataset = open_raster(output)
    return read_bands(dataset, (0, 0, dataset.RasterXSize, dataset.RasterYSize))[0] == 1


def constant_raster(path: Path, like: Path, bands: Sequence[str], kind: str, value: float) -> Path:
    """A raster on `like`'s grid filled with `value` (a clear gap mask, a missing SAR)."""
    from osgeo import gdal

    if path.exists():
        return path
    source = gdal.Open(str(like))
    path.parent.mkdir(parents=True, exist_ok=True)
    raster = gdal.GetDriverByName("GTiff").Create(
        str(path), source.RasterXSize, source.RasterYSize, len(bands), gdal.GetDataTypeByName(kind)
    )
    raster.SetGeoTransform(source.GetGeoTransform())
    raster.SetProjection(source.GetProjection())
    for index, name in enumerate(bands, start=1):
        band = raster.GetRasterBand(index)
        band.SetDescription(name)
        band.Fill(value)
    raster = None
    return path


PATCH, STRIDE = 128, 64  # px: training patches overlap by half; validation patches do not


def write_split_dataset(
    work: Path, scenes: Sequence[dict], held: Sequence[dict], counts: dict[str, int]
) -> None:
    """`work/dataset`: the patches of `scenes` for training, those of the held-out scenes
    `held` (not overlapping) for validation."""
    from gapfill.training.make_dataset import write_dataset

    write_dataset(work / "dataset", scenes, PATCH, stride=STRIDE, validation_scenes=held,
                  validation_stride=PATCH, seed=SEED, overwrite=True)  # fmt: skip
    print(f"Dataset {work / 'dataset'}: {json.dumps(counts)}", flush=True)


def save_shapes(masks: Sequence[np.ndarray], path: Path) -> str:
    """Cloud shapes (bool masks of one size) as a .npy stack for --cloud-masks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.stack(masks).astype(np.uint8))
    return str(path)


def sen12mscr_image(data: Path, item: str) -> Image:
    """A SEN12MS-CR sample as a held-out image (each sample its own scene)."""
    folder = data / "sen12mscr"
    return Image(
        f"sen12mscr {item}", f"sen12mscr_{item}", folder / f"{item}_s2_clear.tif",
        folder / f"{item}_s2_cloudy.tif", folder / f"{item}_cloudmask.tif",
        folder / f"{item}_s1.tif",
    )  # fmt: skip


@dataclass(frozen=True)
class Recipe:
    """A bundled single-date model: what its steps need from its recipe."""

    name: str
    options: list[str]
    description: str
    licence: str
    with_sar: bool
    make_dataset: Callable[[Path, Path], tuple[list[str], dict[str, int]]]
    held_out_images: Callable[[Path], list[Image]]
    training_data: Callable[[dict[str, int]], str]
    held_out_text: str

    @property
    def model(self) -> Path:
        return REPO / "models" / f"{self.name}.onnx"


def main(recipe: Recipe, doc: str) -> None:
    """The steps of a single-date recipe: dataset, train, export, evaluate (default: all)."""
    import argparse
    import shutil

    from harness import data_folder, machine

    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=REPO / "bench-output" / recipe.name)
    steps = ["dataset", "train", "export", "evaluate"]
    parser.add_argument("--steps", nargs="*", default=steps, choices=[*steps, "stamp"])
    arguments = parser.parse_args()
    plugin_path()
    data = data_folder("sen12mscr_pairs")
    work = arguments.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    if arguments.steps == ["stamp"]:
        images = recipe.held_out_images(data)
        fills = single_date_fills(recipe.model, recipe.name, recipe.with_sar, dip=False)
        results = evaluate_images(data, work, images, fills)
        metrics = card_metrics(results, images, recipe.name, recipe.held_out_text)
        methods = (recipe.name, SPATIAL, PYRAMID)
        tables = {
            protocol: table(by_scene(results[protocol], images), methods)
            for protocol in (PURE, SEN12MSCR)
            if results[protocol]
        }
        stamp(recipe.model, metrics, tables, recipe.held_out_text)
        (work / f"{recipe.name}_stamp.json").write_text(json.dumps(results, indent=2))
        print(f"Machine: {machine()}")
        return
    dataset, run, saved = work / "dataset", work / "run", work / "dataset.json"
    if "dataset" in arguments.steps:
        masks, counts = recipe.make_dataset(data, work)
        saved.write_text(json.dumps({"masks": masks, "counts": counts}))
    found = json.loads(saved.read_text())
    command = train_command(dataset, run, found["masks"], recipe.options)
    if "train" in arguments.steps:
        shutil.rmtree(run, ignore_errors=True)
        seconds = run_training(command)
        (work / "training_seconds.txt").write_text(f"{seconds:.0f}\n")
        print(f"Training: {seconds:.0f} s wall", flush=True)
    if "export" in arguments.steps:
        export(run, recipe.model, recipe.name, recipe.description, recipe.licence)
    if "evaluate" in arguments.steps:
        images = recipe.held_out_images(data)
        fills = single_date_fills(recipe.model, recipe.name, recipe.with_sar)
        results = evaluate_images(data, work, images, fills)
        metrics = card_metrics(results, images, recipe.name, recipe.held_out_text)
        write_card(recipe.model, metrics, recipe.training_data(found["counts"]))
        (work / f"{recipe.name}.json").write_text(json.dumps(results, indent=2))
        seconds = float((work / "training_seconds.txt").read_text())
        shown = shown_command(command, data)
        note = model_note(recipe, results, images, metrics, shown, seconds, run)
        recipe.model.with_suffix(".md").write_text(note, encoding="utf-8")
        print(note)
        print(f"Machine: {machine()}")


def model_note(
    recipe: Recipe,
    results: dict[str, Results],
    images: Sequence[Image],
    metrics: dict[str, Any],
    command: str,
    seconds: float,
    run: Path,
) -> str:
    """The model note models/<name>.md: what the model takes, its data and split, how to
    reproduce it, and its held-out figures by scene with the verdicts."""
    from gapfill.core.learned.model_card import read_card
    from gapfill.training.checkpoints import load_checkpoint
    from gapfill.training.networks import flops_per_pixel, model_from_config, parameter_count

    card = read_card(recipe.model)
    entry = metrics["baselines"]
    methods = (recipe.name, SPATIAL, PYRAMID, DIP)
    tables = {
        protocol: table(by_scene(results[protocol], images), methods)
        for protocol in (PURE, SEN12MSCR)
        if results[protocol]
    }
    network = model_from_config(load_checkpoint(run / "last.pt")["model_config"])
    size = (
        f"{parameter_count(network.exported()):,} parameters, "
        f"{flops_per_pixel(network) / 1e3:.0f} kFLOP per pixel, context margin "
        f"{card.context_margin} px, sizes a multiple of {card.size_multiple} px"
    )
    inputs = ", ".join(f"{item.role} ({', '.join(item.bands)})" for item in card.inputs)
    other = entry["other_protocols"].get(SEN12MSCR, {})
    standing = (
        "It is a default of `gapfill:fillgaps` for the layers it takes."
        if entry["verdict"] == "beats"
        else "It is not a default: `gapfill:fillgaps` never chooses it by itself."
    )
    auxiliary = "Sentinel-1 as auxiliary source" if recipe.with_sar else "no auxiliary source"
    return f"""# {recipe.name}

{recipe.description}

{card.architecture}: {size}. Inputs: {inputs}; output: the {len(card.output.bands)} bands, DN.
`gapfill:fillgaps` replaces gap pixels only (clear pixels are copied bit-exactly); the card
recommends tiles of {card.recommended_tile_size} px.

**Verdict (pure gap filling, the protocol defaults are decided on): the model
{entry["verdict"].upper()}.** {entry["summary"]}
{standing}

## Data and split

{card.training_data}

## Reproduce

    python training/recipes/{recipe.name}.py --work bench-output/{recipe.name}

(steps dataset, train, export, evaluate), which trains with

    {command}

({seconds / 60:.0f} min wall on the 2-core development machine, shared with other jobs), exports
the last epoch (`last.pt`, no selection on held-out data) and evaluates it: every fill through
`qgis_process`, scored by `gapfill:evaluatefill` (DN / 10000 clipped to [0, 1]). PyTorch CPU
kernels are not bit-reproducible across CPUs: the last digits may differ.

## Held-out figures by scene

Pure gap filling: real cloud and shadow shapes of `cloud_labels` (labels 4 and 0, never used in
training; each image another 256 × 256 quarter) laid on the held-out clear images, scored
against those images. Spatial IDW and pyramid: `gapfill:fillspatial` (METHOD 0 and 1,
MAX_DISTANCE 300); Deep Image Prior: `gapfill:filldip` (300 iterations, seed 0, {auxiliary}).
Quick-looks (clear | gaps | model | IDW | pyramid | DIP | clear) in
`bench-output/{recipe.name}/evaluation/pure/*/quicklook.png`.

{tables[PURE]}

SEN12MS-CR protocol: the cloudy image with its cloud mask (the sample's own, or the spectral
gap mask of `gapfill:buildgapmask` where there is none), scored under the mask against the
clear image of the other date. {other.get("summary", "")}

{tables.get(SEN12MSCR, "(no held-out image with a cloudy date)")}
"""


STAMPED = "<!-- verdict: written by the recipe's stamp step -->"


def stamp(model: Path, metrics: dict[str, Any], tables: dict[str, str], held_out: str) -> None:
    """The verdict of the bundled model as it is (weights unchanged), measured now: into its
    card (`validation_metrics`, with `baselines`) and first in its note, before what the note
    says of its training (an earlier stamped section is replaced)."""
    from gapfill.core.learned.model_card import read_card
    from gapfill.core.learned.model_card import write_card as write_model_card

    card = read_card(model)
    write_model_card(model, dataclasses.replace(card, validation_metrics=metrics))
    entry = metrics["baselines"]
    standing = (
        "It is a default of `gapfill:fillgaps` for the layers it takes."
        if entry["verdict"] == "beats"
        else "It is not a default: `gapfill:fillgaps` never chooses it by itself."
    )
    sections = [
        f"{STAMPED}\n## Verdict\n",
        f"The bundled weights as they are, measured on {held_out} by `python "
        f"training/recipes/{model.stem}.py --steps stamp`, pure gap filling (the protocol "
        f"defaults are decided on: {entry['protocol']}): **the model {entry['verdict'].upper()}"
        f".** {entry['summary']} {standing} Spatial IDW and pyramid: `gapfill:fillspatial` "
        "(METHOD 0 and 1, MAX_DISTANCE 300). The figures of the sections below are those of "
        "the model's training, under the protocol of its time.\n",
        tables[PURE] + "\n",
    ]
    other = entry.get("other_protocols", {}).get(SEN12MSCR)
    if other and SEN12MSCR in tables:
        sections += [f"{other['protocol']}: {other['summary']}\n", tables[SEN12MSCR] + "\n"]
    section = "\n".join(sections) + STAMPED + "\n\n"
    note = model.with_suffix(".md")
    text = note.read_text(encoding="utf-8")
    if STAMPED in text:
        before, _, rest = text.partition(STAMPED)
        text = before + rest.partition(STAMPED)[2].lstrip("\n")
    head, heading, tail = text.partition("\n## ")
    note.write_text(f"{head}\n{section}{heading.lstrip(chr(10))}{tail}", encoding="utf-8")
