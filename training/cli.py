"""Command line: `python -m <plugin>.training {train,export,evaluate,info,make-dataset} ...`.

    train          train a network on a patch dataset (YAML config and/or flags; torchrun works)
    export         export a checkpoint to ONNX with its model card
    evaluate       metrics of an ONNX model or a checkpoint on a dataset split
    info           describe a dataset folder, an ONNX model, a checkpoint or an architecture
    make-dataset   write a patch dataset from rasters (no QGIS needed)

Errors a user can fix are printed as one clear message (exit status 2), without a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..core.errors import Cancelled, GapfillError, MissingDependencyError, flag_name
from .config import ARCHITECTURES, add_arguments, parse_train_args

PROGRAM = f"python -m {__package__}" if __package__ else "training"
DEFAULT_CHANNELS = {
    "target": 13,
    "gap_mask": 1,
    "sar": 2,
    "optical_before": 13,
    "optical_after": 13,
    "dem": 1,
}


def _parser(prog: str = PROGRAM) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The command-line parser, and its `train` sub-parser (re-parsed with YAML defaults)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Gapfill's headless training package: train gap-filling networks on patch "
        "datasets and export them as ONNX models with model cards.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train a network on a patch dataset")
    add_arguments(train)

    export = commands.add_parser("export", help="export a checkpoint to ONNX")
    export.add_argument("checkpoint", help="best.pt or last.pt of a run")
    export.add_argument("output", help="ONNX file to write")
    export.add_argument("--name", default="", help="model name in the card")
    export.add_argument("--description", default="")
    export.add_argument("--licence", default="")
    export.add_argument("--tile-size", type=int, default=0, help="recommended tile size")
    export.add_argument(
        "--force",
        action="store_true",
        help="export even when output bands collapsed (flat or stuck at a bound)",
    )
    export.add_argument(
        "--parity-size",
        type=int,
        nargs=2,
        metavar=("HEIGHT", "WIDTH"),
        help="shape of the ONNX Runtime vs PyTorch check",
    )

    evaluate = commands.add_parser("evaluate", help="metrics of a model on a dataset split")
    evaluate.add_argument("model", help="ONNX model or checkpoint (.pt)")
    evaluate.add_argument(
        "--dataset", required=True, nargs="+", help="patch dataset folder(s), read as one"
    )
    evaluate.add_argument("--split", default="validation", choices=["train", "validation"])
    evaluate.add_argument("--batch-size", type=int, default=8)
    evaluate.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    evaluate.add_argument(
        "--cloud-masks", nargs="*", default=[], help="cloud masks for datasets without reference"
    )
    evaluate.add_argument("--limit", type=int, default=0, help="first N patches only")

    info = commands.add_parser("info", help="describe a dataset, model, checkpoint or network")
    info.add_argument("path", nargs="?", help="dataset folder, .onnx or .pt")
    info.add_argument("--architecture", choices=ARCHITECTURES, help="describe a network")
    info.add_argument("--width", type=int, default=0)
    info.add_argument("--depth", type=int, default=0)
    info.add_argument(
        "--roles",
        nargs="*",
        default=[],
        help="input roles (default: the architecture's, or those of the dataset PATH)",
    )

    make = commands.add_parser("make-dataset", help="write a patch dataset from rasters")
    make.add_argument("output", help="empty folder to write the dataset into")
    source = make.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--scene",
        action="append",
        nargs="+",
        metavar="ROLE=RASTER",
        help="one scene: role=raster pairs on one pixel grid (repeat for more scenes)",
    )
    source.add_argument("--sen12mscr", metavar="FOLDER", help="SEN12MS-CR samples folder")
    make.add_argument(
        "--validation-scene",
        action="append",
        nargs="+",
        default=[],
        metavar="ROLE=RASTER",
        help="a scene whose patches all go to validation (split by scene; repeat for more)",
    )
    make.add_argument("--ids", nargs="*", default=[], help="SEN12MS-CR sample ids (default: all)")
    make.add_argument("--patch-size", type=int, default=64)
    make.add_argument("--stride", type=int, default=0, help="default: the patch size")
    make.add_argument("--validation", type=float, default=0.2, help="validation fraction")
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("--overwrite", action="store_true")
    return parser, train


def main(argv: list[str] | None = None, prog: str = PROGRAM) -> int:
    """Run a command; `prog` names the program in help texts (`gapfill train` from the
    `gapfill` command line)."""
    argv = sys.argv[1:] if argv is None else argv
    parser, train_parser = _parser(prog)
    arguments = parser.parse_args(argv)
    try:
        if arguments.command == "train":
            return _train(train_parser, argv[argv.index("train") + 1 :])
        if arguments.command == "export":
            return _export(arguments)
        if arguments.command == "evaluate":
            return _evaluate(arguments)
        if arguments.command == "info":
            return _info(arguments)
        return _make_dataset(arguments)
    except Cancelled:
        print("Interrupted.", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("Interrupted: the last completed epoch is in last.pt (--resume).", file=sys.stderr)
        return 130
    except GapfillError as error:
        print(f"error: {error.worded(flag_name)}", file=sys.stderr)
        return 2
    except (MissingDependencyError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _train(parser: argparse.ArgumentParser, argv: list[str]) -> int:
    from .loop import train

    config = parse_train_args(parser, argv)
    result = train(config, log=lambda message: print(message, flush=True))
    if result.onnx:
        print(f"ONNX model: {result.onnx}")
    print(
        f"Run folder: {result.folder} (best epoch {result.best_epoch}: "
        f"{json.dumps(result.metrics)})"
    )
    return 0


def _export(arguments: argparse.Namespace) -> int:
    from ..core.learned.model_card import describe_card
    from .export import export_checkpoint

    card = export_checkpoint(
        arguments.checkpoint,
        arguments.output,
        name=arguments.name,
        description=arguments.description,
        licence=arguments.licence,
        tile_size=arguments.tile_size,
        parity_size=arguments.parity_size,
        force=arguments.force,
        log=print,
    )
    print(f"Wrote '{arguments.output}'.\n{describe_card(card)}")
    return 0


def _evaluate(arguments: argparse.Namespace) -> int:
    from .evaluate import evaluate_model

    result = evaluate_model(
        arguments.model,
        arguments.dataset,
        split=arguments.split,
        batch_size=arguments.batch_size,
        device=arguments.device,
        cloud_masks=arguments.cloud_masks,
        limit=arguments.limit,
        log=lambda message: print(message, file=sys.stderr),
    )
    print(json.dumps(result, indent=2))
    return 0


def _info(arguments: argparse.Namespace) -> int:
    if arguments.architecture:
        print(_describe_architecture(arguments))
        return 0
    if not arguments.path:
        from .networks import REGISTRY

        print("Architectures (details: info --architecture NAME):")
        for name, cls in REGISTRY.items():
            print(f"  {name}: {cls.description}")
        return 0
    path = Path(arguments.path)
    if path.is_dir():
        from .datasets import read_manifest

        print(read_manifest(path).describe())
    elif path.suffix.lower() == ".onnx":
        from ..core.learned.model_card import describe_card, read_card

        print(describe_card(read_card(path)))
    elif path.suffix.lower() == ".pt":
        print(_describe_checkpoint(path))
    else:
        raise GapfillError(f"'{path}' is not a dataset folder, an .onnx model or a .pt checkpoint.")
    return 0


def _describe_architecture(arguments: argparse.Namespace) -> str:
    from .networks import architecture, flops_per_pixel, get_model, parameter_count

    cls = architecture(arguments.architecture)
    channels = dict(DEFAULT_CHANNELS)
    available = list(channels)
    if arguments.path:
        from .datasets import available_roles, read_manifest, role_bands, truth_role

        manifest = read_manifest(arguments.path)
        available = available_roles(manifest)
        truth = truth_role(manifest)
        channels = {role: len(role_bands(manifest, role)) for role in [*available, truth]}
        out = channels[truth]
    else:
        out = 13
    roles = arguments.roles or list(cls.default_roles or available)
    roles = list(dict.fromkeys([*roles, *cls.required_roles]))
    model = get_model(
        cls.architecture,
        {role: channels[role] for role in roles},
        out,
        width=arguments.width,
        depth=arguments.depth,
    )
    return "\n".join(
        [
            f"{cls.architecture}: {cls.description}",
            f"  input roles: {', '.join(model.roles)} (required: "
            f"{', '.join(cls.required_roles) or 'none'}; default: "
            f"{', '.join(cls.default_roles or ['every role of the dataset'])})",
            f"  width {model.width}, depth {model.depth}; sizes multiple of "
            f"{model.size_multiple} px; context margin {model.context_margin} px",
            f"  {parameter_count(model.exported()):,} parameters (exported network); "
            f"{flops_per_pixel(model) / 1e3:.0f} kFLOP per pixel for "
            + ", ".join(f"{role} {channels[role]}" for role in model.roles)
            + f" → {out} bands",
        ]
    )


def _describe_checkpoint(path: Path) -> str:
    from .checkpoints import load_checkpoint

    state = load_checkpoint(path)
    config: dict[str, Any] = state.get("model_config", {})
    best = state.get("best") or {}
    lines = [
        f"Checkpoint '{path}': epoch {state.get('epoch')} of "
        f"{state.get('config', {}).get('epochs')}",
        f"  network: {json.dumps(config)}",
        f"  best epoch: {best.get('epoch')} ({best.get('monitor')}): "
        f"{json.dumps(best.get('metrics', {}))}",
    ]
    history = state.get("history") or []
    if history:
        lines.append(f"  last epoch: {json.dumps(history[-1])}")
    return "\n".join(lines)


def _make_dataset(arguments: argparse.Namespace) -> int:
    from .make_dataset import sen12mscr_scenes, write_dataset

    if arguments.sen12mscr:
        scenes = sen12mscr_scenes(arguments.sen12mscr, arguments.ids)
    else:
        scenes = [_scene(pairs) for pairs in arguments.scene]
    held = [_scene(pairs) for pairs in arguments.validation_scene]
    manifest = write_dataset(
        arguments.output,
        scenes,
        arguments.patch_size,
        stride=arguments.stride or None,
        validation=0.0 if held else arguments.validation,
        seed=arguments.seed,
        overwrite=arguments.overwrite,
        validation_scenes=held,
    )
    print(manifest.describe())
    return 0


def _scene(pairs: list[str]) -> dict[str, str]:
    """ROLE=RASTER words as a scene."""
    scene = {}
    for pair in pairs:
        role, separator, raster = pair.partition("=")
        if not separator:
            raise GapfillError(f"'{pair}' is not ROLE=RASTER (e.g. target=s2.tif).")
        scene[role] = raster
    return scene
