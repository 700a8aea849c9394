"""The training loop: seeded, validated each epoch, checkpointed, resumable, distributable.

`train(config)` reads the patch dataset, builds the network, trains it and exports the best
checkpoint to ONNX. Each epoch: a pass over the training split (AdamW, mixed precision on CUDA),
a validation pass measuring the loss and MAE, RMSE, PSNR, SSIM and SAM on the gap pixels with
`core.evaluate.metrics` (the functions of the Evaluate algorithm, on values scaled as it scales
them), the
learning-rate schedule, `last.pt` and, when the monitored value improved, `best.pt`, a CSV log
and a PNG of the curves. Early stopping ends the run after `patience` epochs without progress.

Determinism: weights come from the seed, the order of samples from (seed, epoch), augmentation
and simulated gaps from (seed, epoch, index); nothing else draws random numbers, so a run on the
CPU is repeatable and a resumed run ends with the weights of an uninterrupted one.

Distributed: under `torchrun`, each process trains on its share of every epoch (gloo on the CPU,
NCCL on GPUs) with gradients averaged by DistributedDataParallel; process 0 validates, writes
the outputs and decides when to stop.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..core.errors import GapfillError
from ..core.learned.model_card import BandScaling
from ..core.progress import (
    CancelledFn,
    ProgressFn,
    check_cancelled,
    never_cancelled,
    no_progress,
)
from .assessment import assess_checkpoint
from .checkpoints import BEST, LAST, load_checkpoint, save_checkpoint
from .config import (
    DEFAULT_LOSS,
    GAP_LOSSES,
    TrainConfig,
    config_dict,
    save_config,
)
from .curves import write_curves
from .datasets import (
    INPUT_ROLES,
    CloudShapes,
    DatasetError,
    Manifest,
    PatchDataset,
    available_roles,
    read_manifest,
    role_bands,
    role_scalings,
    truth_role,
)
from .export import card_info, export_checkpoint, scalings_of
from .losses import gan_loss, reconstruction_loss
from .networks import GapfillNet, architecture, flops_per_pixel, get_model, parameter_count
from .validation import (
    METRIC_KEYS,
    collapse_warning,
    collapsed_bands,
    evaluation_scaling,
    metrics_row,
    validate,
)

LogFn = Callable[[str], None]
LOG_NAME, CURVES_NAME, MODEL_NAME = "log.csv", "curves.png", "model.onnx"
CURVES_EVERY_S = 60.0
LOG_COLUMNS = (
    "epoch",
    "learning_rate",
    "train_loss",
    "validation_loss",
    "mae",
    "rmse",
    "psnr",
    "ssim",
    "sam",
    "ndvi_mae",
    "evaluated",
    "collapsed_bands",
    "seconds",
    "samples_per_second",
)


# ---------------------------------------------------------------- what to train


@dataclass
class Plan:
    """What a configuration trains, checked against the dataset before any heavy work."""

    config: TrainConfig
    manifest: Manifest
    architecture: type[GapfillNet]
    roles: tuple[str, ...]
    truth: str
    loss: str
    size: int
    multiple: int
    scalings: dict[str, tuple[BandScaling, ...]]
    shapes: CloudShapes | None
    notes: list[str] = field(default_factory=list)

    @property
    def inputs(self) -> dict[str, int]:
        return {role: len(role_bands(self.manifest, role)) for role in self.roles}

    @property
    def out_channels(self) -> int:
        return len(self.manifest.roles[self.truth].bands)

    def dataset(self, split: str, augment: bool) -> PatchDataset:
        config = self.config
        return PatchDataset(
            self.manifest,
            split,
            self.roles,
            self.scalings,
            size=self.size,
            augment=augment,
            shapes=self.shapes,
            seed=config.seed,
            limit=config.train_limit if split == "train" else config.validation_limit,
            samples=config.epoch_samples if split == "train" else 0,
        )

    def card_info(self) -> dict[str, Any]:
        manifest = self.manifest
        bands = {role: role_bands(manifest, role) for role in (*self.roles, self.truth)}
        sources = "; ".join(
            f"{role}: {manifest.roles[role].source}"
            for role in (*self.roles, self.truth)
            if role in manifest.roles and manifest.roles[role].source
        )
        gaps = "simulated from real cloud masks" if self.shapes is not None else "the dataset's"
        text = (
            f"{manifest.name}: {manifest.splits['train']} training and "
            f"{manifest.splits['validation']} validation patches of {manifest.patch_size} px "
            f"({manifest.split_method or 'unknown'} split, seed {manifest.seed}); truth: "
            f"{self.truth}; gaps: {gaps}" + (f"; sources {sources}" if sources else "")
        )
        return card_info(
            self.roles,
            bands,
            self.scalings,
            self.truth,
            patch_size=self.size,
            training_data=text[:2000],
        )


def _roles(config: TrainConfig, cls: type[GapfillNet], manifest: Manifest) -> tuple[str, ...]:
    available = available_roles(manifest)
    name = cls.architecture
    if config.roles:
        unknown = [role for role in config.roles if role not in INPUT_ROLES]
        if unknown:
            raise GapfillError(
                f"Unknown input role {', '.join(unknown)}: use {', '.join(INPUT_ROLES)}."
            )
        wanted = list(config.roles)
    elif cls.default_roles is not None:
        wanted = list(cls.default_roles)
    else:
        wanted = available
    missing = [role for role in [*wanted, *cls.required_roles] if role not in available]
    if missing:
        raise DatasetError(
            f"The architecture '{name}' needs the role(s) {', '.join(dict.fromkeys(missing))}, "
            f"which the dataset {manifest.where} does not have (it has "
            f"{', '.join(manifest.roles)}). Extract patches with those layers"
            + ("" if cls.required_roles else ", or choose the input roles ({roles})")
            + ".",
            options=("roles",),
        )
    roles = tuple(role for role in INPUT_ROLES if role in set(wanted) | set(cls.required_roles))
    if not set(roles) - {"gap_mask"}:
        raise DatasetError("The network needs some image to fill from, not only the gap mask.")
    return roles


def plan_run(config: TrainConfig, log: LogFn = lambda _message: None) -> Plan:
    """Check the configuration against the dataset: roles, patch size, loss, gap simulation."""
    if not config.dataset:
        raise GapfillError(
            "No dataset given: give the patch dataset folder ({dataset}).", options=("dataset",)
        )
    for name in ("epochs", "batch_size"):
        if getattr(config, name) < 1:
            raise GapfillError(
                f"The option {{{name}}} is {getattr(config, name)}; it must be ≥ 1.",
                options=(name,),
            )
    if not config.learning_rate > 0:
        raise GapfillError(
            f"The learning rate ({{learning_rate}}) must be positive (got {config.learning_rate}).",
            options=("learning_rate",),
        )
    manifest = read_manifest(config.dataset)
    cls = architecture(config.architecture)
    roles = _roles(config, cls, manifest)
    truth = truth_role(manifest)
    loss = config.loss or DEFAULT_LOSS[cls.architecture]
    if loss == "adversarial" and not getattr(cls, "adversarial", False):
        raise GapfillError(
            f"The adversarial loss needs a discriminator: use the 'cgan' architecture, or another "
            f"loss with '{cls.architecture}'."
        )
    if loss == "carl" and "target" not in manifest.roles:
        raise DatasetError(
            "The CARL loss compares the output with the cloudy input on clear pixels: the dataset "
            "needs a 'target' role."
        )
    multiple = cls.multiple_for(config.depth or cls.default_depth)
    patch = manifest.patch_size
    if patch < multiple:
        raise DatasetError(
            f"The patches are {patch} px, smaller than the {multiple} px that "
            f"'{cls.architecture}' needs (its sizes are multiples of {multiple} px). Extract "
            f"patches of {max(multiple, 64)} px or more, or choose a shallower network "
            "({depth}).",
            options=("depth",),
        )
    notes = []
    size = patch // multiple * multiple
    if size != patch:
        notes.append(
            f"Patches of {patch} px are cut to {size} px (multiples of {multiple} px for "
            f"'{cls.architecture}')."
        )
    simulate = config.simulate_gaps == "always" or (
        config.simulate_gaps == "auto" and truth == "target"
    )
    shapes = None
    if simulate:
        if not config.cloud_masks:
            reason = (
                "The dataset has no 'reference' role, so its targets are taken as clear and gaps "
                "are simulated on them from real cloud-mask shapes"
                if truth == "target"
                else "Simulated gaps were asked for"
            )
            raise DatasetError(
                f"{reason}, but no cloud-mask raster was given. Give some with {{cloud_masks}} "
                "(e.g. eolearn_slovenia/cloud_mask.tif, cloud_labels/labels.tif:0,4).",
                options=("cloud_masks",),
            )
        if len(config.gap_cover) != 2:
            raise GapfillError(
                "{gap_cover} takes two fractions: lowest and highest.", options=("gap_cover",)
            )
        shapes = CloudShapes.from_specs(config.cloud_masks, tuple(config.gap_cover))
        notes.append(
            f"Simulated gaps from {len(shapes.masks)} cloud mask(s) of "
            f"{', '.join(config.cloud_masks)}."
        )
    if loss in GAP_LOSSES and shapes is None and "gap_mask" not in manifest.roles:
        raise DatasetError(
            f"The loss {loss} learns on gap pixels only, and the dataset {manifest.where} has "
            "no gap mask and no simulated gaps: give cloud masks ({cloud_masks}) to simulate "
            "gaps, or choose the loss l1 ({loss}).",
            options=("cloud_masks", "loss"),
        )
    if manifest.splits["train"] == 0:
        raise DatasetError(
            f"The dataset {manifest.where} has no training patch (its validation split has "
            f"{manifest.splits['validation']}). Sample and extract patches again with a "
            "training share."
        )
    scalings = role_scalings(manifest, [*roles, truth])
    plan = Plan(
        config, manifest, cls, roles, truth, loss, size, multiple, scalings, shapes, notes
    )
    for note in notes:
        log(note)
    return plan


# ---------------------------------------------------------------- one step


class EpochSampler(torch.utils.data.Sampler[int]):
    """Indices of one process for one epoch: a permutation seeded by (seed, epoch), padded to a
    multiple of the process count so that every process runs as many batches."""

    def __init__(self, length: int, seed: int, rank: int = 0, world: int = 1, shuffle=True):
        self.length, self.seed, self.rank, self.world = length, seed, rank, world
        self.shuffle = shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _indices(self) -> list[int]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
            indices = torch.randperm(self.length, generator=generator).tolist()
        else:
            indices = list(range(self.length))
        padded = -(-self.length // self.world) * self.world
        indices += indices[: padded - self.length]
        return indices[self.rank :: self.world]

    def __iter__(self) -> Iterator[int]:
        return iter(self._indices())

    def __len__(self) -> int:
        return -(-self.length // self.world)


def to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, dict):
        return {key: to_device(value, device) for key, value in batch.items()}
    return batch.to(device, non_blocking=True)


class Stepper:
    """Optimisation steps of a network (and of its discriminator for the cGAN)."""

    def __init__(
        self,
        model: GapfillNet,
        loss: str,
        config: TrainConfig,
        device: torch.device,
        *,
        distributed: bool = False,
    ) -> None:
        self.model = model.to(device)
        self.device = device
        self.adversarial = loss == "adversarial"
        self.reconstruction = reconstruction_loss(
            loss, carl_lambda=config.carl_lambda, sam_weight=config.sam_weight
        )
        self.l1_weight = config.gan_l1_weight
        self.amp = config.amp and device.type == "cuda"
        betas = (0.5, 0.999) if self.adversarial else (0.9, 0.999)
        generator_parameters = (
            model.generator.parameters() if self.adversarial else model.parameters()
        )
        self.optimizers = [
            torch.optim.AdamW(
                generator_parameters,
                config.learning_rate,
                betas=betas,
                weight_decay=config.weight_decay,
            )
        ]
        self.network: nn.Module = model.generator if self.adversarial else model
        self.discriminator: nn.Module | None = None
        if self.adversarial:
            self.discriminator = model.discriminator
            self.optimizers.append(
                torch.optim.AdamW(
                    model.discriminator.parameters(),
                    config.learning_rate,
                    betas=betas,
                    weight_decay=config.weight_decay,
                )
            )
        if distributed:
            ids = [device.index] if device.type == "cuda" else None
            parallel = torch.nn.parallel.DistributedDataParallel
            self.network = parallel(self.network, device_ids=ids)
            if self.discriminator is not None:
                self.discriminator = parallel(self.discriminator, device_ids=ids)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp:
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    def inputs(self, batch: Mapping[str, Any]) -> list[torch.Tensor]:
        return [batch["inputs"][role] for role in self.model.roles]

    def step(self, batch: Mapping[str, Any]) -> float:
        """One optimisation step on a batch (on the device); returns the loss before it."""
        self.model.train()
        inputs = self.inputs(batch)
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            prediction = self.network(*inputs)
        if self.discriminator is not None:
            self._discriminator_step(inputs, prediction, batch["reference"])
            self.optimizers[0].zero_grad(set_to_none=True)
        with self.autocast():
            loss = self.reconstruction(prediction.float(), batch)
            if self.discriminator is not None:
                fake = self.discriminator(torch.cat([*inputs, prediction], dim=1))
                loss = gan_loss(fake.float(), True) + self.l1_weight * loss
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizers[0])
        self.scaler.update()
        return float(loss.detach())

    def _discriminator_step(
        self, inputs: list[torch.Tensor], prediction: torch.Tensor, reference: torch.Tensor
    ) -> None:
        """pix2pix: ½·(BCE(D(x, y), real) + BCE(D(x, G(x)), fake)), in one forward pass."""
        real = torch.cat([*inputs, reference], dim=1)
        fake = torch.cat([*inputs, prediction.detach()], dim=1)
        with self.autocast():
            logits = self.discriminator(torch.cat([real, fake], dim=0)).float()
            half = real.shape[0]
            loss = 0.5 * (gan_loss(logits[:half], True) + gan_loss(logits[half:], False))
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizers[1])
        self.optimizers[1].zero_grad(set_to_none=True)

    @torch.no_grad()
    def predict(self, batch: Mapping[str, Any]) -> torch.Tensor:
        self.model.eval()
        with self.autocast():
            return self.model(*self.inputs(batch)).float()

    def loss(self, prediction: torch.Tensor, batch: Mapping[str, Any]) -> float:
        """The validation loss: the reconstruction loss (L1 for the cGAN, whose adversarial
        term depends on the discriminator of the moment)."""
        return float(self.reconstruction(prediction, batch))

    def state(self) -> dict[str, Any]:
        return {
            "optimizers": [optimizer.state_dict() for optimizer in self.optimizers],
            "scaler": self.scaler.state_dict(),
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        for optimizer, saved in zip(self.optimizers, state["optimizers"], strict=True):
            optimizer.load_state_dict(saved)
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])


# ---------------------------------------------------------------- the run


@dataclass
class TrainResult:
    folder: Path
    last: Path
    best: Path
    log: Path
    curves: Path | None
    onnx: Path | None
    epochs: int
    best_epoch: int
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    stopped_early: bool = False
    assessment: dict[str, Any] = field(default_factory=dict)  # the card's `baselines`


def _distributed() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def _device(name: str, local_rank: int) -> torch.device:
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise GapfillError(
                "CUDA was asked for, but this PyTorch sees no CUDA GPU (torch.cuda.is_available() "
                "is False). Use device 'cpu' or 'auto', or install a CUDA build of PyTorch."
            )
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


@dataclass(frozen=True)
class RatePlan:
    """The learning rate of epochs start + 1 … end: `rate` at the first, then the schedule's
    decay towards `floor` (cosine), or a tenth every third of the epochs (step), or constant
    (none; plateau: `ReduceLROnPlateau` lowers it). Kept in checkpoints: a resumed run
    follows the same plan; one resumed to more epochs continues from the rate it had reached
    down to the floor over the new epochs, so the rate never climbs back."""

    start: int
    end: int
    rate: float
    floor: float
    kind: str

    @classmethod
    def of(cls, config: TrainConfig, epochs: int | None = None) -> RatePlan:
        rate = config.learning_rate
        return cls(0, epochs or config.epochs, rate, rate * 0.01, config.schedule)

    def at(self, epoch: int) -> float:
        steps = max(1, self.end - self.start)
        position = min(max(epoch - self.start - 1, 0), steps - 1)
        if self.kind == "cosine" and self.rate > self.floor:
            wave = (1 + math.cos(math.pi * position / steps)) / 2
            return self.floor + (self.rate - self.floor) * wave
        if self.kind == "step":
            return self.rate * 0.1 ** (position // max(1, steps // 3))
        return self.rate

    def extended(self, done: int, epochs: int) -> RatePlan:
        """The plan of a run resumed after epoch `done` to `epochs` in all."""
        if epochs == self.end:
            return self
        rate = self.at(min(done + 1, self.end))
        return dataclasses.replace(self, start=done, end=epochs, rate=rate)


def _plateaus(optimizers: list[torch.optim.Optimizer], config: TrainConfig) -> list[Any]:
    """`ReduceLROnPlateau` per optimizer when the schedule is 'plateau' (else none)."""
    if config.schedule != "plateau":
        return []
    return [
        torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer,
            mode="min",  # the monitored value is negated when higher is better
            factor=0.5,
            patience=max(1, config.patience // 2 if config.patience else 2),
        )
        for optimizer in optimizers
    ]


def _monitored(config: TrainConfig, row: Mapping[str, Any]) -> float | None:
    """The value that picks the best epoch (lower is better; PSNR negated)."""
    key = {"mae": "mae", "psnr": "psnr", "loss": "validation_loss"}[config.monitor]
    value = row.get(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        value = row.get("validation_loss")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        value = row.get("train_loss")
        key = "train_loss"
    if value is None:
        return None
    return -value if key == "psnr" else value


def _agree(value: float, stop: bool, distributed: bool, device: torch.device) -> tuple[float, bool]:
    """Process 0's monitored value and stop decision, shared with every process."""
    if not distributed:
        return value, stop
    shared = torch.tensor([value, 1.0 if stop else 0.0], dtype=torch.float64, device=device)
    torch.distributed.broadcast(shared, 0)
    return float(shared[0]), bool(shared[1])


def _write_log(path: Path, history: list[dict[str, Any]]) -> None:
    temporary = path.with_name(f".{path.name}.partial")
    with temporary.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=LOG_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in history:
            writer.writerow({key: "" if row.get(key) is None else row[key] for key in LOG_COLUMNS})
    os.replace(temporary, path)


def _epoch_line(row: Mapping[str, Any], epochs: int, note: str) -> str:
    def number(key: str, form: str) -> str:
        value = row.get(key)
        return "–" if value is None else format(value, form)

    return (
        f"Epoch {row['epoch']}/{epochs}: train loss {number('train_loss', '.5g')}, validation "
        f"loss {number('validation_loss', '.5g')}; on {note}: MAE {number('mae', '.5g')}, RMSE "
        f"{number('rmse', '.5g')}, PSNR {number('psnr', '.2f')} dB, SSIM {number('ssim', '.4f')},"
        f" SAM {number('sam', '.3f')}°; lr {row['learning_rate']:.3g}; {row['seconds']:.1f} s "
        f"({row['samples_per_second']:.1f} samples/s)"
    )


def _bar(iterable: Any, enabled: bool, description: str, total: int) -> Any:
    if not enabled:
        return iterable
    try:
        from tqdm import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, desc=description, total=total, leave=False, dynamic_ncols=True)


def train(
    config: TrainConfig,
    *,
    progress: ProgressFn = no_progress,
    cancelled: CancelledFn = never_cancelled,
    log: LogFn = print,
) -> TrainResult:
    """Train as `config` says; see the module docstring. Raises `core.errors.Cancelled` when
    cancelled: `last.pt` then holds the last completed epoch and no ONNX file is written."""
    rank, world, local_rank = _distributed()
    main = rank == 0
    say: LogFn = log if main else (lambda _message: None)
    plan = plan_run(config, say)
    if not config.output:
        raise GapfillError(
            "No output folder given ({output}): where checkpoints are written.",
            options=("output",),
        )
    folder = Path(config.output)
    if folder.exists() and not folder.is_dir():
        raise GapfillError(
            f"The training folder '{folder}' is a file: checkpoints are written into a folder. "
            "Choose another {output}.", options=("output",),
        )
    last = folder / LAST
    if last.exists() and not config.resume:
        raise GapfillError(
            f"The folder '{folder}' holds a previous run ({LAST}). Continue it with "
            "{resume}, or choose another {output}.",
            options=("resume", "output"),
        )
    if config.resume and not last.exists():
        raise GapfillError(f"Nothing to resume: '{last}' does not exist.")
    device = _device(config.device, local_rank)
    distributed = world > 1
    if distributed and not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        torch.distributed.init_process_group(backend=backend)
    try:
        result = _train(plan, folder, device, rank, world, say, progress, cancelled)
        if distributed:  # every rank done (rank 0 exports) before the group is taken down
            torch.distributed.barrier()
        return result
    finally:
        if distributed and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def _resume(folder: Path, model: GapfillNet, config: TrainConfig) -> dict[str, Any]:
    """The checkpoint to continue from, checked against the network this config builds."""
    state = load_checkpoint(folder / LAST)
    if state["model_config"] != model.config():
        raise GapfillError(
            f"The run in '{folder}' trained {state['model_config']}; this configuration "
            f"builds {model.config()}. Resume with the same architecture, roles, width and "
            "depth ({architecture}, {roles}, {width}, {depth}), or start a new run in another "
            "folder.",
            options=("architecture", "roles", "width", "depth"),
        )
    return state


def _epoch_metrics(
    row: Mapping[str, Any], note: str, scaling: tuple[BandScaling, ...]
) -> dict[str, Any]:
    """What a card records of one epoch's validation."""
    measured = evaluation_scaling(scaling)
    return {
        "epoch": row["epoch"],
        **{key: row[key] for key in METRIC_KEYS if row.get(key) is not None},
        "evaluated_on": f"{note} of the validation split",
        "metric_scaling": measured.describe() if measured else "network values (no scaling)",
    }


def _train(
    plan: Plan,
    folder: Path,
    device: torch.device,
    rank: int,
    world: int,
    log: LogFn,
    progress: ProgressFn,
    cancelled: CancelledFn,
) -> TrainResult:
    config = plan.config
    main, distributed = rank == 0, world > 1
    best = folder / BEST
    options = {"patch_size": plan.size} if getattr(plan.architecture, "adversarial", False) else {}
    with torch.random.fork_rng(devices=[]):  # seeded weights; the caller's generator untouched
        torch.manual_seed(config.seed)
        model = get_model(
            plan.architecture.architecture,
            plan.inputs,
            plan.out_channels,
            width=config.width,
            depth=config.depth,
            **options,
        )
    config = dataclasses.replace(
        config, roles=list(model.roles), loss=plan.loss, width=model.width, depth=model.depth
    )
    stepper = Stepper(model, plan.loss, config, device, distributed=distributed)
    plateaus = _plateaus(stepper.optimizers, config)
    rates = RatePlan.of(config)
    history: list[dict[str, Any]] = []
    best_state: dict[str, Any] = {}
    start, stale = 0, 0
    if config.resume:
        state = _resume(folder, model, config)
        model.load_state_dict(state["model"])
        stepper.load_state(state)
        for plateau, saved in zip(plateaus, state.get("schedulers", []), strict=False):
            plateau.load_state_dict(saved)
        history, best_state = list(state["history"]), dict(state.get("best") or {})
        start, stale = int(state["epoch"]), int(state.get("stale_epochs", 0))
        saved = state.get("rate_plan")
        before = RatePlan(**saved) if saved else RatePlan.of(config, state["config"]["epochs"])
        rates = before.extended(start, config.epochs)
        log(f"Resuming '{folder}' after epoch {start}.")
        if rates != before:
            log(
                f"The run planned {before.end} epochs and now {config.epochs}: the learning "
                f"rate continues from {rates.rate:.3g} ({config.schedule}) over epochs "
                f"{start + 1}–{config.epochs}, without climbing back."
            )
    if main:
        folder.mkdir(parents=True, exist_ok=True)
        save_config(config, folder)
    train_set = plan.dataset("train", config.augment)
    validation_set = plan.dataset("validation", False)
    cuda = device.type == "cuda"
    workers = (
        config.workers if config.workers >= 0 else (min(4, os.cpu_count() or 1) if cuda else 0)
    )
    sampler = EpochSampler(len(train_set), config.seed, rank, world)
    loader = torch.utils.data.DataLoader(
        train_set,
        batch_size=config.batch_size,
        sampler=sampler,
        num_workers=workers,
        pin_memory=cuda,
    )
    validation_loader = torch.utils.data.DataLoader(
        validation_set,
        batch_size=config.batch_size,
        shuffle=False,
        num_workers=workers,
        pin_memory=cuda,
    )
    info = plan.card_info()
    output_scaling = scalings_of(info["output"]["scaling"])
    margin = model.context_margin
    repeats = (
        f" (each of the {train_set.patches} patches about {len(train_set) / train_set.patches:.1f}"
        " times per epoch, with its own crop, flips and gaps)"
        if len(train_set) > train_set.patches
        else ""
    )
    log(
        f"Training {model.architecture} (width {model.width}, depth {model.depth}; "
        f"{parameter_count(model.exported()):,} parameters, "
        f"{flops_per_pixel(model) / 1e3:.0f} kFLOP/px, context margin {margin} px, sizes "
        f"multiple of {model.size_multiple} px) on {', '.join(plan.roles)} → {plan.truth}; "
        f"loss {plan.loss}; {len(train_set)} training samples per epoch{repeats} / "
        f"{len(validation_set)} validation samples of {plan.size} px; device {device}"
        + (" with mixed precision" if stepper.amp else "")
        + (f"; {world} processes" if distributed else "")
        + "."
    )
    interactive = config.progress_bar and main and sys.stderr.isatty()
    steps = len(loader)
    stopped_early = False
    done = start
    drawn = time.monotonic()  # the curves are drawn at most every CURVES_EVERY_S, and at the end
    for epoch in range(start + 1, config.epochs + 1):
        train_set.set_epoch(epoch)
        sampler.set_epoch(epoch)
        if not plateaus:
            for optimizer in stepper.optimizers:
                for group in optimizer.param_groups:
                    group["lr"] = rates.at(epoch)
        began = time.perf_counter()
        total, seen = 0.0, 0
        bar = _bar(loader, interactive, f"epoch {epoch}/{config.epochs}", steps)
        for step, batch in enumerate(bar):
            check_cancelled(cancelled)
            batch = to_device(batch, device)
            size = len(batch["reference"])
            total += stepper.step(batch) * size
            seen += size
            progress((epoch - 1 + (step + 1) / max(1, steps)) / config.epochs)
        train_loss = total / max(1, seen)
        row: dict[str, Any] = {
            "epoch": epoch,
            "learning_rate": stepper.optimizers[0].param_groups[0]["lr"],
            "train_loss": train_loss,
        }
        stop, improved, collapsed = False, False, {}
        if main:
            validation = validate(
                lambda batch: stepper.predict(to_device(batch, device)),
                _bar(validation_loader, interactive, "validation", len(validation_loader)),
                output_scaling,
                info["output"]["bands"],
                lambda prediction, batch: stepper.loss(prediction, to_device(batch, device)),
                cancelled=cancelled,
            )
            seconds = time.perf_counter() - began
            collapsed = collapsed_bands(validation.health)
            row.update(
                validation_loss=None if math.isnan(validation.loss) else validation.loss,
                **metrics_row(validation.metrics),
                collapsed_bands=" ".join(collapsed),
                seconds=seconds,
                samples_per_second=seen * world / seconds,
            )
            history.append(row)
            value = _monitored(config, row)
            improved = value is not None and (not best_state or value < best_state["value"])
            stale = 0 if improved else stale + 1
            metrics = _epoch_metrics(row, validation.note, output_scaling)
            if improved:
                best_state = {
                    "epoch": epoch,
                    "value": value,
                    "monitor": config.monitor,
                    "metrics": metrics,
                }
            if config.patience and stale >= config.patience:
                log(f"Early stop: no progress of the {config.monitor} for {stale} epochs.")
                stop = True
        else:
            value = None
        value, stop = _agree(value if value is not None else train_loss, stop, distributed, device)
        for plateau in plateaus:
            plateau.step(value)
        if main:
            state = {
                "epoch": epoch,
                "model_config": model.config(),
                "model": model.state_dict(),
                **stepper.state(),
                "schedulers": [plateau.state_dict() for plateau in plateaus],
                "rate_plan": dataclasses.asdict(rates),
                "history": history,
                "best": best_state,
                "metrics": metrics,
                "collapsed_bands": collapsed,
                "stale_epochs": stale,
                "config": config_dict(config),
                "card": info,
            }
            if improved:
                save_checkpoint(best, state)
            save_checkpoint(folder / LAST, state)
            _write_log(folder / LOG_NAME, history)
            final = stop or epoch == config.epochs
            if final or time.monotonic() - drawn > CURVES_EVERY_S:
                write_curves(folder / CURVES_NAME, history)
                drawn = time.monotonic()
            log(_epoch_line(row, config.epochs, validation.note))
            if collapsed:
                log(collapse_warning(collapsed, f"at epoch {epoch} (validation gap pixels)"))
        done = epoch
        if stop:
            stopped_early = True
            break
    progress(1.0)
    onnx_path, assessment = None, {}
    curves = folder / CURVES_NAME
    if main:
        source = best if best.exists() else folder / LAST
        check_cancelled(cancelled)
        assessment = assess_checkpoint(source, log=log, cancelled=cancelled)
        if config.export.lower() != "none":
            onnx_path = Path(config.export) if config.export else folder / MODEL_NAME
            export_checkpoint(source, onnx_path, force=config.force_export, log=log)
            log(f"Model written to '{onnx_path}' (from {source.name}).")
    return TrainResult(
        folder=folder,
        last=folder / LAST,
        best=best,
        log=folder / LOG_NAME,
        curves=curves if curves.exists() else None,
        onnx=onnx_path,
        epochs=done,
        best_epoch=int(best_state.get("epoch", 0)) if best_state else 0,
        metrics=dict(best_state.get("metrics", {})) if best_state else {},
        history=history,
        stopped_early=stopped_early,
        assessment=assessment,
    )
