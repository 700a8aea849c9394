"""The scene fill from files, as the Processing algorithm and the command line run it: gap masks
built when not given, the fill, the report folder and the saved network."""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from pathlib import Path

from ...errors import GapfillError
from ...learned.onnx_session import LogFn, no_log
from ...masks.gap_mask import MaskSettings, build_gap_mask
from ...progress import CancelledFn, ProgressFn, never_cancelled, no_progress
from ...raster.output import check_writable
from .fill_scene import DEFAULT_SETTINGS, SceneResult, SceneSettings, fill_scene
from .inputs import open_scene
from .network import AdaptedNetwork
from .report import HTML_NAME, write_scene_report
from .saved_network import check_save_path, load_network, save_network

AUTOMATIC = MaskSettings(method="automatic")  # as Build gap mask's default


def _mask_or_none(path: str, folder: Path, index: int, log: LogFn) -> str | None:
    """A cloud/shadow gap mask of a Sentinel-2 image made as Build gap mask makes it by default
    (the best detector installed, its haze buffer), or None (not Sentinel-2)."""
    output = folder / f"gap_mask_{index}.tif"
    try:
        role = f"other-date image {index}" if index else "target image"
        report = build_gap_mask(path, output, AUTOMATIC, log=log, role=role)
    except GapfillError as error:
        log(f"No gap mask built for '{path}' ({error}); its no-data is its gaps.")
        return None
    log(f"Gap mask of '{path}' built ({report.method}): {100 * report.gap_fraction:.1f} % gaps.")
    return str(output)


def fill_scene_files(
    target: str,
    output: str | Path,
    *,
    gap_mask: str | None = None,
    other_dates: list[str] | None = None,
    other_masks: list[str] | None = None,
    dates: str | None = None,
    sar: str | None = None,
    dem: str | None = None,
    settings: SceneSettings = DEFAULT_SETTINGS,
    report_folder: str | Path | None = None,
    confidence_output: str | Path | None = None,
    start_network: str | Path | None = None,
    save_network_to: str | Path | None = None,
    progress: ProgressFn = no_progress,
    cancelled: CancelledFn = never_cancelled,
    log: LogFn = no_log,
) -> SceneResult:
    """Fill `target` into `output` by the scene fill; masks not given are built (Build gap
    mask's automatic method for Sentinel-2 images; else the image's no-data) in a temporary
    folder. The adapted network starts from `start_network` (a file saved by an earlier run)
    and is saved to `save_network_to` with its card."""
    other_dates = list(other_dates or [])
    other_masks = list(other_masks or [])
    if other_masks and len(other_masks) != len(other_dates):
        raise GapfillError(
            f"{len(other_masks)} gap masks were given for {len(other_dates)} other dates. Give "
            "one mask per other date, in the same order, or none (they are then built)."
        )
    if not settings.adapt and (save_network_to or start_network):
        asked = "save_network" if save_network_to else "start_network"
        raise GapfillError(
            "The adapted network is turned off ({no_adapt}), so none can be "
            + ("saved" if save_network_to else "started from a saved one")
            + f". Turn it on, or leave out {{{asked}}}.", options=("no_adapt", asked),
        )
    if save_network_to is not None:
        check_save_path(save_network_to)
    if report_folder is not None:  # before any work, so that the fill is never published by
        check_writable(Path(report_folder) / HTML_NAME)  # a run whose report then fails
    start_from = load_network(start_network) if start_network else None
    mask_given = gap_mask is not None
    if gap_mask is None or (other_dates and not other_masks):
        # masks are to be built (minutes on a tile): every other check of the inputs first
        open_scene(target, gap_mask, other_paths=other_dates, dates=dates, sar_path=sar,
                   dem_path=dem)
    with tempfile.TemporaryDirectory(prefix="gapfill-scene-") as scratch:
        folder = Path(scratch)
        if gap_mask is None:
            gap_mask = _mask_or_none(target, folder, 0, log)
        if other_dates and not other_masks:
            other_masks = [
                _mask_or_none(path, folder, index + 1, log) or ""
                for index, path in enumerate(other_dates)
            ]
        inputs = open_scene(
            target, gap_mask, other_paths=other_dates, other_masks=other_masks or None,
            dates=dates, sar_path=sar, dem_path=dem, log=log,
        )
        result, pieces = fill_scene(
            inputs, output, settings, confidence_output=confidence_output,
            start_from=start_from, progress=progress, cancelled=cancelled, log=log,
        )
    if save_network_to is not None:
        _save(pieces["network"], save_network_to, result, target, log)
    if report_folder is not None:
        parameters = asdict(settings) | {
            "other dates": len(other_dates), "SAR": sar is not None, "DEM": dem is not None,
            "gap mask given": mask_given,
        }
        page = write_scene_report(
            result, pieces["windows"], inputs.target.descriptions, parameters, report_folder
        )
        log(f"Report: {page}")
    return result


def _save(
    network: AdaptedNetwork | None, path: str | Path, result: SceneResult, target: str,
    log: LogFn,
) -> None:
    """Save the adapted network, or say in the notes why there is none."""
    if network is None:
        why = next((n for n in result.notes if n.startswith(("No network", "Not validated"))),
                   "see the log")
        result.notes.append(
            f"No adapted network was saved: none was trained on this scene ({why})."
        )
        log(result.notes[-1])
        return
    saved = save_network(network, path, result, Path(target).name)
    log(f"Adapted network saved with its card: {saved}"
        + ("" if network.shrink else " (it did not beat its base fill here; shrink 0)."))
