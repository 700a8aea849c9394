"""The rules of the house (docs/architecture.md), checked on the source: each room of core/
imports only the ground and the rooms below it; core/, training/ and cli/ never import QGIS
(cli/ not the algorithms either); core/ and cli/ import onnxruntime and torch only inside
functions; imports inside the plugin are relative; the engine's errors name no command-line
flag."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CORE = REPO / "core"
CLI = REPO / "cli"
GROUND = ("errors", "progress", "dependencies")
ROOMS = ("raster", "learned", "masks", "evaluate", "fills", "prepare", "environment",
         "distributed")
HEAVY = ("onnxruntime", "torch", "ukis_csmask", "s2cloudless", "lightgbm", "cv2", "dask",
         "distributed")
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
        for path in python_files(CORE) + python_files(REPO / "training") + python_files(CLI)
        for level, module in imports(path)
        if level == 0 and module.split(".")[0] in ("qgis", "processing")
    ]
    assert wrong == []


def test_the_command_line_stands_on_core_and_training_only() -> None:
    """cli/ is thin over core/ and training/ like the algorithms, and never goes through them."""
    wrong = [
        f"{relative(path)}: {'.' * level}{module}"
        for path in python_files(CLI)
        for level, module in imports(path)
        if level >= 2 and module.split(".")[0] not in ("core", "training")
    ]
    assert wrong == []


def test_core_imports_heavy_packages_only_inside_functions() -> None:
    wrong = [
        f"{relative(path)}: {module}"
        for path in python_files(CORE) + python_files(CLI)
        for level, module in imports(path, top_level_only=True)
        if level == 0 and module.split(".")[0] in HEAVY
    ]
    assert wrong == []


def test_imports_inside_the_plugin_are_relative() -> None:
    folders = ("core", "algorithms", "training", "cli")
    plugin = [path for folder in folders for path in python_files(REPO / folder)]
    plugin = [path for path in plugin if RECIPES not in path.parents]  # scripts, not modules
    wrong = [
        f"{relative(path)}: {module}"
        for path in plugin + [REPO / "plugin.py", REPO / "provider.py"]
        for level, module in imports(path)
        if level == 0 and module.split(".")[0] == "gapfill"
    ]
    assert wrong == []


def test_errors_of_the_engine_name_no_command_line_flag() -> None:
    """A raised error's text names options as `{field}` for each front end to word; a literal
    `--flag` would reach Processing users (Train model) too. training/cli.py is a front end;
    pip's options (in the installer's fixes) are no flag of ours."""
    # pip's own options are exempt: the user types them as pip options in every front end
    pip = r"(?!(?:index-url|extra-index-url|no-index|find-links)\b)"
    flag = re.compile(r"(?<![\w-])--" + pip + r"[a-z][a-z-]*")
    found = []
    engine = [*python_files(CORE), *python_files(REPO / "training")]
    for path in (p for p in engine if p.name != "cli.py" and RECIPES not in p.parents):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and node.exc is not None:
                texts = [n.value for n in ast.walk(node.exc)
                         if isinstance(n, ast.Constant) and isinstance(n.value, str)]
                found += [f"{relative(path)}:{node.lineno}" for text in texts if flag.search(text)]
    assert not found, "errors naming command-line flags: " + ", ".join(found)
