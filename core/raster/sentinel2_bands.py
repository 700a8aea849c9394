"""Which band of a raster is which Sentinel-2 band: from descriptions, a user list, or the count."""

from __future__ import annotations

import re

from ..errors import GapfillError

L1C = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12"]
L2A = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B11", "B12"]
BY_COUNT = {
    13: L1C,
    12: L2A,
    10: ["B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12"],
    6: ["B2", "B3", "B4", "B8", "B11", "B12"],
    4: ["B2", "B3", "B4", "B8"],
}


def normalise(name: str) -> str:
    """'B02', 'b2', 'B2 (blue)' → 'B2'; 'B8a' → 'B8A'; unknown names come back upper-cased."""
    match = re.match(r"\s*B0?(\d{1,2})(A?)\b", name.strip(), flags=re.IGNORECASE)
    if not match:
        return name.strip().upper()
    return f"B{int(match.group(1))}{match.group(2).upper()}"


def band_names(descriptions: list[str], given: str = "") -> list[str]:
    """Sentinel-2 names of the raster's bands, in file order."""
    if given.strip():
        names = [normalise(part) for part in re.split(r"[,;\s]+", given.strip()) if part]
        if len(names) != len(descriptions):
            raise GapfillError(
                f"{len(names)} band names were given for a raster with {len(descriptions)} "
                "bands. Name every band in file order, e.g. 'B2,B3,B4,B8,B11,B12'."
            )
        return names
    named = [normalise(d) for d in descriptions]
    if all(n in L1C for n in named):
        return named
    if len(descriptions) in BY_COUNT:
        return BY_COUNT[len(descriptions)]
    raise GapfillError(
        f"Cannot tell which Sentinel-2 bands the raster's {len(descriptions)} bands are (their "
        "descriptions do not name them). Give the band names in file order, e.g. "
        "'B2,B3,B4,B8,B11,B12'."
    )


def band_indices(names: list[str], wanted: list[str], purpose: str) -> dict[str, int]:
    """0-based index of each wanted band; a clear error naming what is missing."""
    missing = [band for band in wanted if band not in names]
    if missing:
        raise GapfillError(
            f"{purpose} needs the Sentinel-2 bands {', '.join(wanted)}; the raster has "
            f"{', '.join(names)} (missing {', '.join(missing)})."
        )
    return {band: names.index(band) for band in wanted}
