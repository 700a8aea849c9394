"""Would the scene fill gain from a bundled model fine-tuned on the scene (issue 16's "optionally
started from a bundled model's weights")? BENCHMARKS.md, "Starting from the bundled model".

For every partly cloudy sample of sen12mscr (c): `s1s2_unet_small`, its weights read from the
bundled ONNX file into the training package's network, is fine-tuned on the cloudy image's own
clear pixels of the left half (the sample's cloud mask shifted and flipped, laid on them; L1 on
the hidden pixels, Adam, as the adapted network trains), then compared with the pyramid fill on
simulated gaps of the right half (what the scene fill's selection blocks would see) and scored
under the SEN12MS-CR protocol (the real mask, against the clear date), both before and after.

    GAPFILL_DATA=../shared/data PYTHONPATH=benchmarks python benchmarks/bench_bundled_start.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from osgeo import gdal

from harness import data_folder, make_plugin_importable

make_plugin_importable()
import onnx  # noqa: E402
import torch  # noqa: E402
from onnx import numpy_helper  # noqa: E402

from gapfill.core.fills.pyramid_fill import pyramid_fill_arrays  # noqa: E402
from gapfill.core.learned.bundled_models import bundled_models  # noqa: E402
from gapfill.core.learned.scaling import scale_bands, unscale_bands  # noqa: E402
from gapfill.training.networks.unet import UNetFusion  # noqa: E402

PARTLY_CLOUDY = ("2729", "4287", "4294", "4433", "5254", "5278", "5349", "6553", "7264")
CROP, SELECTION_LAYOUTS = 128, 4


class Bundled:
    """The bundled S1 + S2 model as a PyTorch network, fed as `fill_arrays` feeds it (card
    scaling, hidden pixels 0, the gap mask as a channel)."""

    def __init__(self) -> None:
        model = next(m for m in bundled_models() if m.path.stem == "s1s2_unet_small")
        self.card = model.card
        graph = onnx.load(str(model.path)).graph
        self.weights = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy())
                        for i in graph.initializer}
        self.floor = float(self.weights.pop("filled_floor"))

    def network(self) -> torch.nn.Module:
        network = UNetFusion({"target": 13, "gap_mask": 1, "sar": 2}, 13, width=24, depth=3)
        network.load_state_dict(self.weights)
        return network.eval()

    def feeds(self, image: np.ndarray, gap: np.ndarray, sar: np.ndarray) -> list[torch.Tensor]:
        target = np.nan_to_num(scale_bands(image, self.card.input_for("target").scaling))
        target[:, gap] = 0
        radar = np.nan_to_num(scale_bands(sar, self.card.input_for("sar").scaling))
        arrays = (target, gap[None].astype(np.float32), radar)
        return [torch.from_numpy(np.ascontiguousarray(a))[None] for a in arrays]

    def predict(self, network, image, gap, sar) -> np.ndarray:
        with torch.no_grad():
            out = torch.clamp(network(*self.feeds(image, gap, sar)), min=self.floor)[0]
        return unscale_bands(out.numpy(), self.card.output.scaling)

    def scaled(self, image: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(scale_bands(image, self.card.output.scaling))


def layout(cloud: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The sample's own cloud mask, shifted and maybe flipped: simulated gaps of real shapes."""
    shifted = np.roll(cloud, tuple(rng.integers(-128, 128, 2)), (0, 1))
    return shifted[:, ::-1] if rng.integers(2) else shifted


def fine_tune(bundled: Bundled, image, cloud, sar, allowed, steps: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    network = bundled.network().train()
    optimiser = torch.optim.Adam(network.parameters(), lr=1e-4)
    truth = bundled.scaled(image)
    for _ in range(steps):
        hidden = layout(cloud, rng) & ~cloud & allowed
        y, x = rng.integers(0, cloud.shape[0] - CROP + 1, 2)
        crop = (slice(y, y + CROP), slice(x, x + CROP))
        if hidden[crop].sum() < 50:
            continue
        gap = (hidden | cloud | ~allowed)[crop]
        feeds = bundled.feeds(image[(slice(None), *crop)], gap, sar[(slice(None), *crop)])
        weight = torch.from_numpy(hidden[crop].astype(np.float32))[None, None]
        error = (network(*feeds) - truth[(slice(None), *crop)][None]).abs() * weight
        loss = error.sum() / (weight.sum() * truth.shape[0])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return network.eval()


def psnr(filled: np.ndarray, truth: np.ndarray, where: np.ndarray) -> float:
    a, b = (np.clip(v[:, where] / 1e4, 0, 1) for v in (filled, truth))
    return float(10 * np.log10(1 / np.mean((a - b) ** 2)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    steps = parser.parse_args().steps
    torch.set_num_threads(2)
    folder, bundled = data_folder() / "sen12mscr", Bundled()

    def read(name: str) -> np.ndarray:
        return gdal.Open(str(Path(folder, name))).ReadAsArray().astype(np.float32)

    print("sample cloud | selection (right half, gaps on the cloudy image): pyramid, bundled, "
          "tuned | SEN12MS-CR protocol: pyramid, bundled, tuned (dB)")
    for sample in PARTLY_CLOUDY:
        image, clear, sar = (read(f"{sample}_{k}.tif") for k in ("s2_cloudy", "s2_clear", "s1"))
        cloud = read(f"{sample}_cloudmask.tif") > 0
        left = np.zeros(cloud.shape, bool)
        left[:, : cloud.shape[1] // 2] = True
        base, tuned = bundled.network(), fine_tune(bundled, image, cloud, sar, left, steps)
        rng, selection = np.random.default_rng(99), []
        for _ in range(SELECTION_LAYOUTS):
            hidden = layout(cloud, rng) & ~cloud & ~left
            if hidden.sum() < 100:
                continue
            gap = hidden | cloud
            pyramid = pyramid_fill_arrays(image.astype(np.float64), ~gap)[0]
            selection.append([psnr(pyramid, image, hidden)] + [
                psnr(bundled.predict(n, image, gap, sar), image, hidden) for n in (base, tuned)
            ])
        pyramid = pyramid_fill_arrays(image.astype(np.float64), ~cloud)[0]
        protocol = [psnr(pyramid, clear, cloud)] + [
            psnr(bundled.predict(n, image, cloud, sar), clear, cloud) for n in (base, tuned)
        ]
        chosen = np.mean(selection, axis=0) if selection else [np.nan] * 3
        print(f"{sample} {cloud.mean():.2f} | " + " ".join(f"{v:.2f}" for v in chosen)
              + " | " + " ".join(f"{v:.2f}" for v in protocol), flush=True)


if __name__ == "__main__":
    main()
