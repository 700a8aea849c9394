"""The training configuration: one dataclass, read from YAML into argparse defaults.

The defaults are the recipe measured on held-out places (benchmarks/bench_training_defaults.py,
BENCHMARKS.md "Training defaults"): the U-Net fusion (width 32, 3 levels), L1 + 0.1 × spectral
angle on the gap pixels, learning rate 2e-3 with a cosine decay, 10 epochs of at least 512
samples (small datasets drawn again with fresh crops, flips and gaps), flips and rotations.

Every option is also a command-line flag (`--batch-size 16`, `--no-augment`), and a YAML file
given with `--config` sets the defaults that flags then override. The resolved configuration is
saved as `config.yaml` next to the run's outputs. No torch here: the QGIS algorithm imports this
module at plugin load.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from ..core.dependencies import require
from ..core.errors import GapfillError

Architecture = Literal[
    "unet-fusion", "deepgapfill", "dsen2cr", "pconv-unet", "cgan", "unet-blend", "unet-pyramid"
]
ARCHITECTURES: tuple[str, ...] = get_args(Architecture)
Loss = Literal["", "l1", "l2", "carl", "masked-l1", "pconv", "adversarial", "masked-l1-sam"]
LOSSES: tuple[str, ...] = get_args(Loss)[1:]
DEFAULT_LOSS = {
    "unet-fusion": "masked-l1-sam",
    "deepgapfill": "l2",
    "dsen2cr": "carl",
    "pconv-unet": "pconv",
    "cgan": "adversarial",
    "unet-blend": "l1",
    "unet-pyramid": "masked-l1-sam",
}
GAP_LOSSES = ("masked-l1", "masked-l1-sam")  # learn on the gap pixels only
Schedule = Literal["cosine", "plateau", "step", "none"]
Monitor = Literal["mae", "loss", "psnr"]
Device = Literal["auto", "cpu", "cuda"]
SimulateGaps = Literal["auto", "always", "never"]
CONFIG_NAME = "config.yaml"


class ConfigError(GapfillError):
    """An option has a value the training package cannot use."""


@dataclass
class TrainConfig:
    """Every option of a training run; `help` of each field is its flag's help."""

    dataset: list[str] = field(
        default_factory=list,
        metadata={
            "help": "patch dataset folder(s) (manifest.json); several (one per scene) are read "
            "as one",
            "paths": True,
        },
    )
    output: str = field(
        default="", metadata={"help": "run folder: checkpoints, log, curves, config, model"}
    )
    architecture: Architecture = field(
        default="unet-fusion", metadata={"help": "network architecture"}
    )
    roles: list[str] = field(
        default_factory=list,
        metadata={"help": "input roles of the network (default: the architecture's)"},
    )
    width: int = field(
        default=0, metadata={"help": "features of the first level/block (0 = default)"}
    )
    depth: int = field(
        default=0, metadata={"help": "levels (U-Nets) or residual blocks (0 = default)"}
    )
    loss: Loss = field(default="", metadata={"help": "loss (default: the architecture's)"})
    carl_lambda: float = field(
        default=1.0, metadata={"help": "weight of CARL's global |P - T| term"}
    )
    sam_weight: float = field(
        default=0.1, metadata={"help": "weight of the spectral angle (radians) in masked-l1-sam"}
    )
    gan_l1_weight: float = field(
        default=100.0, metadata={"help": "weight of L1 next to the adversarial loss"}
    )
    epochs: int = field(default=10, metadata={"help": "epochs to train (in all, with resume)"})
    batch_size: int = field(default=8, metadata={"help": "patches per batch (per process)"})
    learning_rate: float = field(default=2e-3, metadata={"help": "initial learning rate"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    schedule: Schedule = field(default="cosine", metadata={"help": "learning-rate schedule"})
    patience: int = field(
        default=0, metadata={"help": "early stopping after N epochs without progress (0 = off)"}
    )
    monitor: Monitor = field(
        default="mae", metadata={"help": "validation value that picks the best checkpoint"}
    )
    seed: int = field(default=0, metadata={"help": "seed of weights, order and augmentation"})
    device: Device = field(default="auto", metadata={"help": "cuda when available, else cpu"})
    amp: bool = field(default=True, metadata={"help": "mixed precision (CUDA only)"})
    workers: int = field(
        default=-1, metadata={"help": "DataLoader workers (-1 = 0 on CPU, up to 4 on CUDA)"}
    )
    augment: bool = field(default=True, metadata={"help": "random flips and rotations"})
    epoch_samples: int = field(
        default=512,
        metadata={
            "help": "samples per epoch at least: a smaller training split is drawn again, each "
            "draw with its own crop, flips and simulated gaps (0 = one pass)"
        },
    )
    simulate_gaps: SimulateGaps = field(
        default="auto",
        metadata={"help": "simulated gaps from cloud shapes (auto: when no reference role)"},
    )
    cloud_masks: list[str] = field(
        default_factory=list,
        metadata={
            "help": "cloud-mask rasters (PATH or PATH:gap values, e.g. labels.tif:0,4)",
            "paths": True,
        },
    )
    gap_cover: list[float] = field(
        default_factory=lambda: [0.05, 0.6],
        metadata={"help": "range of the simulated gap fraction of a patch"},
    )
    train_limit: int = field(default=0, metadata={"help": "use the first N training patches"})
    validation_limit: int = field(
        default=0, metadata={"help": "use the first N validation patches"}
    )
    resume: bool = field(default=False, metadata={"help": "continue from <output>/last.pt"})
    force_export: bool = field(
        default=False, metadata={"help": "export even when output bands collapsed"}
    )
    export: str = field(
        default="",
        metadata={"help": "ONNX path ('' = <output>/model.onnx, 'none' = no export)"},
    )
    parity_size: list[int] = field(
        default_factory=list,
        metadata={"help": "height width of the export parity check (default: off the patch)"},
    )
    name: str = field(default="", metadata={"help": "model name in the card"})
    description: str = field(default="", metadata={"help": "model description in the card"})
    licence: str = field(default="", metadata={"help": "licence of the model in the card"})
    tile_size: int = field(default=256, metadata={"help": "recommended tile size in the card"})
    progress_bar: bool = field(default=True, metadata={"help": "tqdm bars on a terminal"})


FIELDS = {item.name: item for item in dataclasses.fields(TrainConfig)}
_HINTS = typing.get_type_hints(TrainConfig)


def _choices(hint: Any) -> tuple[str, ...] | None:
    return get_args(hint) if typing.get_origin(hint) is Literal else None


def _base_type(hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return str
    if origin is list:
        return list
    return hint


def _item_type(hint: Any) -> Any:
    return get_args(hint)[0] if typing.get_origin(hint) is list else hint


def coerce(name: str, value: Any) -> Any:
    """`value` checked and converted to the type of option `name`, or a `ConfigError`."""
    if name not in FIELDS:
        known = ", ".join(sorted(FIELDS))
        raise ConfigError(f"Unknown training option '{name}'. Known options: {known}.")
    hint = _HINTS[name]
    kind = _base_type(hint)
    try:
        if kind is list:
            if isinstance(value, (list, tuple)):
                items = list(value)
            elif FIELDS[name].metadata.get("paths"):  # one path, spaces and all
                items = [str(value)] if str(value).strip() else []
            else:
                items = str(value).split()
            item = _item_type(hint)
            return [item(entry) for entry in items]
        if kind is bool:
            if isinstance(value, str) and value.lower() in ("true", "yes", "1", "false", "no", "0"):
                return value.lower() in ("true", "yes", "1")
            if not isinstance(value, bool):
                raise TypeError(value)
            return value
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise TypeError(value)
        converted = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"The training option '{name}' must be {_type_words(hint)}, not {value!r}."
        ) from None
    choices = _choices(hint)
    if choices is not None and converted not in choices:
        listing = ", ".join(repr(choice) for choice in choices if choice)
        raise ConfigError(f"The training option '{name}' is {value!r}; use one of {listing}.")
    return converted


def _type_words(hint: Any) -> str:
    kind = _base_type(hint)
    if kind is list:
        return f"a list of {_type_words(_item_type(hint))} values"
    return {int: "an integer", float: "a number", bool: "true or false"}.get(kind, "a text")


def config_from_dict(values: dict[str, Any]) -> TrainConfig:
    """A config from a mapping (YAML, the QGIS algorithm); keys may use '-' or '_'."""
    fields = {str(key).replace("-", "_"): value for key, value in values.items()}
    return TrainConfig(**{name: coerce(name, value) for name, value in fields.items()})


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The options of a YAML config file (a mapping of option names to values)."""
    yaml = require("yaml", "Reading a training configuration", "pyyaml")
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"Cannot read the configuration '{path}': {error}.") from error
    except yaml.YAMLError as error:
        raise ConfigError(f"The configuration '{path}' is not valid YAML: {error}") from error
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(f"The configuration '{path}' must be a mapping of option: value.")
    return {
        str(key).replace("-", "_"): coerce(str(key).replace("-", "_"), value)
        for key, value in document.items()
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per option; `--config FILE` is handled by `parse_train_args`."""
    parser.add_argument("--config", metavar="YAML", help="YAML file of option defaults")
    for name, item in FIELDS.items():
        hint = _HINTS[name]
        flag = "--" + name.replace("_", "-")
        help_text = item.metadata.get("help", "")
        kind = _base_type(hint)
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, help=help_text)
        elif kind is list:
            parser.add_argument(flag, nargs="*", type=_item_type(hint), help=help_text)
        else:
            choices = [choice for choice in (_choices(hint) or ()) if choice] or None
            parser.add_argument(flag, type=kind, choices=choices, help=help_text)
    parser.set_defaults(**{name: _default(name) for name in FIELDS})


def _default(name: str) -> Any:
    item = FIELDS[name]
    if item.default_factory is not dataclasses.MISSING:
        return item.default_factory()
    return item.default


def parse_train_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> TrainConfig:
    """Flags over the YAML file's values over the dataclass defaults."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    known, _ = pre.parse_known_args(argv)
    if known.config:
        parser.set_defaults(**read_yaml(known.config))
    arguments = vars(parser.parse_args(argv))
    return config_from_dict({name: arguments[name] for name in FIELDS})


def config_dict(config: TrainConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)


def save_config(config: TrainConfig, folder: str | Path) -> Path:
    """Write the resolved config as YAML next to the outputs (readable back with --config)."""
    yaml = require("yaml", "Saving the training configuration", "pyyaml")
    path = Path(folder) / CONFIG_NAME
    temporary = path.with_name(f".{path.name}.partial")
    temporary.write_text(
        "# Resolved configuration of this run: python -m <plugin>.training train --config "
        f"{CONFIG_NAME}\n" + yaml.safe_dump(config_dict(config), sort_keys=False),
        encoding="utf-8",
    )
    temporary.replace(path)
    return path
