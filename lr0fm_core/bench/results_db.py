"""The results database of ``lr0fm bench``: one embedded DuckDB file.

Table ``runs`` holds one row per (model, pretrained tag, dataset, resolution, LR tokens), the
key: accuracies (top-1, top-5, per class), how many images, and provenance (package version,
device, precision, seconds, UTC time). Table ``predictions`` holds, for runs made with
``--save-predictions``, each image's top-5 class indices. Every write replaces the rows of its
keys inside one transaction, so a sweep killed at any point (even ``kill -9``) leaves either
all rows of a (model, dataset) pass or none, and writing the same result twice changes nothing.

Connections are short-lived (open, read or write, close), so the leaderboard can read the file
while a sweep is writing it; a connection that meets DuckDB's file lock waits and retries.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from ..models.registry import list_models
from ..resolution import HR, parse_resolution

SCHEMA_VERSION = "1"
KEY_COLUMNS = ("model", "pretrained", "dataset", "resolution", "lr_tokens")
NO_LR_TOKENS = ""  # lr_tokens of a run without LR tokens
TOP_K = 5
LOCK_TIMEOUT_S = 60.0

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    model VARCHAR NOT NULL, pretrained VARCHAR NOT NULL, dataset VARCHAR NOT NULL,
    resolution VARCHAR NOT NULL, lr_tokens VARCHAR NOT NULL,
    n_images BIGINT NOT NULL, n_classes INTEGER NOT NULL,
    top1 DOUBLE NOT NULL, top5 DOUBLE NOT NULL, mean_per_class_top1 DOUBLE, per_class_top1 DOUBLE[] NOT NULL,
    weights_id VARCHAR NOT NULL, package_version VARCHAR NOT NULL, device VARCHAR NOT NULL,
    precision VARCHAR NOT NULL, seconds DOUBLE NOT NULL, created_at TIMESTAMP NOT NULL,
    has_predictions BOOLEAN NOT NULL,
    PRIMARY KEY (model, pretrained, dataset, resolution, lr_tokens)
);
CREATE TABLE IF NOT EXISTS predictions (
    model VARCHAR NOT NULL, pretrained VARCHAR NOT NULL, dataset VARCHAR NOT NULL,
    resolution VARCHAR NOT NULL, lr_tokens VARCHAR NOT NULL,
    image BIGINT NOT NULL, target INTEGER NOT NULL,
    {", ".join(f"pred{k} INTEGER" for k in range(1, TOP_K + 1))}
);
"""
RUN_COLUMNS = (*KEY_COLUMNS, "n_images", "n_classes", "top1", "top5", "mean_per_class_top1", "per_class_top1",
               "weights_id", "package_version", "device", "precision", "seconds", "created_at", "has_predictions")
PREDICTION_COLUMNS = (*KEY_COLUMNS, "image", "target", *(f"pred{k}" for k in range(1, TOP_K + 1)))
ENGINE_COLUMNS = ("model", "dataset", "resolution", "top1", "n_classes", "top5", "mean_per_class_top1", "n_images",
                  "pretrained", "lr_tokens", "family", "params")


class ResultsDbError(ValueError):
    """A results database that cannot be opened, is locked for too long, or is not one of ours."""


@contextmanager
def connect(path: str | os.PathLike, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the database at ``path`` (created with its tables unless ``read_only``), closed on exit."""
    path = Path(path)
    if read_only and not path.is_file():
        raise ResultsDbError(f"results database {path} does not exist (`lr0fm bench --db {path}` creates it)")
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    connection = _open(path, read_only)
    try:
        _check_schema(connection, path, read_only)
        yield connection
    finally:
        connection.close()


def _open(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + LOCK_TIMEOUT_S
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise ResultsDbError(f"cannot open results database {path}: {exc}") from None
            if time.monotonic() > deadline:
                raise ResultsDbError(f"results database {path} stayed locked by another process for "
                                     f"{LOCK_TIMEOUT_S:.0f} s: {exc}") from None
            time.sleep(0.05)
        except duckdb.Error as exc:
            raise ResultsDbError(f"{path} is not a DuckDB results database: {exc}") from None


def _check_schema(connection: duckdb.DuckDBPyConnection, path: Path, read_only: bool) -> None:
    tables = {row[0] for row in connection.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if not read_only and not tables:
        connection.execute(_SCHEMA)
        connection.execute("INSERT INTO meta VALUES ('schema_version', ?)", [SCHEMA_VERSION])
        return
    if not {"meta", "runs", "predictions"} <= tables:
        raise ResultsDbError(f"{path} is a DuckDB file but not an lr0fm results database (tables: {sorted(tables)})")
    found = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
    version = found[0][0] if found else None
    if version != SCHEMA_VERSION:
        raise ResultsDbError(f"{path} has results schema version {version!r}; this lr0fm reads version {SCHEMA_VERSION}")


def write_runs(path: str | os.PathLike, runs: pd.DataFrame, predictions: pd.DataFrame | None = None) -> None:
    """Replace the rows of the keys in ``runs`` (and their predictions) in one transaction.

    ``runs`` has the columns :data:`RUN_COLUMNS`; ``predictions`` (optional) the columns
    :data:`PREDICTION_COLUMNS`, for keys of ``runs`` only. Stale predictions of a key are always removed.
    """
    _require(runs, RUN_COLUMNS, "runs")
    if predictions is not None:
        _require(predictions, PREDICTION_COLUMNS, "predictions")
    keys = runs[list(KEY_COLUMNS)].drop_duplicates()
    if len(keys) != len(runs):
        raise ValueError("runs holds the same (model, pretrained, dataset, resolution, lr_tokens) more than once")
    with connect(path) as connection:
        connection.register("new_keys", keys)
        connection.register("new_runs", runs[list(RUN_COLUMNS)])
        if predictions is not None:
            connection.register("new_predictions", predictions[list(PREDICTION_COLUMNS)])
        connection.begin()
        try:
            key_match = " AND ".join(f"t.{c} = k.{c}" for c in KEY_COLUMNS)
            for table in ("runs", "predictions"):
                connection.execute(f"DELETE FROM {table} t WHERE EXISTS (SELECT 1 FROM new_keys k WHERE {key_match})")
            connection.execute(f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) SELECT * FROM new_runs")
            if predictions is not None:
                connection.execute(f"INSERT INTO predictions ({', '.join(PREDICTION_COLUMNS)}) "
                                   f"SELECT * FROM new_predictions")
            connection.commit()
        except BaseException:
            connection.rollback()
            raise


def _require(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} is missing column(s) {missing}")


def read_runs(path: str | os.PathLike) -> pd.DataFrame:
    """The ``runs`` table as stored (``resolution`` as text; ``per_class_top1`` as lists, None for
    classes without images)."""
    with connect(path, read_only=True) as connection:
        runs = connection.execute(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs ORDER BY ALL").df()
    runs["per_class_top1"] = [np.ma.asarray(values).tolist() for values in runs["per_class_top1"]]
    return runs


def completed_runs(path: str | os.PathLike) -> pd.DataFrame:
    """Key, ``n_images`` and ``has_predictions`` of every stored run; empty when the file does not exist yet."""
    columns = [*KEY_COLUMNS, "n_images", "has_predictions"]
    if not Path(path).is_file():
        return pd.DataFrame(columns=columns)
    with connect(path, read_only=True) as connection:
        return connection.execute(f"SELECT {', '.join(columns)} FROM runs").df()


def read_predictions(path: str | os.PathLike) -> pd.DataFrame:
    """Per-image predictions with ``model`` as in :func:`read_results_db`: columns ``model, dataset,
    resolution, image, target, pred1 .. pred5`` (``resolution`` an int or ``"hr"``)."""
    with connect(path, read_only=True) as connection:
        frame = connection.execute(f"SELECT {', '.join(PREDICTION_COLUMNS)} FROM predictions").df()
    if frame.empty:
        raise ResultsDbError(f"{path} holds no per-image predictions: run `lr0fm bench` with --save-predictions")
    frame["model"] = _display_names(frame)
    frame["resolution"] = _resolutions(frame["resolution"])
    return frame.drop(columns=["pretrained", "lr_tokens"]).reset_index(drop=True)


def read_top1_correct(path: str | os.PathLike) -> pd.DataFrame:
    """Per stored image prediction: ``model, dataset, resolution, image, correct`` (top-1 right),
    the input of ``metrics.hr_correct.hr_correct_robustness``."""
    with connect(path, read_only=True) as connection:
        frame = connection.execute(
            "SELECT model, pretrained, lr_tokens, dataset, resolution, image, pred1 = target AS correct "
            "FROM predictions").df()
    if frame.empty:
        raise ResultsDbError(f"{path} holds no per-image predictions: run `lr0fm bench` with --save-predictions")
    frame["model"] = _display_names(frame)
    frame["resolution"] = _resolutions(frame["resolution"])
    return frame[["model", "dataset", "resolution", "image", "correct"]]


def display_model_name(model: str, pretrained: str, lr_tokens: str) -> str:
    """The ``model`` of the per-dataset table: the stored model, with ``:tag`` unless it is the
    registry key of exactly these weights, and ``+lr-tokens:<file stem>`` for LR-TK0 runs."""
    spec = next((s for s in list_models() if s.key == model), None)
    name = model if spec is not None and spec.pretrained_tag == pretrained else f"{model}:{pretrained}"
    return name if lr_tokens == NO_LR_TOKENS else f"{name}+lr-tokens:{Path(lr_tokens).stem}"


def _display_names(frame: pd.DataFrame) -> pd.Series:
    keys = frame[["model", "pretrained", "lr_tokens"]].drop_duplicates()
    names = {tuple(k): display_model_name(*k) for k in keys.itertuples(index=False)}
    if len(set(names.values())) < len(names):  # two token files with one stem: show their paths
        names = {k: v if k[2] == NO_LR_TOKENS else f"{v.rsplit(':', 1)[0]}:{k[2]}" for k, v in names.items()}
    return pd.Series([names[k] for k in zip(frame["model"], frame["pretrained"], frame["lr_tokens"])],
                     index=frame.index, dtype=object)


def _resolutions(values: pd.Series) -> pd.Series:
    return pd.Series([parse_resolution(v) for v in values], index=values.index, dtype=object)


def _resolution_order(resolution) -> float:
    return np.inf if resolution == HR else float(resolution)


def read_results_db(path: str | os.PathLike) -> pd.DataFrame:
    """The database as the engine's per-dataset results table (what ``lr0fm metrics`` and the
    leaderboard read): ``model, dataset, resolution, top1, n_classes`` plus ``top5,
    mean_per_class_top1, n_images, pretrained, lr_tokens, family, params`` (registry facts where
    the model is a registry key, else missing). Not validated: pass it to
    ``metrics.validate_results_table`` (a sweep without ``hr`` has no robustness to compute)."""
    runs = read_runs(path)
    table = pd.DataFrame({
        "model": _display_names(runs), "dataset": runs["dataset"], "resolution": _resolutions(runs["resolution"]),
        "top1": runs["top1"], "n_classes": runs["n_classes"], "top5": runs["top5"],
        "mean_per_class_top1": runs["mean_per_class_top1"], "n_images": runs["n_images"],
        "pretrained": runs["pretrained"], "lr_tokens": runs["lr_tokens"],
    })
    facts = {s.key: (s.family, s.params_m) for s in list_models()}
    table["family"] = [facts.get(m, (None, None))[0] for m in runs["model"]]
    table["params"] = pd.Series([facts.get(m, (None, np.nan))[1] for m in runs["model"]], dtype=float)
    order = table["resolution"].map(_resolution_order)
    return (table.assign(_order=order).sort_values(["model", "dataset", "_order"], kind="stable")
            .drop(columns="_order").reset_index(drop=True)[list(ENGINE_COLUMNS)])


def read_results_database(path: str | os.PathLike) -> pd.DataFrame:
    """:func:`read_results_db`, validated (``metrics.validate_results_table``): what ``lr0fm metrics
    --db`` and the leaderboard rank, also while a sweep is still writing it; errors name the file."""
    from ..metrics import ResultsTableError, validate_results_table  # the metrics stack only when ranking

    table = read_results_db(path)
    if table.empty:
        raise ResultsTableError(f"results database {path} holds no results yet")
    try:
        return validate_results_table(table)
    except ResultsTableError as err:
        raise ResultsTableError(f"results database {path}: {err}") from err


def export_results(path: str | os.PathLike, out: str | os.PathLike) -> pd.DataFrame:
    """Write :func:`read_results_db` as CSV to ``out`` and return it."""
    table = read_results_db(path)
    if table.empty:
        raise ResultsDbError(f"{path} holds no results yet")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    return table

