"""Long per-dataset results table: one row per (model, dataset, resolution).

Required columns are ``model, dataset, resolution, top1, n_classes``. ``resolution`` is
``"hr"`` (the model's native resolution, A_HR in the paper, Sec. 3) or a positive integer
side length n (A_n); ``top1`` is accuracy in [0, 1]. Any other column (top5, family, ...)
is passed through untouched.
"""

from __future__ import annotations

from os import PathLike

import numpy as np
import pandas as pd

from ..resolution import HR, parse_resolution, resolution_or_none

REQUIRED_COLUMNS = ("model", "dataset", "resolution", "top1", "n_classes")
MAX_LISTED_ROWS = 10


class ResultsTableError(ValueError):
    """A results table that cannot be used, with the offending rows named."""


def _parse_resolutions(raw: pd.Series) -> pd.Series:
    """Elementwise ``resolution_or_none``, computed once per distinct value."""
    codes, distinct = pd.factorize(raw, use_na_sentinel=False)
    parsed = np.array([resolution_or_none(v) for v in distinct], dtype=object)
    return pd.Series(parsed[codes], index=raw.index, dtype=object)


def pair_codes(table: pd.DataFrame) -> np.ndarray:
    """One integer per distinct (model, dataset) pair of a table, for numpy lookups."""
    model_code = pd.factorize(table["model"])[0]
    dataset_code, datasets = pd.factorize(table["dataset"])
    return model_code * len(datasets) + dataset_code


def _describe(rows: pd.DataFrame, row_word: str, first_number: int, extra: str | None) -> str:
    """'line 3 (model='a', dataset='b', resolution='16', top1=1.5); ...; and N more'."""
    shown = []
    listed = rows.head(MAX_LISTED_ROWS)[["model", "dataset", "resolution"] + ([extra] if extra else [])]
    for position, row in zip(listed.index, listed.itertuples(index=False)):
        fields = f"model={row.model!r}, dataset={row.dataset!r}, resolution={row.resolution!r}"
        if extra:
            fields += f", {extra}={getattr(row, extra)!r}"
        shown.append(f"{row_word} {position + first_number} ({fields})")
    more = len(rows) - MAX_LISTED_ROWS
    return "; ".join(shown) + (f"; and {more} more" if more > 0 else "")


def _validate(df, row_word: str, first_number: int) -> pd.DataFrame:
    """Shared by ``validate_results_table`` (``row 1`` = first data row) and
    ``read_results_table`` (``line 2`` = first data row under the CSV header)."""
    if not isinstance(df, pd.DataFrame):
        raise ResultsTableError(f"results table must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ResultsTableError(
            f"results table is missing required column(s) {missing}; "
            f"it has columns {[str(c) for c in df.columns]}"
        )
    if len(df) == 0:
        raise ResultsTableError("results table has no rows")

    raw = df.reset_index(drop=True)
    out = raw.copy()
    problems = []

    def flag(mask, message, extra=None):
        if np.any(mask):
            problems.append(f"{message}: {_describe(raw[np.asarray(mask)], row_word, first_number, extra)}")

    for column in ("model", "dataset"):
        names = raw[column].astype(str).str.strip()
        flag(raw[column].isna() | names.eq(""), f"empty {column} name")
        out[column] = names
    out["resolution"] = _parse_resolutions(raw["resolution"])
    flag(out["resolution"].isna(), "resolution must be 'hr' or a positive integer")
    top1 = pd.to_numeric(raw["top1"], errors="coerce").astype(float)
    flag(~top1.between(0.0, 1.0), "top1 must be a number in [0, 1] (a fraction, not a percentage)", "top1")
    n_classes = pd.to_numeric(raw["n_classes"], errors="coerce").astype(float)
    integer = np.isfinite(n_classes) & (n_classes == n_classes.round())
    flag(~(integer & (n_classes >= 2)), "n_classes must be an integer >= 2", "n_classes")
    if problems:
        raise ResultsTableError("invalid results table: " + " | ".join(problems))
    out["top1"] = top1
    out["n_classes"] = n_classes.astype(np.int64)

    pair = pair_codes(out)
    resolution_code, resolutions = pd.factorize(out["resolution"])
    flag(pd.Series(pair * len(resolutions) + resolution_code).duplicated(keep=False),
         "duplicate (model, dataset, resolution)")
    is_hr = out["resolution"].eq(HR).to_numpy(bool)
    has_hr = np.zeros(pair.max() + 1, bool)
    has_hr[pair[is_hr]] = True
    flag(~has_hr[pair], "no 'hr' row for this (model, dataset), which has low-res rows")
    varying = out.groupby("dataset", sort=False)["n_classes"].transform("nunique") > 1
    flag(varying, "n_classes differs between rows of the same dataset", "n_classes")
    if problems:
        raise ResultsTableError("invalid results table: " + " | ".join(problems))
    return out


def validate_results_table(df: pd.DataFrame) -> pd.DataFrame:
    """Normalized copy of ``df`` (names stripped, resolution ``"hr"`` or int, top1 float,
    n_classes int, fresh index); raises ResultsTableError naming offending rows (1-based)."""
    return _validate(df, "row", 1)


def read_results_table(path: str | PathLike) -> pd.DataFrame:
    """Read and validate a results CSV; errors name CSV line numbers (header = line 1)."""
    try:
        df = pd.read_csv(path, dtype={"model": str, "dataset": str, "resolution": str})
    except pd.errors.EmptyDataError as err:
        raise ResultsTableError(f"results table {str(path)!r} is empty") from err
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise ResultsTableError(f"cannot read results table {str(path)!r}: {err}") from err
    if len(df) == 0 and all(c in df.columns for c in REQUIRED_COLUMNS):
        raise ResultsTableError(f"results table {str(path)!r} has a header but no data rows")
    return _validate(df, "line", 2)
