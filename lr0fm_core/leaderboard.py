"""Leaderboard logic of the app (torch-free): per-dataset results tables (CSV files, or
``lr0fm bench`` DuckDB databases read directly) from ``precomputed/runs/``, a path or an
upload, model rankings by SAR / WAR / ACC (Sec. 3) with each
model's rank change against the SAR ranking, and WAR weight presets (uniform, Table 11,
optimized for Eq. 2).

Results tables follow the metrics engine's schema (``lr0fm_core.metrics.table``):
``model, dataset, resolution, top1, n_classes`` plus the optional columns of
``OPTIONAL_COLUMNS``. Scores in rankings are percentages, as the paper prints them.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from . import config
from .bench import read_results_database
from .metrics import (
    DEFAULT_ALPHA,
    HR,
    PAPER_WAR16_WEIGHTS,
    ResultsTableError,
    Summary,
    WeightsError,
    accuracy_gap,
    model_ranks,
    read_results_table,
    summarize,
    validate_results_table,
)
from .models.registry import RANDOM_INIT, UNTRAINED_WARNING, list_models

ENV_RUNS_DIR = "LR0FM_RUNS_DIR"  # folder of results files: CSV tables, `lr0fm bench` databases
DEFAULT_RUNS_DIR = Path(__file__).resolve().parents[1] / "precomputed" / "runs"
RANK_METRICS = ("WAR", "SAR", "ACC")
OPTIONAL_COLUMNS = {
    "family": "model family, e.g. CLIP or EVA-CLIP (else looked up in the model registry)",
    "params": "number of parameters in millions (else the registry's params_m)",
}
UNKNOWN_FAMILY = "other"

# Weight presets of the editor. "paper" = Table 11 (WAR-16); a dataset Table 11 does not
# cover gets PAPER_FALLBACK_WEIGHT, the uniform preset's weight.
WEIGHT_PRESET_LABELS = {
    "uniform": "uniform (SAR-style, every dataset 1)",
    "paper": "paper (Table 11, WAR-16)",
    "optimized": "optimized for Eq. 2 on this table",
}
PAPER_FALLBACK_WEIGHT = 1.0


def runs_dir() -> Path:
    """Folder of results files: ``$LR0FM_RUNS_DIR`` or ``precomputed/runs``."""
    return Path(os.environ.get(ENV_RUNS_DIR) or DEFAULT_RUNS_DIR)


# Readers of results files by suffix: each returns a validated per-dataset results table.
RESULTS_READERS = {".csv": read_results_table, ".duckdb": read_results_database}


def list_runs(directory: str | os.PathLike | None = None) -> list[Path]:
    """Every results file (a suffix of ``RESULTS_READERS``) under ``directory`` (default
    ``runs_dir()``), sorted; [] when absent."""
    directory = runs_dir() if directory is None else Path(directory)
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.rglob("*") if p.suffix.lower() in RESULTS_READERS and p.is_file())


def read_results_file(path: str | os.PathLike) -> pd.DataFrame:
    """The validated per-dataset results table of a CSV or a ``lr0fm bench`` database."""
    path = Path(path).expanduser()
    reader = RESULTS_READERS.get(path.suffix.lower())
    if reader is None:
        raise ResultsTableError(f"{path} is not a results file: give a .csv table or a .duckdb database "
                                "written by `lr0fm bench`")
    if not path.is_file():
        raise ResultsTableError(f"results file {path} does not exist")
    return reader(path)


def read_uploaded_table(data: bytes, name: str) -> pd.DataFrame:
    """Parse and validate an uploaded results CSV or ``lr0fm bench`` database (by the suffix of
    ``name``). Errors (ResultsTableError) name the file and, for a CSV, its offending rows
    (row 1 = the first data row under the header)."""
    if Path(name).suffix.lower() == ".duckdb":
        return _read_uploaded_database(data, name)
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype={"model": str, "dataset": str, "resolution": str})
    except pd.errors.EmptyDataError as err:
        raise ResultsTableError(f"uploaded file {name!r} is empty") from err
    except (UnicodeDecodeError, pd.errors.ParserError) as err:
        raise ResultsTableError(f"uploaded file {name!r} is not a readable CSV: {err}") from err
    try:
        return validate_results_table(frame)
    except ResultsTableError as err:
        raise ResultsTableError(
            f"uploaded file {name!r}: {err} (row 1 is the first data row under the header)"
        ) from err


def _read_uploaded_database(data: bytes, name: str) -> pd.DataFrame:
    """DuckDB opens files only: the upload is read from a temporary copy in the cache folder."""
    cache = config.cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix="upload-") as folder:
        copy = Path(folder) / "results.duckdb"
        copy.write_bytes(data)
        try:
            return read_results_database(copy)
        except ValueError as err:
            raise ResultsTableError(f"uploaded file {name!r}: {str(err).replace(str(copy), name)}") from err


def low_resolutions(table: pd.DataFrame) -> list[int]:
    """The low resolutions n of a validated table, ascending; raises when it has none."""
    found = sorted(r for r in pd.unique(table["resolution"]) if r != HR)
    if not found:
        raise ResultsTableError("the results table has only 'hr' rows: add rows at low resolutions (16, 32, ...)")
    return found


def datasets_at(table: pd.DataFrame, resolution) -> list[str]:
    """The datasets with rows at ``resolution``, in order of first appearance."""
    return list(pd.unique(table.loc[table["resolution"].eq(resolution), "dataset"]))


@lru_cache(maxsize=1)
def _registry_facts() -> dict[str, tuple[str, float]]:
    """Registry (family, params_m) by lower-case key and display name."""
    facts = {}
    for spec in list_models():
        facts[spec.key.lower()] = facts[spec.display_name.lower()] = (spec.family, spec.params_m)
    return facts


def model_facts(table: pd.DataFrame) -> pd.DataFrame:
    """One row per model: ``model, family, params_m``. Taken from the table's ``family`` /
    ``params`` columns where given, else from the registry when the model name is a
    registry key or display name; family ``UNKNOWN_FAMILY`` and params NaN otherwise."""
    models = pd.Series(pd.unique(table["model"]), name="model")
    registry = _registry_facts()
    known = [registry.get(m.lower(), (None, np.nan)) for m in models]
    family = pd.Series([f for f, _ in known], dtype=object)
    params = pd.Series([p for _, p in known], dtype=float)
    if "family" in table.columns:
        given = table.dropna(subset=["family"]).groupby("model", sort=False)["family"].first().astype(str)
        family = models.map(given).astype(object).fillna(family)  # all-NaN map is float64
    if "params" in table.columns:
        given = pd.to_numeric(table["params"], errors="coerce").groupby(table["model"], sort=False).first()
        params = models.map(given).astype(float).fillna(params)
    return pd.DataFrame({"model": models, "family": family.fillna(UNKNOWN_FAMILY), "params_m": params})


def untrained_models(table: pd.DataFrame) -> list[str]:
    """The models whose results come from random-init weights: ``pretrained`` is ``none``, as
    ``lr0fm bench`` stores ``M:none`` runs ([] for a table without a ``pretrained`` column)."""
    if "pretrained" not in table.columns:
        return []
    random_init = table["pretrained"].astype(str).str.strip().str.lower().eq(RANDOM_INIT)
    return list(pd.unique(table.loc[random_init, "model"]))


def untrained_warning(models: Sequence[str]) -> str:
    """What to tell the user about ``untrained_models``."""
    verb = "is" if len(models) == 1 else "are"
    return (f"{', '.join(models)} {verb} {UNTRAINED_WARNING}. Their accuracies measure an untrained network, "
            "not the model; the ranking is shown for checking the pipeline only.")


def rank_change_label(change: int) -> str:
    """``▲ n`` (n places above its SAR rank), ``▼ n`` (below), ``=`` (same place)."""
    return f"▲ {change}" if change > 0 else f"▼ {-change}" if change < 0 else "="


@dataclass(frozen=True)
class Leaderboard:
    """``ranking``: rank (by ``metric``), change_vs_sar (SAR rank − rank: > 0 climbed),
    trend (▲/▼ label), model, family, params_m, SAR, WAR, ACC (percent), rank_sar; best
    first. ``summary``: the engine's summary it was computed from."""

    metric: str
    ranking: pd.DataFrame
    summary: Summary


def rank_models(table: pd.DataFrame, resolution, alpha: float = DEFAULT_ALPHA,
                weights: str | Mapping[str, float] | None = None, metric: str = "WAR") -> Leaderboard:
    """Rank models by SAR-n, WAR-n (with ``weights``) or ACC-n (Sec. 3) at one resolution;
    rank 1 = best, ties share the best rank; each model's move against its SAR rank."""
    if metric not in RANK_METRICS:
        raise ValueError(f"unknown ranking metric {metric!r}; choose one of {', '.join(RANK_METRICS)}")
    summary = summarize(table, resolution, alpha, weights)
    scores = summary.models
    rank = model_ranks(scores[metric].to_numpy())
    change = scores["rank_sar"].to_numpy() - rank
    facts = model_facts(table).set_index("model").reindex(scores["model"])
    ranking = pd.DataFrame({
        "rank": rank, "change_vs_sar": change, "trend": [rank_change_label(c) for c in change],
        "model": scores["model"], "family": facts["family"].to_numpy(), "params_m": facts["params_m"].to_numpy(),
        "SAR": scores["SAR"] * 100, "WAR": scores["WAR"] * 100, "ACC": scores["ACC"] * 100,
        "rank_sar": scores["rank_sar"],
    }).sort_values("rank", kind="stable", ignore_index=True)
    return Leaderboard(metric, ranking, summary)


@dataclass(frozen=True)
class WeightsPreset:
    """``frame``: dataset, weight, source (where each weight comes from) for the editor;
    ``note``: what the user should know about the preset on this table, or None."""

    frame: pd.DataFrame
    note: str | None


def preset_weights(preset: str, datasets: Sequence[str],
                   optimized: Mapping[str, float] | None = None) -> WeightsPreset:
    """Editor rows for a preset of ``WEIGHT_PRESET_LABELS``. ``paper``: Table 11's weight
    where it has one, ``PAPER_FALLBACK_WEIGHT`` elsewhere (named in the note).
    ``optimized``: the weights of ``optimize_weights``; uniform (with a note) until given."""
    datasets = list(datasets)
    if preset == "uniform" or (preset == "optimized" and optimized is None):
        note = None if preset == "uniform" else "Not optimized yet: uniform weights until you run the optimizer."
        return WeightsPreset(_weights_frame(datasets, [1.0] * len(datasets), "uniform"), note)
    if preset == "paper":
        absent = [d for d in datasets if d not in PAPER_WAR16_WEIGHTS]
        weights = [PAPER_WAR16_WEIGHTS.get(d, PAPER_FALLBACK_WEIGHT) for d in datasets]
        sources = ["not in Table 11: uniform weight" if d in absent else "Table 11" for d in datasets]
        note = None if not absent else (
            f"Table 11 has no weight for {', '.join(absent)}: "
            f"{'it gets' if len(absent) == 1 else 'they get'} {PAPER_FALLBACK_WEIGHT:g} (the uniform weight); "
            "edit it in the table below.")
        return WeightsPreset(pd.DataFrame({"dataset": datasets, "weight": weights, "source": sources}), note)
    if preset == "optimized":
        missing = [d for d in datasets if d not in optimized]
        if missing:
            raise WeightsError(f"the optimized weights have no weight for dataset(s) {missing}; run the optimizer again")
        return WeightsPreset(_weights_frame(datasets, [optimized[d] for d in datasets], "optimized (Eq. 2)"), None)
    raise WeightsError(f"unknown weights preset {preset!r}; choose one of {', '.join(WEIGHT_PRESET_LABELS)}")


def _weights_frame(datasets: list[str], weights: list[float], source: str) -> pd.DataFrame:
    return pd.DataFrame({"dataset": datasets, "weight": weights, "source": source})


def weights_from_editor(frame: pd.DataFrame) -> dict[str, float]:
    """{dataset: weight} from the edited rows (checked by the engine when used)."""
    return dict(zip(frame["dataset"].astype(str), frame["weight"].astype(float)))


def accuracy_by_resolution(table: pd.DataFrame, dataset: str | None = None) -> pd.DataFrame:
    """Top-1 of each model at each resolution, averaged over all datasets or on one
    ``dataset``: columns ``model, family, resolution, ACC`` (percent; Fig. 1).
    ``resolution`` is categorical, ordered from the lowest n up to ``HR``."""
    if dataset is not None:
        if dataset not in set(table["dataset"]):
            raise ResultsTableError(f"dataset {dataset!r} is not in the results table")
        table = table[table["dataset"].eq(dataset)]
    order = [*low_resolutions(table), HR]
    means = table.groupby(["model", "resolution"], sort=False)["top1"].mean().mul(100).rename("ACC").reset_index()
    labels = [str(r) for r in order]
    means["resolution"] = pd.Categorical(means["resolution"].map(str), categories=labels, ordered=True)
    facts = model_facts(table).set_index("model")["family"]
    means.insert(1, "family", means["model"].map(facts))
    return means.sort_values(["model", "resolution"], kind="stable", ignore_index=True)


def gamma_points(per_dataset: pd.DataFrame) -> pd.DataFrame:
    """Per (model, dataset): γ, Γ and the accuracy gap E (Eq. 1), from the output of
    ``per_dataset_robustness`` (or ``Summary.per_dataset``), for Fig. 4 left."""
    cells = per_dataset
    return pd.DataFrame({
        "model": cells["model"], "dataset": cells["dataset"], "gamma": cells["gamma"],
        "Gamma": cells["Gamma"], "gap": accuracy_gap(cells["acc_hr"].to_numpy(), cells["n_classes"].to_numpy()),
    })


def ranking_csv(board: Leaderboard) -> str:
    """The ranking as CSV text (SAR, WAR, ACC in percent)."""
    return board.ranking.to_csv(index=False, float_format="%.4f")


def weights_json(board: Leaderboard) -> str:
    """The WAR weights used, as JSON ``{dataset: weight}`` (readable by ``load_weights``
    and ``lr0fm metrics --weights``)."""
    return json.dumps(board.summary.weights, indent=1)
