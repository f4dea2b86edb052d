"""The JSON-ready metrics report printed by the CLI: SAR / WAR / ACC in percent as the
paper prints them (Tables 10, 11), Spearman coefficients as plain numbers."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from .aggregate import summarize
from .robustness import DEFAULT_ALPHA


def _json_value(value):
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _records(frame: pd.DataFrame, percent: tuple[str, ...]) -> list[dict]:
    """Rows as dicts of plain Python values; ``percent`` columns × 100; NaN -> None."""
    columns = {c: (frame[c] * 100 if c in percent else frame[c]).to_numpy().tolist() for c in frame.columns}
    return [{c: _json_value(v) for c, v in zip(columns, row)} for row in zip(*columns.values())]


def metrics_report(table: pd.DataFrame, resolution, alpha: float = DEFAULT_ALPHA,
                   weights: str | Mapping[str, float] | None = None, per_dataset: bool = False) -> dict:
    """``{"resolution", "alpha", "models": [{model, SAR, WAR, ACC, rank_war}] (best WAR
    first), "datasets": [{dataset, weight, spearman_sar, spearman_war}]}`` plus, with
    ``per_dataset``, ``"per_dataset": [{model, dataset, acc, gamma, Gamma}]`` (percent,
    models in the same order)."""
    summary = summarize(table, resolution, alpha, weights)
    report = {
        "resolution": summary.resolution,
        "alpha": summary.alpha,
        "models": _records(summary.models[["model", "SAR", "WAR", "ACC", "rank_war"]], ("SAR", "WAR", "ACC")),
        "datasets": _records(summary.datasets, ()),
    }
    if per_dataset:
        rank_order = {model: i for i, model in enumerate(summary.models["model"])}
        cells = summary.per_dataset.sort_values("model", key=lambda m: m.map(rank_order), kind="stable")
        columns = ["model", "dataset", "acc", "gamma", "Gamma"]
        report["per_dataset"] = _records(cells[columns], ("acc", "gamma", "Gamma"))
    return report
