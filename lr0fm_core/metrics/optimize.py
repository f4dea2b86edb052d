"""Optimizing the WAR dataset weights for Eq. 2 (Sec. 3; result for n = 16 in Table 11).

The objective Σ_d c_d · Spearman(WAR ranking, ranking by Γ_d) is piecewise constant in
the weights, so a seeded, gradient-free global search (differential evolution, no
polishing) is used; the paper used Ax. Uniform weights and, when they cover the table,
the paper's Table 11 weights seed the population and the best of all candidates is
returned, so the result never scores below either.

Objective datasets absent from the table are dropped (listed in ``dropped``); if none
remain, every dataset of the table gets coefficient 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import differential_evolution

from .aggregate import robustness_grid, spearman_per_dataset
from .robustness import DEFAULT_ALPHA, _per_dataset
from .table import parse_resolution, validate_results_table
from .weights import PAPER_WAR16_WEIGHTS, WeightsError

# Eq. 2: 0.95 (SC(ImageNet) + SC(ImageNet-V2) + SC(DTD)) + SC(ImageNet-A) + SC(EuroSAT).
PAPER_OBJECTIVE: dict[str, float] = {
    "imagenet": 0.95, "imagenet_v2": 0.95, "dtd": 0.95, "imagenet_a": 1.0, "eurosat": 1.0,
}


@dataclass(frozen=True)
class WeightOptimization:
    """``weights``: optimized {dataset: w}. ``objective``: Eq. 2 value at those weights
    (``objective_uniform`` / ``objective_paper`` for comparison; the latter None when the
    paper's weights do not cover the table). ``spearman``: per dataset its coefficient,
    weight, and Spearman at uniform and optimized weights. ``coefficients``: the Eq. 2
    coefficients used; ``dropped``: objective datasets absent from the table."""

    weights: dict[str, float]
    objective: float
    objective_uniform: float
    objective_paper: float | None
    spearman: pd.DataFrame
    coefficients: dict[str, float]
    dropped: list[str]


def optimize_weights(table: pd.DataFrame, resolution, alpha: float = DEFAULT_ALPHA,
                     objective: Mapping[str, float] = PAPER_OBJECTIVE,
                     bounds: tuple[float, float] = (0.01, 1.0), seed: int = 0,
                     maxiter: int = 300, popsize: int = 15) -> WeightOptimization:
    """Weights in ``bounds`` maximizing Σ_d c_d · Spearman(WAR-n ranking, Γ_d ranking)
    (Eq. 2), deterministic for a given ``seed``; ``maxiter`` generations of ``popsize`` ×
    n_datasets candidates."""
    low, high = map(float, bounds)
    if not 0 <= low <= high or high == 0:
        raise WeightsError(f"weight bounds must satisfy 0 <= low <= high, high > 0; got {bounds}")
    grid = robustness_grid(_per_dataset(validate_results_table(table), parse_resolution(resolution), alpha))
    if len(grid.models) < 2:
        raise WeightsError(f"optimizing weights needs at least 2 models, the table has {grid.models}")
    dropped = [d for d in objective if d not in grid.datasets]
    coefficients = {d: float(objective[d]) for d in grid.datasets if d in objective}
    if not coefficients:
        coefficients = dict.fromkeys(grid.datasets, 1.0)
    coef = np.array([coefficients.get(d, 0.0) for d in grid.datasets])

    def scores(candidates: np.ndarray) -> np.ndarray:
        """Eq. 2 for weight vectors (candidates, datasets); an undefined Spearman counts 0.
        WAR's normalizer Σ|w| does not change the ranking and is left out."""
        correlations = spearman_per_dataset(grid.Gamma @ candidates.T, grid.Gamma)
        return np.nan_to_num(correlations) @ coef

    n_datasets = len(grid.datasets)
    candidates = [np.full(n_datasets, high)]
    if all(d in PAPER_WAR16_WEIGHTS for d in grid.datasets):
        candidates.append(np.clip([PAPER_WAR16_WEIGHTS[d] for d in grid.datasets], low, high))
    rng = np.random.default_rng(seed)
    population_size = max(popsize * n_datasets, 5)
    random_part = rng.uniform(low, high, (population_size - len(candidates), n_datasets))
    init = np.vstack([candidates, random_part])
    result = differential_evolution(
        lambda w: -scores(np.atleast_2d(w.T)), [(low, high)] * n_datasets, init=init,
        maxiter=maxiter, seed=seed, polish=False, vectorized=True, updating="deferred",
        tol=0.0,  # plateaus make the population spread a poor stopping signal: use all of maxiter
    )
    finalists = np.vstack([result.x, candidates])
    finalist_scores = scores(finalists)
    best = finalists[int(np.argmax(finalist_scores))]
    uniform_corr = spearman_per_dataset(grid.Gamma.mean(axis=1), grid.Gamma)
    best_corr = spearman_per_dataset(grid.Gamma @ best, grid.Gamma)
    spearman = pd.DataFrame({
        "dataset": grid.datasets, "coefficient": coef, "weight": best,
        "spearman_uniform": uniform_corr, "spearman_optimized": best_corr,
    })
    return WeightOptimization(
        weights=dict(zip(grid.datasets, best.tolist())),
        objective=float(finalist_scores.max()),
        objective_uniform=float(finalist_scores[1]),
        objective_paper=float(finalist_scores[2]) if len(candidates) == 2 else None,
        spearman=spearman, coefficients=coefficients, dropped=dropped,
    )
