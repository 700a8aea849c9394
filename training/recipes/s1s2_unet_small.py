"""Train, export and evaluate the bundled Sentinel-1 + Sentinel-2 model `s1s2_unet_small`.

Sentinel-1 VV, VH (dB) + the cloudy Sentinel-2 image and its gap mask → the 13 bands at the
same date: a `unet-pyramid` network (a U-Net of width 24 and four levels as a residual on
the push-pull pyramid fill of the image's clear pixels; it starts as that fill and never reads
the pixels under the mask), trained on 128 px patches by pure gap filling only (real cloud
shapes laid on clear images with their Sentinel-1). The first bundled version, a
`unet-fusion` of three levels trained on cloudy→clear pairs as well, learned the other date's
look: it beat the spatial fills against the clear image of another date and lost to them by
about 11 dB on pure gap filling. It is still the bundled file (its note, models/s1s2_unet_small.md,
gives its own training command; `--steps stamp` re-measures it): this recipe's network, trained
in round 5, came within 1.4 dB of the pyramid fill on pure gap filling (38.62 dB against 40.04)
but still lost to it, fell 1.8 dB below the bundled file against the other date (27.15 against
28.95 dB) and costs more per pixel (170 against 116 kFLOP, and a context margin of 384 px
around every tile), so it did not replace it (BENCHMARKS.md, "Bundled models").

Data (../shared/data; SEN12MS-CR, Ebel et al. 2020, CC BY 4.0), split by scene:

- held out, never trained on: the `sen12mscr` samples 4287, 5254, 5278, 6553 (the partly
  cloudy samples of `make bench-quality` case (c)) and `sen12mscr_georef`
  ROIs1158_spring_101_p32 (clear, with S1; its neighbour p31 overlaps it and is left out);
- training: the clear images of the ten other `sen12mscr` samples with their S1,
  `sen12mscr_georef` p30 (clear with S1),
  and the 36 `sen12mscr_pairs` images (no Sentinel-1) as extra targets where S1 is not needed:
  clear, with simulated gaps and no SAR (no data, fed as 0 like the fill engine feeds it), so
  that the network also learns to fill from the image's own context. Simulated gaps come from
  the cloud masks of the ten training samples and the s2cloudless masks of eolearn_slovenia;
  never from `cloud_labels`, the shapes of the evaluation.

The run's validation split holds the held-out images (clear, simulated gaps), only logged: the
exported network is the last epoch's. Evaluation (`common.evaluate_images`): pure gap filling
on every held-out image and the SEN12MS-CR protocol on the four samples, the model (with S1)
next to spatial IDW and Deep Image Prior with S1 as auxiliary source, by scene.

    python training/recipes/s1s2_unet_small.py --work bench-output/s1s2_unet_small
    python training/recipes/s1s2_unet_small.py --work bench-output/s1s2_unet_small --steps evaluate
"""

from __future__ import annotations

from pathlib import Path

from common import Image, Recipe, constant_raster, main, sen12mscr_image, write_split_dataset
from s2_unet_small import BANDS, pairs, samples
from s2_unet_small import TRAIN_OPTIONS as S2_OPTIONS

NAME = "s1s2_unet_small"
HELD_OUT = ("4287", "5254", "5278", "6553")
GEOREF, TRAIN_GEOREF, HELD_GEOREF = "ROIs1158_spring_101", "p30", "p32"
SAR_BANDS = ("VV", "VH")
TRAIN_OPTIONS = list(S2_OPTIONS)  # the same training, with Sentinel-1
TRAIN_OPTIONS[TRAIN_OPTIONS.index("--roles") + 1 : TRAIN_OPTIONS.index("--width")] = [
    "target", "gap_mask", "sar",
]  # fmt: skip
DESCRIPTION = (
    "Sentinel-2 L1C (13 bands, DN) gap filling from the cloudy image, its gap mask and "
    "Sentinel-1 VV, VH (dB) of the same date; unet-pyramid: a U-Net of width 24, 4 levels, "
    "as a residual on the pyramid fill of the clear pixels. Trained on "
    "SEN12MS-CR (Ebel et al. 2020, CC BY 4.0; contains modified Copernicus Sentinel data); "
    "held out by scene: " + ", ".join(HELD_OUT) + f", {GEOREF}_{HELD_GEOREF}."
)
LICENCE = "CC BY 4.0 (trained on SEN12MS-CR, CC BY 4.0)"


def held_out_images(data: Path) -> list[Image]:
    georef, stem = data / "sen12mscr_georef", f"{GEOREF}_{HELD_GEOREF}"
    clear = Image(stem, stem, georef / f"{stem}_s2_clear.tif", sar=georef / f"{stem}_s1.tif")
    return [*(sen12mscr_image(data, item) for item in HELD_OUT), clear]


def make_dataset(data: Path, work: Path) -> tuple[list[str], dict[str, int]]:
    """The patch dataset (target, reference, gap_mask, sar) in `work/dataset`; returns the
    --cloud-masks arguments and the counts of training images."""
    aux = work / "aux"

    def clear_mask(like: Path) -> Path:
        return constant_raster(aux / f"clear_{like.stem}.tif", like, BANDS, "Byte", 0)

    def pure(clear: Path, sar: Path) -> dict[str, Path]:
        return {"target": clear, "reference": clear, "gap_mask": clear_mask(clear), "sar": sar}

    folder, georef = data / "sen12mscr", data / "sen12mscr_georef"
    trained = [item for item in samples(data) if item not in HELD_OUT]
    scenes = []
    for item in trained:
        clear, sar = folder / f"{item}_s2_clear.tif", folder / f"{item}_s1.tif"
        scenes.append(pure(clear, sar))
    stem = f"{GEOREF}_{TRAIN_GEOREF}"
    scenes.append(pure(georef / f"{stem}_s2_clear.tif", georef / f"{stem}_s1.tif"))
    for _, _, clear in pairs(data):
        missing = constant_raster(aux / f"nosar_{clear.stem}.tif", clear, SAR_BANDS, "Float32",
                                  float("nan"))  # fmt: skip
        scenes.append(pure(clear, missing))
    counts = {"samples": len(trained), "pairs": len(pairs(data)), "georef": 1}
    held = [pure(image.clear, image.sar) for image in held_out_images(data)]
    write_split_dataset(work, scenes, held, counts)
    arguments = [str(folder / f"{item}_cloudmask.tif") for item in trained]
    return [*arguments, str(data / "eolearn_slovenia" / "cloud_mask.tif")], counts


def training_data(counts: dict[str, int]) -> str:
    return (
        f"{counts['samples']} SEN12MS-CR samples with S1 (clear, simulated gaps: pure gap "
        f"filling only), {GEOREF}_{TRAIN_GEOREF} (clear, S1) and the "
        f"{counts['pairs']} sen12mscr_pairs images without S1 (clear, simulated gaps, no SAR); "
        "128 px patches, stride 64; flips, 90° rotations, simulated gaps from real cloud "
        "masks. Held out by scene, never trained on: sen12mscr " + ", ".join(HELD_OUT)
        + f", {GEOREF}_{HELD_GEOREF}."
    )


RECIPE = Recipe(
    name=NAME,
    options=TRAIN_OPTIONS,
    description=DESCRIPTION,
    licence=LICENCE,
    with_sar=True,
    make_dataset=make_dataset,
    held_out_images=held_out_images,
    training_data=training_data,
    held_out_text=(
        "the held-out SEN12MS-CR samples " + ", ".join(HELD_OUT) + f" and {GEOREF}_{HELD_GEOREF} "
        "(each its own scene)"
    ),
)

if __name__ == "__main__":
    main(RECIPE, __doc__)
