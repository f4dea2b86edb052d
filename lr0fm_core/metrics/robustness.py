"""Per-dataset robustness scores of the paper (Sec. 3, Eq. 1; appendix C, Table 9).

All accuracies are fractions in [0, 1]. The functions broadcast over numpy arrays.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .table import HR, ResultsTableError, pair_codes, parse_resolution, validate_results_table

DEFAULT_ALPHA = 200.0


def relative_robustness(acc_hr, acc_n):
    """γ_n = 1 − (A_HR − A_n) / A_HR = A_n / A_HR (Sec. 3). Not clipped: A_n > A_HR gives
    γ > 1, as in Table 9. A_HR == 0 gives γ = 0 (nothing was classified correctly at HR,
    so there is no robustness to credit)."""
    acc_hr, acc_n = np.broadcast_arrays(np.asarray(acc_hr, float), np.asarray(acc_n, float))
    return np.divide(acc_n, acc_hr, out=np.zeros(acc_hr.shape), where=acc_hr != 0)


def accuracy_gap(acc_hr, n_classes):
    """E = max(0, A_HR − A_rand) with A_rand = 1 / C (Sec. 3, Eq. 1)."""
    return np.maximum(0.0, np.asarray(acc_hr, float) - 1.0 / np.asarray(n_classes, float))


def improved_robustness(gamma, gap, alpha: float = DEFAULT_ALPHA):
    """Γ = γ · (1 − exp(−α E²)) (Eq. 1): γ zeroed out near random-guess accuracy."""
    gap = np.asarray(gap, float)
    return np.asarray(gamma, float) * -np.expm1(-alpha * gap**2)


def _per_dataset(table: pd.DataFrame, resolution, alpha: float) -> pd.DataFrame:
    """``per_dataset_robustness`` on an already validated table."""
    resolution = parse_resolution(resolution)
    rows = np.flatnonzero(table["resolution"].eq(resolution).to_numpy(bool))
    if len(rows) == 0:
        low_res = sorted(r for r in set(table["resolution"]) if r != HR)
        raise ResultsTableError(f"no rows at resolution {resolution!r}; the table has 'hr' and {low_res}")
    pair = pair_codes(table)
    hr_row = np.empty(pair.max() + 1, int)
    hr = table["resolution"].eq(HR).to_numpy(bool)
    hr_row[pair[hr]] = np.flatnonzero(hr)
    hr_rows = hr_row[pair[rows]]
    top1, n_classes = table["top1"].to_numpy(), table["n_classes"].to_numpy()
    acc, acc_hr, n_classes = top1[rows], top1[hr_rows], n_classes[hr_rows]
    gamma = relative_robustness(acc_hr, acc)
    return pd.DataFrame({
        "model": table["model"].to_numpy()[rows], "dataset": table["dataset"].to_numpy()[rows],
        "acc": acc, "acc_hr": acc_hr, "n_classes": n_classes, "gamma": gamma,
        "Gamma": improved_robustness(gamma, accuracy_gap(acc_hr, n_classes), alpha),
    })


def per_dataset_robustness(table: pd.DataFrame, resolution, alpha: float = DEFAULT_ALPHA) -> pd.DataFrame:
    """γ and Γ (Eq. 1) of every (model, dataset) at one resolution, as columns
    ``model, dataset, acc, acc_hr, n_classes, gamma, Gamma``. ``resolution="hr"`` gives
    γ = 1 and Γ = 1 − exp(−α E²) (γ = Γ = 0 where A_HR = 0)."""
    return _per_dataset(validate_results_table(table), resolution, alpha)
