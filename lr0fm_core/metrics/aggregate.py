"""Across-dataset aggregates of Sec. 3: ACC-n, SAR-n, WAR-n, model ranks, and the
Spearman correlation of each aggregate's model ranking with each dataset's ranking
(Fig. 4 mid, Fig. 5 left, Table 11).

Models must be evaluated on every dataset present at the chosen resolution (the paper's
grid is complete): averaging over different dataset subsets would make models
incomparable, so a missing (model, dataset) cell raises ResultsTableError naming it. A
model with no row at all at that resolution is simply not part of its summary.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from .robustness import DEFAULT_ALPHA, _per_dataset
from .table import MAX_LISTED_ROWS, ResultsTableError, parse_resolution, validate_results_table
from .weights import load_weights


@dataclass(frozen=True)
class RobustnessGrid:
    """Per-dataset scores at one resolution as (models × datasets) matrices."""

    models: list[str]
    datasets: list[str]
    acc: np.ndarray
    gamma: np.ndarray
    Gamma: np.ndarray


def robustness_grid(per_dataset: pd.DataFrame) -> RobustnessGrid:
    """Pivot ``per_dataset_robustness`` output into matrices (row/column order = first
    appearance); raises ResultsTableError listing missing (model, dataset) cells."""
    model_code, models = pd.factorize(per_dataset["model"], sort=False)
    dataset_code, datasets = pd.factorize(per_dataset["dataset"], sort=False)
    shape = (len(models), len(datasets))
    present = np.zeros(shape, bool)
    present[model_code, dataset_code] = True
    if not present.all():
        missing = [f"({models[m]!r}, {datasets[d]!r})" for m, d in zip(*np.nonzero(~present))]
        more = len(missing) - MAX_LISTED_ROWS
        raise ResultsTableError(
            f"{len(missing)} (model, dataset) cell(s) missing at this resolution: "
            + ", ".join(missing[:MAX_LISTED_ROWS]) + (f" and {more} more" if more > 0 else "")
            + "; every model needs every dataset, so drop those models or datasets from the table"
        )

    def matrix(column: str) -> np.ndarray:
        out = np.empty(shape)
        out[model_code, dataset_code] = per_dataset[column].to_numpy(float)
        return out

    return RobustnessGrid(list(models), list(datasets), matrix("acc"), matrix("gamma"), matrix("Gamma"))


def _standardized_ranks(values: np.ndarray) -> np.ndarray:
    """Column-wise average ranks, centred and scaled to unit norm (NaN for constant columns)."""
    ranks = rankdata(values, axis=0)
    ranks -= ranks.mean(axis=0)
    norm = np.sqrt((ranks**2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 0, ranks / norm, np.nan)


def spearman_per_dataset(scores: np.ndarray, per_dataset: np.ndarray) -> np.ndarray:
    """Spearman correlation between the model ranking by ``scores`` (models,) or
    (models, candidates) and each dataset column of ``per_dataset`` (models, datasets).
    Returns (datasets,) or (candidates, datasets); NaN where a ranking is constant."""
    return _standardized_ranks(scores).T @ _standardized_ranks(per_dataset)


def weighted_aggregated_robustness(Gamma: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """WAR-n = Σ_d |Γ_d · w_d| / Σ_d |w_d| (Sec. 3) for each model row of ``Gamma``."""
    weights = np.asarray(weights, float)
    return np.abs(Gamma * weights).sum(axis=-1) / np.abs(weights).sum()


def model_ranks(scores: np.ndarray) -> np.ndarray:
    """Rank 1 = highest score; ties share the best rank (1, 2, 2, 4)."""
    return rankdata(-np.asarray(scores, float), method="min").astype(int)


@dataclass(frozen=True)
class Summary:
    """``models``: model, ACC, SAR, WAR, rank_war, rank_sar (fractions, sorted by rank_war).
    ``datasets``: dataset, weight, spearman_sar, spearman_war. ``per_dataset``: γ and Γ."""

    resolution: str | int
    alpha: float
    weights: dict[str, float]
    models: pd.DataFrame
    datasets: pd.DataFrame
    per_dataset: pd.DataFrame


def summarize(table: pd.DataFrame, resolution, alpha: float = DEFAULT_ALPHA,
              weights: str | Mapping[str, float] | None = None) -> Summary:
    """ACC-n (mean top-1), SAR-n (mean γ), WAR-n (weighted mean of Γ, Eq. 1) and ranks
    at one resolution. ``weights``: None (uniform), a preset name, a JSON/CSV path or a
    mapping (see ``load_weights``). Spearman columns correlate each dataset's Γ ranking
    with the ranking by mean Γ (spearman_sar) and by WAR (spearman_war), as in Fig. 5 left."""
    resolution = parse_resolution(resolution)
    per_dataset = _per_dataset(validate_results_table(table), resolution, alpha)
    grid = robustness_grid(per_dataset)
    weights = load_weights("uniform" if weights is None else weights, grid.datasets)
    w = np.fromiter(weights.values(), float, len(weights))
    war = weighted_aggregated_robustness(grid.Gamma, w)
    sar = grid.gamma.mean(axis=1)
    models = pd.DataFrame({
        "model": grid.models, "ACC": grid.acc.mean(axis=1), "SAR": sar, "WAR": war,
        "rank_war": model_ranks(war), "rank_sar": model_ranks(sar),
    }).sort_values("rank_war", kind="stable", ignore_index=True)
    datasets = pd.DataFrame({
        "dataset": grid.datasets, "weight": w,
        "spearman_sar": spearman_per_dataset(grid.Gamma.mean(axis=1), grid.Gamma),
        "spearman_war": spearman_per_dataset(war, grid.Gamma),
    })
    return Summary(resolution, float(alpha), weights, models, datasets, per_dataset)
