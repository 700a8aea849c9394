"""Acquisition dates: from a parameter, from the raster's metadata, or from its file name."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from osgeo import gdal

from ..errors import GapfillError

METADATA_KEYS = (
    "ACQUISITIONDATE",
    "ACQUISITION_DATE",
    "DATETIME",
    "SENSING_TIME",
    "PRODUCT_START_TIME",
    "DATATAKE_1_DATATAKE_SENSING_START",
    "TIFFTAG_DATETIME",
)
DATE_PATTERN = re.compile(r"(?<!\d)(\d{4})[-_]?(\d{2})[-_]?(\d{2})(?!\d)")


def parse_date(text: str) -> date | None:
    """The first plausible YYYY-MM-DD, YYYYMMDD or YYYY:MM:DD date in `text`."""
    for match in DATE_PATTERN.finditer(text.replace(":", "-")):
        year, month, day = (int(part) for part in match.groups())
        try:
            return date(year, month, day)
        except ValueError:
            continue
    return None


def raster_date(path: str, dataset: gdal.Dataset | None = None) -> date | None:
    """The acquisition date a raster declares (metadata, then band 1's description, then name)."""
    dataset = dataset or gdal.Open(str(path))
    if dataset is not None:
        metadata = dataset.GetMetadata() or {}
        for key in METADATA_KEYS:
            if key in metadata and (found := parse_date(metadata[key])):
                return found
        if found := parse_date(dataset.GetRasterBand(1).GetDescription() or ""):
            return found
    return parse_date(Path(path).name)


def parse_date_list(text: str, expected: int) -> list[date]:
    """Dates given by the user, comma or space separated, one per image."""
    parts = [part for part in re.split(r"[,;\s]+", text.strip()) if part]
    if len(parts) != expected:
        raise GapfillError(
            f"{len(parts)} dates were given but {expected} are needed (the target's date first, "
            "then one per other-date image, in order), e.g. '2018-05-06, 2018-04-26, 2018-05-21'."
        )
    dates = []
    for part in parts:
        found = parse_date(part)
        if found is None:
            raise GapfillError(f"'{part}' is not a date; write dates as YYYY-MM-DD.")
        dates.append(found)
    return dates


def resolve_dates(paths: list[str], given: str | None) -> list[date]:
    """One date per path, from `given` when set, else from each raster; explain what is missing."""
    if given and given.strip():
        return parse_date_list(given, len(paths))
    dates = []
    for path in paths:
        found = raster_date(path)
        if found is None:
            raise GapfillError(
                f"No acquisition date found for '{path}' (no date in its metadata, band "
                "description or file name). Give the dates explicitly, target first, e.g. "
                "'2018-05-06, 2018-04-26, 2018-05-21'."
            )
        dates.append(found)
    return dates
