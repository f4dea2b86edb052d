"""ACC / SAR / WAR, ranks and per-dataset Spearman (Sec. 3, Fig. 5, Table 11) against
hand computations and independent scipy / plain-Python references."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from lr0fm_core.metrics import ResultsTableError, summarize

COLUMNS = ["model", "dataset", "resolution", "top1", "n_classes"]

# Table 11 weights, transcribed again here so the preset is checked against the paper.
TABLE_11 = {
    "imagenet": 0.15556157429688613, "imagenet_a": 0.970498446080589, "imagenet_v2": 0.2854574367981364,
    "imagenet_r": 0.01, "imagenet_sketch": 0.021456095637452655, "caltech101": 0.01,
    "dtd": 0.505922498560715, "food101": 0.01, "sun397": 0.407563119725743, "cars": 0.13583821249199218,
    "fgvc_aircraft": 0.8229545014750042, "pets": 0.08995285864599148, "flowers102": 0.08972060770047119,
    "eurosat": 1.0, "ucf101": 0.01,
}


def table_from(cells):
    """cells: {(model, dataset): (acc_hr, acc_16, n_classes)} -> long results table."""
    rows = []
    for (model, dataset), (acc_hr, acc_16, n_classes) in cells.items():
        rows += [(model, dataset, "hr", acc_hr, n_classes), (model, dataset, 16, acc_16, n_classes)]
    return pd.DataFrame(rows, columns=COLUMNS)


def test_war_with_paper_weights_is_the_hand_computed_weighted_mean():
    # A_HR = 0.9 with C = 1000: E = 0.899, 1 − exp(−200 E²) = 1 in float64, so Γ = γ = A_16 / 0.9.
    # Model "a" halves its accuracy on EuroSAT (w = 1.0), model "b" on ImageNet-R (w = 0.01).
    cells = {}
    for model, weak in (("a", "eurosat"), ("b", "imagenet_r")):
        for dataset in TABLE_11:
            cells[model, dataset] = (0.9, 0.45 if dataset == weak else 0.9, 1000)
    summary = summarize(table_from(cells), 16, weights="paper")
    total = sum(TABLE_11.values())
    models = summary.models.set_index("model")
    assert models.loc["a", "WAR"] == pytest.approx(1 - 0.5 * 1.0 / total)
    assert models.loc["b", "WAR"] == pytest.approx(1 - 0.5 * 0.01 / total)
    assert models.loc["a", "SAR"] == models.loc["b", "SAR"] == pytest.approx(1 - 0.5 / 15)
    assert models.loc["a", "ACC"] == pytest.approx((14 * 0.9 + 0.45) / 15)
    assert summary.models["model"].tolist() == ["b", "a"]  # sorted by WAR rank
    assert models["rank_war"].to_dict() == {"b": 1, "a": 2}
    assert models["rank_sar"].to_dict() == {"a": 1, "b": 1}  # tie shares the best rank
    assert summary.weights == TABLE_11
    assert dict(zip(summary.datasets["dataset"], summary.datasets["weight"])) == TABLE_11


@pytest.fixture
def random_table():
    """12 models × 5 datasets; dataset "hard" is near random (C = 10, A_HR ~ 0.1-0.2), so
    γ and Γ rank models differently there."""
    rng = np.random.default_rng(7)
    classes = {"dtd": 47, "eurosat": 10, "pets": 37, "sun397": 397, "hard": 10}
    cells = {}
    for m in range(12):
        for dataset, n_classes in classes.items():
            acc_hr = rng.uniform(0.1, 0.2) if dataset == "hard" else rng.uniform(0.3, 0.95)
            cells[f"m{m}", dataset] = (acc_hr, acc_hr * rng.uniform(0.05, 1.0), n_classes)
    return cells


def naive_scores(cells, weights):
    """Plain-Python γ, Γ, ACC, SAR, WAR straight from Sec. 3 and Eq. 1."""
    models = sorted({m for m, _ in cells})
    datasets = list(dict.fromkeys(d for _, d in cells))
    gamma, Gamma, acc = {}, {}, {}
    for (m, d), (acc_hr, acc_n, c) in cells.items():
        gamma[m, d] = 1 - (acc_hr - acc_n) / acc_hr
        Gamma[m, d] = gamma[m, d] * (1 - math.exp(-200 * max(0.0, acc_hr - 1 / c) ** 2))
        acc[m, d] = acc_n
    total = sum(abs(weights[d]) for d in datasets)
    return models, datasets, gamma, Gamma, {
        "ACC": {m: sum(acc[m, d] for d in datasets) / len(datasets) for m in models},
        "SAR": {m: sum(gamma[m, d] for d in datasets) / len(datasets) for m in models},
        "WAR": {m: sum(abs(Gamma[m, d] * weights[d]) for d in datasets) / total for m in models},
        "mean_Gamma": {m: sum(Gamma[m, d] for d in datasets) / len(datasets) for m in models},
    }


def test_scores_ranks_and_spearman_match_independent_references(random_table):
    weights = {"dtd": 0.2, "eurosat": 1.0, "pets": 0.5, "sun397": 0.05, "hard": 0.7}
    summary = summarize(table_from(random_table), 16, weights=weights)
    models, datasets, gamma, Gamma, naive = naive_scores(random_table, weights)
    got = summary.models.set_index("model")
    for column in ("ACC", "SAR", "WAR"):
        assert got[column].to_dict() == pytest.approx(naive[column])
    # SAR is the mean of γ, not of Γ: the near-random dataset makes them differ.
    assert max(abs(naive["SAR"][m] - naive["mean_Gamma"][m]) for m in models) > 0.01
    for column, score in (("rank_war", naive["WAR"]), ("rank_sar", naive["SAR"])):
        expected = {m: 1 + sum(score[k] > score[m] for k in models) for m in models}
        assert got[column].to_dict() == expected
    assert summary.models["rank_war"].is_monotonic_increasing

    spearman = summary.datasets.set_index("dataset")
    for d in datasets:
        per_dataset = [Gamma[m, d] for m in models]
        sar_rho = spearmanr([naive["mean_Gamma"][m] for m in models], per_dataset).statistic
        war_rho = spearmanr([naive["WAR"][m] for m in models], per_dataset).statistic
        assert spearman.loc[d, "spearman_sar"] == pytest.approx(sar_rho)
        assert spearman.loc[d, "spearman_war"] == pytest.approx(war_rho)
    # the Γ ranking of "hard" is not its γ ranking, so using γ there would change the result
    hard_by_gamma = spearmanr([naive["WAR"][m] for m in models], [gamma[m, "hard"] for m in models])
    assert hard_by_gamma.statistic != pytest.approx(spearman.loc["hard", "spearman_war"])


def test_uniform_weights_make_war_the_mean_of_gamma_hat(random_table):
    summary = summarize(table_from(random_table), 16)
    *_, naive = naive_scores(random_table, dict.fromkeys(["dtd", "eurosat", "pets", "sun397", "hard"], 1.0))
    assert summary.models.set_index("model")["WAR"].to_dict() == pytest.approx(naive["mean_Gamma"])
    assert np.allclose(summary.datasets["spearman_sar"], summary.datasets["spearman_war"])


def test_spearman_is_nan_when_a_dataset_cannot_rank_models():
    cells = {("a", "flat"): (0.5, 0.25, 10), ("b", "flat"): (0.5, 0.25, 10),
             ("a", "dtd"): (0.5, 0.25, 47), ("b", "dtd"): (0.5, 0.4, 47)}
    datasets = summarize(table_from(cells), 16).datasets.set_index("dataset")
    assert math.isnan(datasets.loc["flat", "spearman_war"])
    assert datasets.loc["dtd", "spearman_war"] == pytest.approx(1.0)


def test_incomplete_grid_names_the_missing_cells_and_absent_models_are_skipped():
    cells = {("a", "dtd"): (0.5, 0.25, 47), ("a", "pets"): (0.5, 0.25, 37), ("b", "dtd"): (0.5, 0.4, 47)}
    table = table_from(cells)
    incomplete = pd.concat([table, pd.DataFrame([("b", "pets", "hr", 0.5, 37)], columns=COLUMNS)])
    with pytest.raises(ResultsTableError, match=r"\('b', 'pets'\).*drop those models or datasets"):
        summarize(incomplete, 16)
    # model "c" has no 16x16 rows at all: it is simply not part of the 16x16 summary
    only_32 = pd.DataFrame([("c", "dtd", "hr", 0.5, 47), ("c", "dtd", 32, 0.3, 47)], columns=COLUMNS)
    summary = summarize(pd.concat([table[table["model"] == "a"], only_32]), 16)
    assert summary.models["model"].tolist() == ["a"]


def test_weights_must_cover_exactly_the_table_datasets(random_table):
    with pytest.raises(ValueError, match=r"no weight for dataset\(s\) \['hard'\]"):
        summarize(table_from(random_table), 16, weights={"dtd": 1, "eurosat": 1, "pets": 1, "sun397": 1})
    with pytest.raises(ValueError, match=r"'paper' weights .* \['hard'\]"):
        summarize(table_from(random_table), 16, weights="paper")
