"""Deep Image Prior fill (Czerkawski et al. 2022): no training data, one fresh network per tile.

A small encoder–decoder is fitted, from a fixed seeded input (a meshgrid plus noise), to reproduce
the target on its clear pixels and every auxiliary source (SAR, a mean or earlier image…) on its
valid pixels, each source through its own output channels; the target's gap pixels are then read
from the network output. Images larger than one tile are fitted tile by tile with overlap and the
tiles blended with a smooth ramp. Every band of every source is normalised by robust percentiles
(computed on the block's valid pixels) and the target's normalisation is inverted at the end.
The shared block loop (`fill_engine.fill_image`) keeps clear pixels bit-identical.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from osgeo import gdal

from ..dependencies import require
from ..errors import GapfillError
from ..learned.scaling import decibels_in_place
from ..learned.tiling import ramp_window
from ..progress import CancelledFn, ProgressFn, check_cancelled, never_cancelled, no_progress
from ..raster.access import (
    Window,
    crop,
    data_band_count,
    expand_window,
    iter_windows,
    read_bands,
    read_valid,
)
from ..raster.alignment import align_to_grid
from ..raster.fill_engine import Block, FillReport, TargetImage, check_mask, fill_image
from .torch_device import Device, deterministic, resolve_device

PURPOSE = "Fill with Deep Image Prior"
PERCENTILES = (2.0, 98.0)
NOISE_CHANNELS = 6
WIDTH = 32
MULTIPLE = 4  # the network downsamples twice
CHUNK = 1024  # pixels per side of a block handed to the tiler
MIN_CLEAR_PIXELS = 64  # a tile with fewer clear target pixels has nothing to fit


@dataclass
class AuxiliarySource:
    """One auxiliary raster on the target grid; `usable` pixels have data and are not masked.
    `linear_to_db`: SAR backscatter given linear, read as dB (zero or negative: not usable)."""

    path: str
    dataset: gdal.Dataset
    mask: gdal.Dataset | None
    linear_to_db: bool = False

    @property
    def bands(self) -> int:
        return data_band_count(self.dataset)

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        data = read_bands(self.dataset, window).astype(np.float64)
        usable = read_valid(self.dataset, window)
        if self.mask is not None:
            x, y, w, h = window
            usable &= self.mask.GetRasterBand(1).ReadAsArray(x, y, w, h) == 0
            usable &= read_valid(self.mask, window)
        if self.linear_to_db:
            usable &= (data > 0).all(axis=0)
            decibels_in_place(data)[np.isnan(data)] = 0.0  # not usable: any value does
        return data, usable


def open_auxiliary(
    target: TargetImage, paths: list[str], mask_paths: list[str] | None = None,
    label: str | None = None,
) -> list[AuxiliarySource]:
    """Align every auxiliary source (bilinear) and its optional mask (nearest) to the target;
    `label`: what a single source is, for messages (default "auxiliary source N")."""
    masks = mask_paths or []
    if masks and len(masks) != len(paths):
        raise GapfillError(
            f"{len(masks)} masks were given for {len(paths)} auxiliary sources. Give one mask per "
            "source, in the same order, or none."
        )
    sources = []
    for index, path in enumerate(paths):
        role = label or f"auxiliary source {index + 1}"
        dataset = align_to_grid(path, target.grid, "bilinear", role)
        mask = None
        if masks and masks[index]:
            mask = align_to_grid(masks[index], target.grid, "nearest", f"mask {index + 1}")
            check_mask(mask, masks[index])
        sources.append(AuxiliarySource(path, dataset, mask))
    return sources


# --------------------------------------------------------------------------- normalisation


@dataclass
class Scaling:
    """Per-band robust scaling: (value - low) / (high - low)."""

    low: np.ndarray  # (bands,)
    high: np.ndarray

    @classmethod
    def fit(cls, data: np.ndarray, valid: np.ndarray) -> Scaling:
        bands = data.shape[0]
        low, high = np.zeros(bands), np.ones(bands)
        if valid.any():
            values = data[:, valid]
            low, high = np.percentile(values, PERCENTILES, axis=1)
        span = high - low
        high = np.where(span > 1e-12, high, low + 1.0)
        return cls(low, high)

    def apply(self, data: np.ndarray) -> np.ndarray:
        span = (self.high - self.low)[:, None, None]
        return (data - self.low[:, None, None]) / span

    def invert(self, data: np.ndarray) -> np.ndarray:
        span = (self.high - self.low)[:, None, None]
        return data * span + self.low[:, None, None]


# --------------------------------------------------------------------------- network


def build_network(in_channels: int, out_channels: int, width: int = WIDTH):
    """A small U-shaped encoder–decoder (two downsamplings, skip connections)."""
    torch = require("torch", PURPOSE)
    nn = torch.nn

    def block(a: int, b: int) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(a, b, 3, padding=1, padding_mode="reflect"),
            nn.BatchNorm2d(b),
            nn.LeakyReLU(0.2),
        )

    class EncoderDecoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.enc1 = block(in_channels, width)
            self.enc2 = nn.Sequential(nn.AvgPool2d(2), block(width, width))
            self.enc3 = nn.Sequential(nn.AvgPool2d(2), block(width, width))
            self.dec2 = block(2 * width, width)
            self.dec1 = block(2 * width, width)
            self.head = nn.Conv2d(width, out_channels, 1)

        def forward(self, x):
            up = nn.functional.interpolate
            e1 = self.enc1(x)
            e2 = self.enc2(e1)
            e3 = self.enc3(e2)
            d2 = self.dec2(torch.cat([up(e3, scale_factor=2.0, mode="nearest"), e2], 1))
            d1 = self.dec1(torch.cat([up(d2, scale_factor=2.0, mode="nearest"), e1], 1))
            return self.head(d1)

    return EncoderDecoder()


@dataclass
class FitResult:
    values: np.ndarray  # (target bands, H, W) in the target's own units
    losses: list[float]


def fit_tile(
    target: np.ndarray,
    target_valid: np.ndarray,
    sources: list[tuple[np.ndarray, np.ndarray]],
    *,
    iterations: int = 300,
    learning_rate: float = 0.01,
    seed: int = 0,
    device: Device = "auto",
    progress: ProgressFn = no_progress,
    cancelled: CancelledFn = never_cancelled,
) -> FitResult:
    """Fit a fresh network on one tile. Arrays are already normalised (bands, H, W); `sources`
    are (data, valid) pairs. Returns the network's target channels and the loss per iteration."""
    torch = require("torch", PURPOSE)
    device = resolve_device(device, PURPOSE)
    bands, height, width = target.shape
    pad_h, pad_w = -height % MULTIPLE, -width % MULTIPLE
    planes = [(target, target_valid), *sources]

    def tensor(array: np.ndarray, dtype=torch.float32):
        array = np.pad(array, [(0, 0)] * (array.ndim - 2) + [(0, pad_h), (0, pad_w)])
        return torch.as_tensor(np.ascontiguousarray(array), dtype=dtype, device=device)

    data = [tensor(np.where(valid, np.nan_to_num(values), 0.0)) for values, valid in planes]
    weights = [tensor(valid[None].astype(np.float32)) for _, valid in planes]
    counts = [max(float(valid.sum()), 1.0) * values.shape[0] for values, valid in planes]
    splits = [values.shape[0] for values, _ in planes]
    with deterministic(seed, 1, PURPOSE):  # one thread: no oversubscription of tiles
        rows = torch.linspace(-1, 1, height + pad_h)
        columns = torch.linspace(-1, 1, width + pad_w)
        grid = torch.stack(torch.meshgrid(rows, columns, indexing="ij"))
        noise = 0.1 * torch.randn(NOISE_CHANNELS, height + pad_h, width + pad_w)
        network_input = torch.cat([grid, noise])[None].to(device)
        network = build_network(network_input.shape[1], sum(splits)).to(device)
        optimiser = torch.optim.Adam(network.parameters(), lr=learning_rate)
        losses = []
        for step in range(iterations):
            check_cancelled(cancelled)
            optimiser.zero_grad()
            outputs = torch.split(network(network_input)[0], splits)
            loss = sum(
                (((output - values) ** 2) * weight).sum() / count
                for output, values, weight, count in zip(
                    outputs, data, weights, counts, strict=True
                )
            )
            loss.backward()
            optimiser.step()
            losses.append(float(loss.detach()))
            progress((step + 1) / iterations)
        with torch.no_grad():
            result = network(network_input)[0, :bands, :height, :width]
    return FitResult(result.cpu().numpy().astype(np.float64), losses)


# --------------------------------------------------------------------------- tiles


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Origins of tiles of `tile` pixels covering `length` with at least `overlap` in common."""
    if length <= tile:
        return [0]
    step = max(tile - overlap, 1)
    count = -(-(length - tile) // step) + 1
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def tile_plan(height: int, width: int, tile: int, overlap: int) -> list[Window]:
    return [
        (x, y, min(tile, width), min(tile, height))
        for y in tile_starts(height, tile, overlap)
        for x in tile_starts(width, tile, overlap)
    ]


def fill_arrays(
    target: np.ndarray,
    target_valid: np.ndarray,
    sources: list[tuple[np.ndarray, np.ndarray]],
    *,
    tile_size: int = 256,
    overlap: int = 32,
    iterations: int = 300,
    learning_rate: float = 0.01,
    seed: int = 0,
    device: Device = "auto",
    progress: ProgressFn = no_progress,
    cancelled: CancelledFn = never_cancelled,
) -> tuple[np.ndarray, list[list[float]]]:
    """Deep Image Prior prediction of the whole target (bands, H, W), tile by tile, blended.
    Returns the prediction (target units) and the loss history of every tile."""
    scaling = Scaling.fit(target, target_valid)
    normalised = scaling.apply(target)
    scaled_sources = [(Scaling.fit(d, v).apply(d), v) for d, v in sources]
    bands, height, width = target.shape
    plan = tile_plan(height, width, tile_size, overlap)
    total = np.zeros((bands, height, width))
    weight_sum = np.zeros((height, width))
    histories = []
    for index, (x, y, w, h) in enumerate(plan):
        rows, columns = slice(y, y + h), slice(x, x + w)
        if target_valid[rows, columns].sum() < MIN_CLEAR_PIXELS:
            histories.append([])  # nothing of the target to fit: left unfilled, not invented
            continue

        def tile_progress(fraction: float, index: int = index) -> None:
            progress((index + fraction) / len(plan))

        fit = fit_tile(
            normalised[:, rows, columns],
            target_valid[rows, columns],
            [(d[:, rows, columns], v[rows, columns]) for d, v in scaled_sources],
            iterations=iterations,
            learning_rate=learning_rate,
            seed=seed,
            device=device,
            progress=tile_progress,
            cancelled=cancelled,
        )
        histories.append(fit.losses)
        ramp = overlap // 2 if len(plan) > 1 else 0
        weight = np.outer(ramp_window(h, ramp), ramp_window(w, ramp))
        total[:, rows, columns] += fit.values * weight
        weight_sum[rows, columns] += weight
    with np.errstate(invalid="ignore", divide="ignore"):
        blended = np.where(weight_sum > 0, total / weight_sum, np.nan)
    return scaling.invert(blended), histories


# --------------------------------------------------------------------------- raster


def fill_with_deep_image_prior(
    target: TargetImage,
    output: str | Path,
    sources: list[AuxiliarySource] | None = None,
    *,
    iterations: int = 300,
    learning_rate: float = 0.01,
    seed: int = 0,
    device: Device = "auto",
    tile_size: int = 256,
    overlap: int = 32,
    block_size: int = CHUNK,
    progress: ProgressFn = no_progress,
    cancelled: CancelledFn = never_cancelled,
) -> FillReport:
    """Fill `target`'s gaps with Deep Image Prior fitted to it and to the auxiliary `sources`."""
    require("torch", PURPOSE)
    resolve_device(device, PURPOSE)
    sources = sources or []
    if tile_size < 16:
        raise GapfillError(f"The tile size must be at least 16 pixels (got {tile_size}).")
    if min(target.grid.width, target.grid.height) < 16:
        raise GapfillError(
            f"The target '{target.path}' is {target.grid.width}×{target.grid.height} px; Deep "
            "Image Prior needs at least 16 × 16 px to learn the image. Use 'Fill gaps "
            "spatially' for tiny images."
        )
    overlap = min(overlap, tile_size // 2)
    block_size = max(block_size, tile_size)
    grid = target.grid
    fits = []
    for window in iter_windows(grid.width, grid.height, block_size):
        (_, _, w, h), _ = expand_window(window, overlap, grid.width, grid.height)
        fits.append(len(tile_plan(h, w, tile_size, overlap)))
    done = [0]

    def read_sources(window: Window):
        return [source.read(window) for source in sources]

    def compute(block: Block):
        offset = sum(fits[: done[0]])

        def block_progress(fraction: float) -> None:
            progress((offset + fraction * fits[done[0]]) / max(sum(fits), 1))

        values, _ = fill_arrays(
            block.data,
            ~block.gap,
            block.sources,
            tile_size=tile_size,
            overlap=overlap,
            iterations=iterations,
            learning_rate=learning_rate,
            seed=seed,
            device=device,
            progress=block_progress,
            cancelled=cancelled,
        )
        done[0] += 1
        values = crop(values, block.inner)
        return values, np.isfinite(values).all(axis=0)

    return fill_image(
        target,
        output,
        compute,
        read_sources=read_sources,
        halo=overlap,
        block_size=block_size,
        workers=1,
        require_clear=True,  # it learns the image from its clear pixels
        cancelled=cancelled,
    )
