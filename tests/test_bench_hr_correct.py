"""Robustness over only the images a model gets right at HR (Sec. 3's 'naive solution'), by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from lr0fm_core.metrics import ResultsTableError
from lr0fm_core.metrics.hr_correct import hr_correct_robustness, hr_correct_summary


def predictions(rows):
    return pd.DataFrame(rows, columns=["model", "dataset", "resolution", "image", "correct"])


def cells(model, dataset, resolution, correct):
    return [(model, dataset, resolution, image, c) for image, c in enumerate(correct)]


TABLE = predictions(
    # m on d1: right at HR on images 0, 1; at 16 right on 0 and (by chance) 2: plain γ = 1, γ_HRc = 1/2
    cells("m", "d1", "hr", [True, True, False, False]) + cells("m", "d1", "16", [True, False, True, False])
    # m on d2: right at HR on 0, 1, 2; at 16 on 0, 1: γ = γ_HRc = 2/3
    + cells("m", "d2", "hr", [True, True, True, False]) + cells("m", "d2", "16", [True, True, False, False])
    # near-random model: nothing right at HR, one lucky image at 16: γ = γ_HRc = 0 (A_HR = 0)
    + cells("r", "d1", "hr", [False, False, False, False]) + cells("r", "d1", "16", [False, False, True, False])
    + cells("r", "d2", "hr", [True, False, False, False]) + cells("r", "d2", "16", [False, True, False, False])
)


def test_per_dataset_values_by_hand():
    out = hr_correct_robustness(TABLE).set_index(["model", "dataset"])
    assert out.loc[("m", "d1"), "gamma"] == pytest.approx(1.0)
    assert out.loc[("m", "d1"), "gamma_hr_correct"] == pytest.approx(0.5)
    assert out.loc[("m", "d1"), ["n_hr_correct", "n_kept"]].tolist() == [2, 1]
    assert out.loc[("m", "d2"), "gamma"] == pytest.approx(2 / 3)
    assert out.loc[("m", "d2"), "gamma_hr_correct"] == pytest.approx(2 / 3)
    assert out.loc[("r", "d1"), ["gamma", "gamma_hr_correct"]].tolist() == [0.0, 0.0]
    # r on d2: A_16 = A_HR = 1/4 so plain γ = 1, but the one image right at HR is wrong at 16
    assert out.loc[("r", "d2"), "gamma"] == pytest.approx(1.0)
    assert out.loc[("r", "d2"), "gamma_hr_correct"] == 0.0
    assert set(out["resolution"]) == {16}


def test_summary_averages_over_datasets():
    summary = hr_correct_summary(hr_correct_robustness(TABLE), "16").set_index("model")
    assert summary.loc["m", "SAR"] == pytest.approx((1 + 2 / 3) / 2)
    assert summary.loc["m", "SAR_hr_correct"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert summary.loc["r", "SAR"] == pytest.approx(0.5)
    assert summary.loc["r", "SAR_hr_correct"] == 0.0
    assert summary.index.tolist() == ["m", "r"]  # best SAR_hr_correct first
    with pytest.raises(ResultsTableError, match="no predictions at resolution 32"):
        hr_correct_summary(hr_correct_robustness(TABLE), 32)


def test_images_without_an_hr_prediction_are_left_out():
    table = predictions(cells("m", "d", "hr", [True, False]) + cells("m", "d", "16", [True, True, True]))
    out = hr_correct_robustness(table).iloc[0]
    assert out["acc"] == 1.0 and out["acc_hr"] == 0.5 and out["gamma_hr_correct"] == 1.0


@pytest.mark.parametrize("table, message", [
    (predictions(cells("m", "d", "16", [True])), r"no HR predictions for \(model, dataset\) \[\('m', 'd'\)\]"),
    (predictions(cells("m", "d", "hr", [True]) * 2), "more than once"),
    (pd.DataFrame({"model": ["m"], "dataset": ["d"], "resolution": ["hr"], "image": [0]}), "missing column"),
])
def test_unusable_predictions_are_explained(table, message):
    with pytest.raises(ResultsTableError, match=message):
        hr_correct_robustness(table)
