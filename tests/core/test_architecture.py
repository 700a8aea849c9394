"""The rules of the house (docs/architecture.md), checked on the source: each room of core/
imports only the ground and the rooms below it; core/ and training/ never import QGIS; core/
imports onnxruntime and torch only inside functions; imports inside the plugin are relative."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CORE = REPO / "core"
GROUND = ("errors", "progress", "dependencies")
ROOMS = ("raster", "learned", "masks", "evaluate", "fills", "prepare", "environment")
HEAVY = ("onnxruntime", "torch", "ukis_csmask", "s2cloudless", "lightgbm", "cv2")
RECIPES = REPO / "training" / "recipes"


def python_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*.py") if "__pycache__" not in path.parts)


def imports(path: Path, top_level_only: bool = False) -> list[tuple[int, str]]:
    """(level, dotted name) of every import; level 0 for absolute imports."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(0, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or ""))
    return found


def room_of(path: Path) -> str | None:
    relative = path.relative_to(CORE).parts
    return relative[0] if len(relative) > 1 else None


def imported_room(path: Path, level: int, module: str) -> str | None:
    """The room (or ground module) a relative import of a core module reaches."""
    package = path.parent
    for _ in range(level - 1):
        package = package.parent
    target = (package / module.replace(".", "/")).resolve().relative_to(CORE.resolve()).parts
    return target[0] if target else None


def test_the_rooms_and_the_ground_are_all_there_is() -> None:
    top = {path.stem for path in CORE.glob("*.py")} - {"__init__"}
    assert top == set(GROUND)
    assert {path.name for path in CORE.iterdir() if path.is_dir()} - {"__pycache__"} == set(ROOMS)


def relative(path: Path) -> str:
    return str(path.relative_to(REPO))


def test_a_room_imports_only_the_ground_and_the_rooms_below_it() -> None:
    wrong = []
    for path in python_files(CORE):
        room = room_of(path)
        allowed = set(GROUND) | set(ROOMS[: ROOMS.index(room) + 1] if room else ())
        wrong += [
            f"{relative(path)}: {'.' * level}{module}"
            for level, module in imports(path)
            if level and imported_room(path, level, module) not in allowed
        ]
    assert wrong == []


def test_core_and_training_never_import_qgis() -> None:
    wrong = [
        f"{relative(path)}: {module}"
        for path in python_files(CORE) + python_files(REPO / "training")
        for level, module in imports(path)
        if level == 0 and module.split(".")[0] in ("qgis", "processing")
    ]
    assert wrong == []


def test_core_imports_heavy_packages_only_inside_functions() -> None:
    wrong = [
        f"{relative(path)}: {module}"
        for path in python_files(CORE)
        for level, module in imports(path, top_level_only=True)
        if level == 0 and module.split(".")[0] in HEAVY
    ]
    assert wrong == []


def test_imports_inside_the_plugin_are_relative() -> None:
    folders = ("core", "algorithms", "training")
    plugin = [path for folder in folders for path in python_files(REPO / folder)]
    plugin = [path for path in plugin if RECIPES not in path.parents]  # scripts, not modules
    wrong = [
        f"{relative(path)}: {module}"
        for path in plugin + [REPO / "plugin.py", REPO / "provider.py"]
        for level, module in imports(path)
        if level == 0 and module.split(".")[0] == "gapfill"
    ]
    assert wrong == []
