"""The cases of `make bench-quality`, each a chain of real `qgis_process` runs, as a user runs them.

Two protocols for single-date images:
(SEN12MS-CR) fill the cloudy image under its cloud mask and compare with the sample's clear
    image, another acquisition: it rewards translating the image to the other date (dehazing,
    seasonal change) as much as filling the gap; the literature reports it.
(gap filling) lay the same cloud mask on the clear image and compare with that image: the gap
    filled consistently with the rest of the user's own image. Defaults are decided on this one.
The multi-date cases are gap filling by construction (real cloud shapes on a clear date).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from qgis_runner import QgisProcess

TEMPORAL, HISTOGRAM = "temporal interpolation", "histogram matching"
TEMPORAL_EDGES = "edge-corrected temporal interpolation"
HISTOGRAM_EDGES = "edge-corrected histogram matching"
WEIGHTED_HISTOGRAM = "weighted histogram matching"
WEIGHTED_EDGES = "edge-corrected weighted histogram matching"
REGRESSION = "local linear regression"
SIMILAR = "similar pixels"
SPATIAL, PYRAMID = "spatial IDW", "spatial pyramid"
DIP, SCENE, BUNDLED = "deep image prior", "scene fill", "bundled model"
SEN12MSCR, GAP_FILLING = "SEN12MS-CR", "gap filling"
DISTANCE = 300  # so that spatial fills reach every gap pixel of these samples
FILLS: dict[str, tuple[str, dict[str, object]]] = {
    TEMPORAL: ("gapfill:filltemporal", {"METHOD": 0}),
    HISTOGRAM: ("gapfill:filltemporal", {"METHOD": 1}),
    TEMPORAL_EDGES: ("gapfill:filltemporal", {"METHOD": 0, "EDGE_CORRECTION": True}),
    HISTOGRAM_EDGES: ("gapfill:filltemporal", {"METHOD": 1, "EDGE_CORRECTION": True}),
    WEIGHTED_HISTOGRAM: ("gapfill:filltemporal", {"METHOD": 2}),
    WEIGHTED_EDGES: ("gapfill:filltemporal", {"METHOD": 2, "EDGE_CORRECTION": True}),
    REGRESSION: ("gapfill:filltemporal", {"METHOD": 3}),
    SIMILAR: ("gapfill:filltemporal", {"METHOD": 4}),
    SPATIAL: ("gapfill:fillspatial", {"METHOD": 0, "MAX_DISTANCE": DISTANCE}),
    PYRAMID: ("gapfill:fillspatial", {"METHOD": 1, "MAX_DISTANCE": DISTANCE}),
    DIP: ("gapfill:filldip", {"ITERATIONS": 300, "SEED": 0, "DEVICE": 1}),
    SCENE: ("gapfill:fillscene", {"SEED": 0}),
    BUNDLED: ("gapfill:fillgaps", {}),
}
SERIES = "sen12mscr_ts"
MODELS = Path(__file__).resolve().parents[1] / "models"
LABELS = "cloud_labels/labels.tif"
CLOUD_LABELS = "4, 0"  # cloud, cloud shadow
SLOVENIA = "eolearn_slovenia"
# Scene dates, found by matching each scene's NDVI with ndvi.tif, whose band descriptions hold
# the dates (exact match for every scene).
SLOVENIA_DATES = {0: "2015-08-20", 1: "2015-07-31", 2: "2015-09-09", 3: "2015-08-30",
                  4: "2015-07-11"}
GEOREF = "sen12mscr_georef"
GEOREF_CLEAR = ("ROIs1158_spring_101_p30", "ROIs1158_spring_101_p31", "ROIs1158_spring_101_p32")
GEOREF_CLOUDY = "ROIs1868_summer_19_p30"  # its spectral cloud mask is laid on the clear ones
PAIRS = "sen12mscr_pairs"


@dataclass(frozen=True)
class Row:
    group: str
    case: str
    protocol: str
    method: str
    metrics: dict[str, object]


@dataclass(frozen=True)
class SimulatedCase:
    """A clear image, a real gap pattern laid on it, and the other dates to fill from."""

    group: str
    label: str
    clear: str
    gaps: dict[str, object]  # GAP_SOURCE, GAP_BAND / GAP_VALUES, SHIFT_X, SHIFT_Y…
    others: tuple[str, ...]
    dates: str  # target first: the cloudy copy's file name holds no date


def series_cases() -> list[SimulatedCase]:
    targets = {  # clear date: (nearest clear date before, after), quarter of the labels
        "2018-04-26": (("2018-03-22", "2018-05-31"), (0, 0)),
        "2018-06-10": (("2018-05-31", "2018-06-25"), (256, 0)),
        "2018-08-24": (("2018-08-09", "2018-09-03"), (0, 256)),
        "2018-10-08": (("2018-09-28", "2018-10-23"), (256, 256)),
    }
    return [
        SimulatedCase(
            "a", f"{SERIES} {day}", f"{SERIES}/s2_{day}.tif",
            {"GAP_SOURCE": LABELS, "GAP_VALUES": CLOUD_LABELS, "SHIFT_X": shift[0],
             "SHIFT_Y": shift[1]},
            tuple(f"{SERIES}/s2_{other}.tif" for other in others),
            ", ".join([day, *others]),
        )
        for day, (others, shift) in targets.items()
    ]


def slovenia_cases() -> list[SimulatedCase]:
    cases = []
    for scene, band in ((3, 15), (2, 23)):  # cloud_mask bands: 2016-03-17, 2016-06-25
        others = [k for k in sorted(SLOVENIA_DATES) if k != scene]
        cases.append(SimulatedCase(
            "b", f"{SLOVENIA} scene {scene} ({SLOVENIA_DATES[scene]})",
            f"{SLOVENIA}/reference_scene_{scene}.tif",
            {"GAP_SOURCE": f"{SLOVENIA}/cloud_mask.tif", "GAP_BAND": band},
            tuple(f"{SLOVENIA}/reference_scene_{k}.tif" for k in others),
            ", ".join(SLOVENIA_DATES[k] for k in [scene, *others]),
        ))
    return cases


class Runner:
    """One qgis_process profile per worker thread (profiles are not shared between processes)."""

    def __init__(self, data: Path, folder: Path, methods: set[str] | None = None,
                 mask_method: int = 0, protocols: set[str] | None = None) -> None:
        self.data, self.folder, self.mask_method = data, folder, mask_method
        self.methods = methods  # None: every method
        self.protocols = protocols  # None: every protocol a case has
        self.local = threading.local()

    def wants(self, method: str) -> bool:
        return self.methods is None or method in self.methods

    def run(self, algorithm: str, parameters: dict[str, object]) -> dict[str, object]:
        if not hasattr(self.local, "qgis"):
            self.local.qgis = QgisProcess(self.folder / f".qgis-{threading.get_ident()}")
        return self.local.qgis.run(algorithm, parameters)["results"]

    def path(self, relative: str) -> Path:
        return self.data / relative

    def gap_mask(self, relative: str | Path, dilation: int = 0) -> str:
        """The gap mask of a real image (1 = cloud or shadow, by `mask_method`), built once."""
        name = f"{Path(relative).stem}_m{self.mask_method}_d{dilation}.tif"
        output = self.folder / "masks" / name
        if not output.exists():
            self.run("gapfill:buildgapmask", {"INPUT": self.path(str(relative)),
                                              "METHOD": self.mask_method,
                                              "DILATION": dilation, "OUTPUT": output})
        return str(output)

    def fill(self, method: str, folder: Path, target: object, mask: object,
             **extra: object) -> str:
        algorithm, options = FILLS[method]
        output = folder / f"{method.replace(' ', '_')}.tif"
        parameters = {"INPUT": target, "GAP_MASK": mask, "OUTPUT": output, **options, **extra}
        if method == SCENE:
            parameters["REPORT_FOLDER"] = folder / "scene_report"
        return str(self.run(algorithm, parameters)["OUTPUT"])

    def simulate(self, folder: Path, clear: Path, mask: object, **layout: object) -> dict:
        """The mask laid on the clear image: cloudy copy, gap mask, evaluation mask."""
        return self.run("gapfill:simulategaps", {
            "INPUT": clear, "GAP_SOURCE": mask, **layout, "OUTPUT": folder / "cloudy.tif",
            "GAP_MASK": folder / "gaps.tif", "EVALUATION_MASK": folder / "evaluation.tif",
        })

    def evaluate(self, folder: Path, reference: Path, filled: dict[str, str],
                 ndvi: bool = True, **inputs: object) -> dict:
        result = self.run("gapfill:evaluatefill", {
            "REFERENCE": reference,
            "FILLED": next(iter(filled.values())),
            "OTHER_FILLED": list(filled.values())[1:],
            "METHOD_NAMES": ", ".join(filled),
            "NDVI": ndvi,
            "OUTPUT_FOLDER": folder / "report",
            **inputs,
        })
        return json.loads(Path(str(result["JSON"])).read_text())


def rows_of(group: str, case: str, protocol: str, document: dict) -> list[Row]:
    return [Row(group, case, protocol, method["name"], method["overall"])
            for method in document["methods"]]


ExtraFills = Callable[[Runner, SimulatedCase, Path, dict[str, object]], dict[str, str]]


def run_simulated(runner: Runner, case: SimulatedCase,
                  extra: ExtraFills | None = None) -> list[Row]:
    """The case's fills scored side by side; `extra(runner, case, folder, simulated)` may add
    fills of its own (method → filled raster), scored first with the same gaps."""
    folder = runner.folder / case.label.replace(" ", "_").replace("(", "").replace(")", "")
    clear = runner.path(case.clear)
    gaps = {key: runner.path(str(value)) if key == "GAP_SOURCE" else value
            for key, value in case.gaps.items()}
    simulated = runner.simulate(folder, clear, gaps.pop("GAP_SOURCE"), **gaps)
    others = [runner.path(other) for other in case.others]
    other_masks = [runner.gap_mask(other) for other in case.others]
    dated = {"OTHER_DATES": others, "OTHER_MASKS": other_masks, "DATES": case.dates}
    filled = dict(extra(runner, case, folder, simulated)) if extra else {}
    methods = (SCENE, HISTOGRAM, TEMPORAL, HISTOGRAM_EDGES, TEMPORAL_EDGES, WEIGHTED_HISTOGRAM,
               WEIGHTED_EDGES, REGRESSION, SIMILAR, PYRAMID, SPATIAL)
    for method in methods:
        if runner.wants(method):
            options = dated if method not in (PYRAMID, SPATIAL) else {}
            filled[method] = runner.fill(method, folder, simulated["OUTPUT"],
                                         simulated["GAP_MASK"], **options)
    document = runner.evaluate(
        folder, clear, filled,
        EVALUATION_MASK=simulated["EVALUATION_MASK"], GAPS_INPUT=simulated["OUTPUT"],
    )
    return rows_of(case.group, case.label, GAP_FILLING, document)


def single_date_fills(runner: Runner, folder: Path, target: object, mask: object,
                      sar: Path | None) -> dict[str, str]:
    """Every single-date fill: the scene fill, the bundled model that fits (when one does),
    Deep Image Prior (SAR as auxiliary source), pyramid and inverse-distance interpolation."""
    filled = {}
    with_sar = {"SAR": sar} if sar else {}
    if runner.wants(SCENE):
        filled[SCENE] = runner.fill(SCENE, folder, target, mask, **with_sar)
    model = MODELS / ("s1s2_unet_small.onnx" if sar else "s2_unet_small.onnx")
    if runner.wants(BUNDLED) and model.exists():  # named: no bundled model is a default
        filled[BUNDLED] = runner.fill(BUNDLED, folder, target, mask, MODEL=model, **with_sar)
    if runner.wants(DIP):
        name = DIP + (" + S1" if sar else "")
        filled[name] = runner.fill(DIP, folder, target, mask,
                                   **({"AUXILIARY": [sar]} if sar else {}))
    for method in (PYRAMID, SPATIAL):
        if runner.wants(method):
            filled[method] = runner.fill(method, folder, target, mask)
    return filled


def run_single_date(
    runner: Runner, group: str, label: str, cloudy: Path, mask: object, clear: Path,
    sar: Path | None, protocols: tuple[str, ...] = (SEN12MSCR, GAP_FILLING),
) -> list[Row]:
    """One single-date sample under both protocols (those the runner wants)."""
    if runner.protocols is not None:
        protocols = tuple(p for p in protocols if p in runner.protocols)
    rows = []
    base = runner.folder / label.replace(" ", "_")
    if SEN12MSCR in protocols:
        folder = base / "sen12mscr_protocol"
        filled = single_date_fills(runner, folder, cloudy, mask, sar)
        document = runner.evaluate(folder, clear, filled, EVALUATION_MASK=mask,
                                   GAPS_INPUT=cloudy)
        rows += rows_of(group, label, SEN12MSCR, document)
    if GAP_FILLING in protocols:
        folder = base / "gap_filling"
        simulated = runner.simulate(folder, clear, mask)
        filled = single_date_fills(runner, folder, simulated["OUTPUT"], simulated["GAP_MASK"],
                                   sar)
        document = runner.evaluate(folder, clear, filled,
                                   EVALUATION_MASK=simulated["EVALUATION_MASK"],
                                   GAPS_INPUT=simulated["OUTPUT"])
        rows += rows_of(group, label, GAP_FILLING, document)
    return rows


def sen12mscr_samples(data: Path) -> list[str]:
    """The SEN12MS-CR samples with gaps that leave clear pixels (0 % < cloud < 100 %)."""
    from osgeo import gdal

    samples = []
    for path in sorted((data / "sen12mscr").glob("*_cloudmask.tif")):
        fraction = float((gdal.Open(str(path)).ReadAsArray() == 1).mean())
        if 0 < fraction < 0.995:
            samples.append(path.name.split("_")[0])
    return samples


def run_sen12mscr(runner: Runner, sample: str) -> list[Row]:
    folder = runner.path("sen12mscr")
    return run_single_date(
        runner, "c", f"sen12mscr {sample}", folder / f"{sample}_s2_cloudy.tif",
        folder / f"{sample}_cloudmask.tif", folder / f"{sample}_s2_clear.tif",
        folder / f"{sample}_s1.tif",
    )


def pair_names(data: Path) -> list[str]:
    return sorted(p.name[: -len("_s2_clear.tif")] for p in (data / PAIRS).glob("*_s2_clear.tif"))


def run_pair(runner: Runner, name: str) -> list[Row]:
    """A georeferenced pair without SAR or mask: the gaps are the cloudy image's spectral
    cloud/shadow mask (dilated 2 px), laid on the clear image for gap filling."""
    cloudy = runner.path(f"{PAIRS}/{name}_s2_cloudy.tif")
    mask = runner.gap_mask(f"{PAIRS}/{name}_s2_cloudy.tif", dilation=2)
    return run_single_date(
        runner, "f", f"{PAIRS} {name}", cloudy, mask, runner.path(f"{PAIRS}/{name}_s2_clear.tif"),
        None,
    )


def run_georef(runner: Runner, name: str) -> list[Row]:
    """A georeferenced clear image with S1 (mostly open water), the spectral cloud mask of
    another scene's cloudy image laid on it: gap filling only (no cloudy image of its own)."""
    mask = runner.gap_mask(f"{GEOREF}/{GEOREF_CLOUDY}_s2_cloudy.tif", dilation=2)
    clear = runner.path(f"{GEOREF}/{name}_s2_clear.tif")
    return run_single_date(
        runner, "g", f"{GEOREF} {name}", clear, mask, clear,
        runner.path(f"{GEOREF}/{name}_s1.tif"), protocols=(GAP_FILLING,),
    )


def run_dip_scotland(runner: Runner) -> list[Row]:
    """The mean 2019 RGB composite with the real cloud mask of another date laid on it."""
    folder = runner.folder / "dip_scotland"
    clear = runner.path("dip_scotland/s2_mean_2019_rgb.tif")
    simulated = runner.simulate(folder, clear, runner.path("dip_scotland/cloud_mask.tif"))
    filled = single_date_fills(runner, folder, simulated["OUTPUT"], simulated["GAP_MASK"],
                               runner.path("dip_scotland/s1.tif"))
    document = runner.evaluate(folder, clear, filled, ndvi=False,
                               EVALUATION_MASK=simulated["EVALUATION_MASK"],
                               GAPS_INPUT=simulated["OUTPUT"])
    return rows_of("e", "dip_scotland", GAP_FILLING, document)
