"""The paper's published results tables (LR0.FM Tables 2-7, 9-14), transcribed as CSV.

The CSVs and their description, ``index.json``, live in ``precomputed/paper/`` at the root of
the repository (not inside the installed package). Numbers are exactly as printed; an empty
cell means the paper prints no number there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd

PAPER_TABLES_DIR = Path(__file__).resolve().parents[1] / "precomputed" / "paper"
PANDAS_DTYPES = {"int": "Int64", "float": "float64", "str": "str", "bool": "boolean"}


class PaperTableError(ValueError):
    """A paper table CSV that does not match its description in ``index.json``."""


class UnknownPaperTableError(PaperTableError):
    """A table number or slug that is not among the transcribed tables."""


class PaperTablesMissingError(FileNotFoundError):
    """``precomputed/paper/`` (or one of its files) is not there, e.g. in an installed copy."""


@dataclass(frozen=True)
class PaperColumn:
    """One CSV column: its name, dtype (int/float/str/bool), unit (or None) and meaning."""

    name: str
    dtype: str
    unit: str | None
    description: str


@dataclass(frozen=True)
class PaperTable:
    """One transcribed table: paper table number, slug, short title, CSV path and columns."""

    number: int
    slug: str
    title: str
    caption: str
    path: Path
    columns: tuple[PaperColumn, ...]
    notes: tuple[str, ...]


def _require(path: Path) -> Path:
    if not path.exists():
        raise PaperTablesMissingError(
            f"{path} is missing; the paper tables ship with the repository checkout "
            f"(precomputed/paper/), not with an installed package")
    return path


@lru_cache(maxsize=1)
def _read_index() -> tuple[PaperTable, ...]:
    index = json.loads(_require(PAPER_TABLES_DIR / "index.json").read_text(encoding="utf-8"))
    return tuple(
        PaperTable(number=t["number"], slug=t["slug"], title=t["title"], caption=t["caption"],
                   path=PAPER_TABLES_DIR / t["file"],
                   columns=tuple(PaperColumn(**c) for c in t["columns"]), notes=tuple(t["notes"]))
        for t in index["tables"]
    )


def list_paper_tables() -> list[PaperTable]:
    """All transcribed tables, as described by ``precomputed/paper/index.json``."""
    return list(_read_index())


def paper_table(number_or_slug: int | str) -> PaperTable:
    """The table with this paper number (``2``, ``"2"``) or slug (``"lr_tk0"``)."""
    key = str(number_or_slug).strip()
    for table in list_paper_tables():
        if key in (str(table.number), table.slug):
            return table
    known = ", ".join(f"{t.number} ({t.slug})" for t in list_paper_tables())
    raise UnknownPaperTableError(f"no transcribed paper table {number_or_slug!r}; known tables: {known}")


def load_paper_table(number_or_slug: int | str) -> pd.DataFrame:
    """A paper table as a DataFrame, with the dtypes that ``index.json`` declares."""
    table = paper_table(number_or_slug)
    dtypes = {c.name: PANDAS_DTYPES[c.dtype] for c in table.columns}
    frame = pd.read_csv(_require(table.path), dtype=dtypes)
    if list(frame.columns) != list(dtypes):
        raise PaperTableError(
            f"{table.path.name} has columns {list(frame.columns)}, index.json declares {list(dtypes)}")
    return frame
