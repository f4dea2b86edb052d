"""Relative robustness over only the images a model classifies correctly at HR: the paper's
'naive solution' to misleading robustness near random accuracy (Sec. 3, Problem A), which it
set aside because it needs every model's per-image predictions. ``lr0fm bench
--save-predictions`` stores them, so it can be computed next to γ and Γ (Eq. 1).

For a model on a dataset, with H the images classified correctly at HR:
``γ_HRc_n = |{i ∈ H : correct at n}| / |H|``. Plain γ (``A_n / A_HR``) credits images that are
right at n by chance although wrong at HR; γ_HRc does not. Pure pandas / numpy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .table import HR, ResultsTableError, parse_resolution

PREDICTION_COLUMNS = ("model", "dataset", "resolution", "image", "correct")


def hr_correct_robustness(predictions: pd.DataFrame) -> pd.DataFrame:
    """Per (model, dataset, low resolution n): ``acc, acc_hr, gamma`` (A_n / A_HR over all images),
    ``n_hr_correct`` (|H|), ``n_kept`` (of H, correct at n) and ``gamma_hr_correct`` (n_kept / |H|;
    0 when |H| = 0, as γ is 0 when A_HR = 0).

    ``predictions`` has one row per (model, dataset, resolution, image) with a boolean
    ``correct`` (top-1 right). Images without an HR row are left out of both accuracies; a
    (model, dataset) with no HR rows at all raises ResultsTableError.
    """
    missing = [c for c in PREDICTION_COLUMNS if c not in predictions.columns]
    if missing:
        raise ResultsTableError(f"predictions table is missing column(s) {missing}; it needs {list(PREDICTION_COLUMNS)}")
    frame = predictions[list(PREDICTION_COLUMNS)].copy()
    frame["resolution"] = [parse_resolution(r) for r in frame["resolution"]]
    frame["correct"] = frame["correct"].astype(bool)
    if frame.duplicated(["model", "dataset", "resolution", "image"]).any():
        raise ResultsTableError("predictions table has the same (model, dataset, resolution, image) more than once")
    is_hr = frame["resolution"].eq(HR)
    hr = frame.loc[is_hr, ["model", "dataset", "image", "correct"]].rename(columns={"correct": "correct_hr"})
    low = frame.loc[~is_hr]
    pairs_low = set(zip(low["model"], low["dataset"]))
    without_hr = sorted(pairs_low - set(zip(hr["model"], hr["dataset"])))
    if without_hr:
        raise ResultsTableError(f"no HR predictions for (model, dataset) {without_hr}: evaluate 'hr' too")
    joined = low.merge(hr, on=["model", "dataset", "image"], how="inner")
    joined["kept"] = joined["correct"] & joined["correct_hr"]
    grouped = joined.groupby(["model", "dataset", "resolution"], sort=False)
    out = grouped.agg(acc=("correct", "mean"), acc_hr=("correct_hr", "mean"),
                      n_hr_correct=("correct_hr", "sum"), n_kept=("kept", "sum")).reset_index()
    out["gamma"] = np.divide(out["acc"], out["acc_hr"], out=np.zeros(len(out)), where=out["acc_hr"].to_numpy() != 0)
    out["gamma_hr_correct"] = np.divide(out["n_kept"], out["n_hr_correct"], out=np.zeros(len(out)),
                                        where=out["n_hr_correct"].to_numpy() != 0)
    out[["n_hr_correct", "n_kept"]] = out[["n_hr_correct", "n_kept"]].astype(np.int64)
    return out[["model", "dataset", "resolution", "acc", "acc_hr", "gamma", "n_hr_correct", "n_kept",
                "gamma_hr_correct"]]


def hr_correct_summary(per_dataset: pd.DataFrame, resolution) -> pd.DataFrame:
    """Per model at one resolution: the mean over datasets of γ (SAR-n, Sec. 3) and of γ_HRc
    (``SAR_hr_correct``), best SAR_hr_correct first. Input: :func:`hr_correct_robustness`."""
    resolution = parse_resolution(resolution)
    rows = per_dataset[per_dataset["resolution"].eq(resolution)]
    if rows.empty:
        found = sorted({r for r in per_dataset["resolution"]}, key=str)
        raise ResultsTableError(f"no predictions at resolution {resolution!r}; found {found}")
    summary = rows.groupby("model", sort=False).agg(
        SAR=("gamma", "mean"), SAR_hr_correct=("gamma_hr_correct", "mean"), datasets=("dataset", "nunique"))
    return summary.sort_values("SAR_hr_correct", ascending=False, kind="stable").reset_index()
