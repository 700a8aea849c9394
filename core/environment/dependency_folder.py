"""The plugin's own dependency folder inside the user's QGIS profile, put on `sys.path` at load.

Layout: `<profile>/python/gapfill-deps/` holds one folder per install ("generation", filled by
`pip install --target`) and a `current` file naming the one in use. An install writes a new
generation and switches `current` at the end, so a failed install never touches the folder in use.

Standard library only: this runs when QGIS loads the plugin, which must stay cheap.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

FOLDER_NAME = "gapfill-deps"
POINTER = "current"
GENERATION_PREFIX = "gen-"
MANIFEST = "gapfill-install.json"


def dependency_root(profile: Path) -> Path:
    """The plugin's dependency folder of a QGIS profile (`QgsApplication.qgisSettingsDirPath()`)."""
    return Path(profile) / "python" / FOLDER_NAME


def current_folder(root: Path) -> Path | None:
    """The generation `current` names, or None when nothing is installed (or it is gone)."""
    try:
        name = (root / POINTER).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    folder = root / name
    if not name.startswith(GENERATION_PREFIX) or not folder.is_dir():
        return None
    return folder


def generations(root: Path) -> list[Path]:
    """Every generation folder under `root`, current or not."""
    if not root.is_dir():
        return []
    return sorted(path for path in root.glob(f"{GENERATION_PREFIX}*") if path.is_dir())


def activate(root: Path) -> Path | None:
    """Put the current generation first on `sys.path` (replacing any other generation of `root`).

    Returns the folder, or None when nothing is installed. Imports nothing.
    """
    resolved_root = root.resolve()
    sys.path[:] = [entry for entry in sys.path if Path(entry).parent.resolve() != resolved_root]
    folder = current_folder(root)
    if folder is not None:
        sys.path.insert(0, str(folder))
    return folder


def read_manifest(folder: Path) -> dict[str, Any]:
    """What an install wrote about itself (packages, command, date); {} when unreadable."""
    try:
        return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
