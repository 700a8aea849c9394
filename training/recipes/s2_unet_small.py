"""Train, export and evaluate the bundled Sentinel-2-only single-date model `s2_unet_small`.

The DSen2-CR "without SAR" setting (Meraner et al. 2020 trained their network with and
without Sentinel-1): the Sentinel-2 image and its gap mask alone → the 13 bands. A
`unet-pyramid` network (a U-Net of width 24 and four levels as a residual on the push-pull
pyramid fill of the image's clear pixels; it starts as that fill and never reads the pixels
under the mask), trained on 128 px patches by pure gap filling only: real cloud shapes laid on
clear images. Neither version is bundled: the first, a plain `unet-fusion` trained on
cloudy→clear pairs as well, learned the other date's look and lost to both spatial fills by
about 10 dB on every held-out scene; this one loses to them by 1.3 dB on the mean of the
held-out scenes (BENCHMARKS.md, "Bundled models").

Data (../shared/data, SEN12MS-CR, Ebel et al. 2020, and SEN12MS-CR-TS, Ebel et al. 2022, CC BY
4.0), split by scene (neighbouring SEN12MS-CR patches overlap by half: a patch is never held
out while its neighbour is trained on):

- held out, never trained on: the `sen12mscr_pairs` scenes ROIs1158_spring_26 and
  ROIs1868_summer_101 (3 images each) and the `sen12mscr` samples 4287, 5254, 5278, 6553 (the
  held-out samples of `s1s2_unet_small`), each sample its own scene;
- training: the clear images of the three other `sen12mscr_pairs` scenes (30 pairs), of the
  ten other `sen12mscr` samples and the `sen12mscr_ts` dates with at most 5 % cloud (another
  place, near Rome), with gaps simulated from real cloud shapes: the cloud masks of the ten
  training samples, the spectral masks of the cloudy training pairs and the s2cloudless masks
  of eolearn_slovenia; never from `cloud_labels`, the shapes of the evaluation.

The run's validation split holds the held-out images (clear, simulated gaps), only logged: the
exported network is the last epoch's. Evaluation (`common.evaluate_images`): pure gap filling
and the SEN12MS-CR protocol on every held-out image, the model next to spatial IDW and Deep
Image Prior (without auxiliary source), by scene.

    python training/recipes/s2_unet_small.py --work bench-output/s2_unet_small
    python training/recipes/s2_unet_small.py --work bench-output/s2_unet_small --steps evaluate
"""

from __future__ import annotations

from pathlib import Path

from common import (
    Image,
    Recipe,
    constant_raster,
    main,
    save_shapes,
    sen12mscr_image,
    spectral_mask,
    write_split_dataset,
)

NAME = "s2_unet_small"
HELD_OUT_SCENES = ("ROIs1158_spring_26", "ROIs1868_summer_101")
HELD_OUT_SAMPLES = ("4287", "5254", "5278", "6553")
MAX_SERIES_CLOUD = 0.05
BANDS = ("cloud",)  # the band of the SEN12MS-CR cloud masks: one name for every gap mask
TRAIN_OPTIONS = [
    "--architecture", "unet-pyramid", "--roles", "target", "gap_mask", "--width", "24",
    "--depth", "4", "--loss", "masked-l1-sam", "--epochs", "30", "--epoch-samples", "512",
    "--batch-size", "8", "--learning-rate", "0.002", "--validation-limit", "48",
    "--simulate-gaps", "always", "--augment", "--export", "none", "--no-progress-bar",
    "--seed", "0",
]  # fmt: skip
DESCRIPTION = (
    "Sentinel-2 L1C (13 bands, DN) gap filling from the cloudy image and its gap mask alone "
    "(no SAR, no other date: the DSen2-CR 'without SAR' setting); unet-pyramid: a U-Net of "
    "width 24, 4 levels, as a residual on the pyramid fill of the clear pixels. Trained on "
    "SEN12MS-CR and SEN12MS-CR-TS images (Ebel et al. 2020, 2022, CC BY "
    "4.0; contains modified Copernicus Sentinel data), held out by scene: "
    + ", ".join([*HELD_OUT_SCENES, *HELD_OUT_SAMPLES])
    + "."
)
LICENCE = "CC BY 4.0 (trained on SEN12MS-CR and SEN12MS-CR-TS, CC BY 4.0)"


def pairs(data: Path) -> list[tuple[str, Path, Path]]:
    """(scene, cloudy, clear) of every sen12mscr_pairs image."""
    folder = data / "sen12mscr_pairs"
    found = []
    for clear in sorted(folder.glob("*_s2_clear.tif")):
        stem = clear.name[: -len("_s2_clear.tif")]
        found.append((stem.rsplit("_", 1)[0], folder / f"{stem}_s2_cloudy.tif", clear))
    return found


def samples(data: Path) -> list[str]:
    return sorted(path.name[: -len("_s1.tif")] for path in (data / "sen12mscr").glob("*_s1.tif"))


def held_out_images(data: Path) -> list[Image]:
    images = [
        Image(scene, cloudy.name[: -len("_s2_cloudy.tif")], clear, cloudy)
        for scene, cloudy, clear in pairs(data)
        if scene in HELD_OUT_SCENES
    ]
    return images + [sen12mscr_image(data, item) for item in HELD_OUT_SAMPLES]


def make_dataset(data: Path, work: Path) -> tuple[list[str], dict[str, int]]:
    """The patch dataset (target, reference, gap_mask) in `work/dataset`, pure gap filling
    only; returns the --cloud-masks arguments and the counts of training images."""
    aux = work / "aux"

    def pure(clear: Path) -> dict[str, Path]:
        mask = constant_raster(aux / f"clear_{clear.stem}.tif", clear, BANDS, "Byte", 0)
        return {"target": clear, "reference": clear, "gap_mask": mask}

    trained_pairs = [item for item in pairs(data) if item[0] not in HELD_OUT_SCENES]
    scenes = [pure(clear) for _, _, clear in trained_pairs]
    shapes = [
        gap for _, cloudy, _ in trained_pairs
        if 0.02 <= (gap := spectral_mask(cloudy, work / "masks")).mean() < 0.9
    ]  # fmt: skip
    folder = data / "sen12mscr"
    trained = [item for item in samples(data) if item not in HELD_OUT_SAMPLES]
    scenes += [pure(folder / f"{item}_s2_clear.tif") for item in trained]
    series = [
        path
        for path in sorted((data / "sen12mscr_ts").glob("s2_*.tif"))
        if spectral_mask(path, work / "masks").mean() <= MAX_SERIES_CLOUD
    ]
    scenes += [pure(path) for path in series]
    counts = {"pure": len(scenes), "pairs": len(trained_pairs), "samples": len(trained),
              "series dates": len(series)}  # fmt: skip
    held = [pure(image.clear) for image in held_out_images(data)]
    write_split_dataset(work, scenes, held, counts)
    arguments = [str(folder / f"{item}_cloudmask.tif") for item in trained]
    arguments.append(save_shapes(shapes, work / "shapes" / "pairs_spectral.npy"))
    arguments.append(str(data / "eolearn_slovenia" / "cloud_mask.tif"))
    return arguments, counts


def training_data(counts: dict[str, int]) -> str:
    return (
        f"{counts['pairs']} SEN12MS-CR pairs of the scenes ROIs1868_summer_100, "
        f"ROIs1868_summer_135 and ROIs1970_fall_136, {counts['samples']} other SEN12MS-CR "
        f"samples and {counts['series dates']} clear SEN12MS-CR-TS dates: "
        f"{counts['pure']} clear images with gaps simulated from real cloud masks (pure gap "
        "filling only; 128 px patches, stride 64; flips, 90° rotations). Held out by scene, "
        "never trained on: "
        + ", ".join([*HELD_OUT_SCENES, *(f"sen12mscr {item}" for item in HELD_OUT_SAMPLES)])
        + "."
    )


RECIPE = Recipe(
    name=NAME,
    options=TRAIN_OPTIONS,
    description=DESCRIPTION,
    licence=LICENCE,
    with_sar=False,
    make_dataset=make_dataset,
    held_out_images=held_out_images,
    training_data=training_data,
    held_out_text=(
        "the held-out scenes " + ", ".join(HELD_OUT_SCENES) + " (sen12mscr_pairs, 3 images "
        "each) and the SEN12MS-CR samples " + ", ".join(HELD_OUT_SAMPLES)
    ),
)

if __name__ == "__main__":
    main(RECIPE, __doc__)
