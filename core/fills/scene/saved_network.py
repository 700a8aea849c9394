"""An adapted network saved with its card, to start the scene fill of a neighbouring scene.

A scene of the same date and sensor (the next tile, the next orbit's overlap) looks much like
the one the network learned on, so its weights are a better start than zeros: the next run
trains on from them (or, with no steps, just validates them) and keeps only what helps on its
own selection blocks. The inputs are standardised on each scene anew, so brightness differences
between the scenes do not carry over. One file: `torch.save` of the card (JSON text) and the
weights, read back with `weights_only` (no code runs from the file).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...dependencies import require
from ...errors import GapfillError
from ...raster.output import atomic_path
from .network import LEVELS, PURPOSE, WIDTH, AdaptedNetwork

if TYPE_CHECKING:
    from .fill_scene import SceneResult

FORMAT, VERSION = "gapfill-adapted-network", 1
SUFFIX = ".pt"


@dataclass(frozen=True)
class SavedNetwork:
    """A network read from a file: its card and its weights (a torch state dict)."""

    path: Path
    card: dict[str, Any]
    state: dict[str, Any]

    @property
    def base(self) -> str:
        return self.card["base"]

    @property
    def second(self) -> str | None:
        return self.card["second"]

    def describe(self) -> str:
        """What the card says, in a few lines (`gapfill describe net.pt`)."""
        card = self.card
        report = card["report"]
        scores = ", ".join(f"{name} {value['psnr']:.2f} dB" for name, value in report.items())
        return "\n".join([
            f"Adapted network saved by the scene fill on {card['scene']} ({card['created']}).",
            f"Corrects {card['base']}" + (f", with {card['second']} as a further input"
                                          if card["second"] else "")
            + f"; reads {card['bands']} target bands, {card['sar_bands']} SAR and "
            f"{card['dem_bands']} DEM bands ({card['channels']} channels).",
            f"Trained {card['steps']} steps (stopped by {card['stopped_by']}), correction "
            f"scaled by {card['shrink']:g}; the fill chosen on its scene: {card['chosen']}.",
            f"On its scene's report blocks: {scores or 'not scored'}.",
        ])

    def check_fits(self, bands: int, sar_bands: int, dem_bands: int) -> None:
        """Refuse a scene whose inputs differ from those the network learned on."""
        inputs = {
            "bands of the target": (self.card["bands"], bands),
            "SAR bands": (self.card["sar_bands"], sar_bands),
            "DEM bands": (self.card["dem_bands"], dem_bands),
        }
        wrong = [f"{what}: {saved} there, {here} here"
                 for what, (saved, here) in inputs.items() if saved != here]
        if wrong:
            raise GapfillError(
                f"The adapted network '{self.path.name}' learned on other inputs than this "
                f"run has ({'; '.join(wrong)}). Give the same kinds of layers as its scene had "
                f"(its card: {self.card['scene']}), or leave out {{start_network}}.",
                options=("start_network",),
            )


def _count(standardiser: Any) -> int:
    return 0 if standardiser is None else len(standardiser.centre)


def check_save_path(path: str | Path) -> None:
    """Refuse, before any work, a name the saved network would not be found under again."""
    if Path(path).suffix != SUFFIX:
        raise GapfillError(
            f"Save the adapted network to a '{SUFFIX}' file, not '{Path(path).name}' "
            "({save_network}).", options=("save_network",),
        )


def save_network(
    network: AdaptedNetwork, path: str | Path, result: SceneResult, scene: str
) -> Path:
    """Write `network` and its card (what it reads, how it scored on its scene) to `path`."""
    torch = require("torch", PURPOSE)
    spec = network.spec
    report = {
        r.name: {"psnr": r.report.psnr, "sam": r.report.metrics.sam}
        for r in result.candidates if r.report is not None
    }
    card = {
        "format": FORMAT, "version": VERSION, "purpose": PURPOSE,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "scene": scene, "width": WIDTH, "levels": LEVELS, "channels": spec.channels,
        "bands": len(spec.target.centre), "sar_bands": _count(spec.sar),
        "dem_bands": _count(spec.dem), "base": spec.base, "second": spec.second,
        "steps": network.steps, "shrink": network.shrink, "stopped_by": network.stopped_by,
        "chosen": result.chosen, "network": result.network, "report": report,
        "standardisation": spec.to_json(),
    }
    state = {k: v.detach().cpu() for k, v in network.network.state_dict().items()}
    with atomic_path(path) as temporary:
        torch.save({"card": json.dumps(card, default=float), "state": state}, temporary)
    return Path(path)


def load_network(path: str | Path) -> SavedNetwork:
    """Read a network saved by `save_network`, or say clearly why the file is not one."""
    torch = require("torch", PURPOSE)
    path = Path(path)
    if not path.is_file():
        raise GapfillError(f"The adapted network '{path}' does not exist.")
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
        card = json.loads(content["card"])
        state = dict(content["state"])
    except Exception as error:  # noqa: BLE001 - any unreadable file gets the same answer
        raise GapfillError(
            f"'{path.name}' is not an adapted network saved by the scene fill ({error}). Give "
            f"the '{SUFFIX}' file of an adapted network that a scene fill saved."
        ) from error
    if card.get("format") != FORMAT or card.get("version") != VERSION:
        raise GapfillError(
            f"'{path.name}' is a {card.get('format')} file of version {card.get('version')}; "
            f"this Gapfill reads {FORMAT} version {VERSION}. Save it again with this version."
        )
    if (card["width"], card["levels"]) != (WIDTH, LEVELS):
        raise GapfillError(
            f"'{path.name}' holds a network of width {card['width']} and {card['levels']} "
            f"levels; this Gapfill builds width {WIDTH}, {LEVELS} levels. Save it again with "
            "this version."
        )
    return SavedNetwork(path, card, state)
