"""Dataset weights (Table 11 preset, JSON / CSV files) and their optimization (Eq. 2)."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from lr0fm_core.metrics import (
    PAPER_OBJECTIVE,
    PAPER_WAR16_WEIGHTS,
    WeightsError,
    load_weights,
    optimize_weights,
)

from test_metrics_aggregate import TABLE_11

DATASETS = ["dtd", "eurosat", "pets"]


def test_paper_preset_is_table_11_and_eq_2_coefficients():
    assert PAPER_WAR16_WEIGHTS == TABLE_11
    assert PAPER_OBJECTIVE == {"imagenet": 0.95, "imagenet_v2": 0.95, "dtd": 0.95,
                               "imagenet_a": 1.0, "eurosat": 1.0}


def test_presets():
    assert load_weights("uniform", DATASETS) == {"dtd": 1.0, "eurosat": 1.0, "pets": 1.0}
    assert load_weights("paper", DATASETS) == {d: TABLE_11[d] for d in DATASETS}
    with pytest.raises(WeightsError, match=r"no weight for dataset\(s\) \['my_data'\]"):
        load_weights("paper", ["dtd", "my_data"])
    with pytest.raises(WeightsError, match="needs the list of datasets"):
        load_weights("uniform")


def test_json_and_csv_files_in_table_order(tmp_path):
    json_file = tmp_path / "w.json"
    json_file.write_text(json.dumps({"pets": 0.5, "dtd": 2, "eurosat": 0}))
    assert list(load_weights(json_file, DATASETS).items()) == [("dtd", 2.0), ("eurosat", 0.0), ("pets", 0.5)]
    csv_file = tmp_path / "w.csv"
    csv_file.write_text("dataset,weight,spearman_war\npets,0.5,0.9\ndtd,2,0.1\neurosat,1e-2,0.3\n")
    assert load_weights(str(csv_file), DATASETS) == {"dtd": 2.0, "eurosat": 0.01, "pets": 0.5}
    assert load_weights(csv_file) == {"pets": 0.5, "dtd": 2.0, "eurosat": 0.01}


@pytest.mark.parametrize("name, content, message", [
    ("w.json", '{"dtd": 1, "eurosat": 1, "pets": 1, "dtdd": 1}', r"unknown dataset name\(s\) \['dtdd'\]"),
    ("w.json", '{"dtd": 1, "pets": 1}', r"no weight for dataset\(s\) \['eurosat'\]"),
    ("w.json", '{"dtd": -1, "eurosat": 1, "pets": 1}', r"finite numbers >= 0.*'dtd': -1"),
    ("w.json", '{"dtd": NaN, "eurosat": 1, "pets": 1}', r"finite numbers >= 0.*'dtd': nan"),
    ("w.json", '{"dtd": "1", "eurosat": 1, "pets": 1}', r"finite numbers >= 0.*'dtd': '1'"),
    ("w.json", '{"dtd": 0, "eurosat": 0, "pets": 0}', "all weights are zero"),
    ("w.json", "[1, 2, 3]", "must hold a JSON object"),
    ("w.json", "{not json", "cannot read weights file"),
    ("w.csv", "name,value\ndtd,1\n", r"must have columns 'dataset' and 'weight'.*\['name', 'value'\]"),
    ("w.csv", "dataset,weight\ndtd,1\ndtd,2\neurosat,1\npets,1\n", r"\['dtd'\] more than once"),
    ("w.csv", "dataset,weight\ndtd,\neurosat,1\npets,1\n", r"finite numbers >= 0.*'dtd': nan"),
    ("w.txt", "dtd 1", "not a preset"),
])
def test_bad_weight_files_name_the_problem(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(WeightsError, match=message):
        load_weights(path, DATASETS)


def test_missing_file_and_bad_source_type(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        load_weights(tmp_path / "absent.json", DATASETS)
    with pytest.raises(WeightsError, match="preset name, a file path or a mapping"):
        load_weights(3, DATASETS)


# ---- optimize_weights (Eq. 2) --------------------------------------------------------------

OTHERS = ["imagenet_r", "imagenet_sketch", "caltech101", "food101", "sun397", "cars",
          "fgvc_aircraft", "pets", "flowers102", "ucf101"]
N_MODELS = 10


def contrarian_eurosat_table():
    """10 models × the 15 paper datasets. The 10 datasets outside Eq. 2 all rank the
    models 0 < 1 < ... < 9, EuroSAT ranks them in the opposite order, and the other Eq. 2
    datasets rank them at random. A_HR = 0.9 with C = 1000, so Γ = γ = target."""
    order = np.arange(N_MODELS)
    rng = np.random.default_rng(1)
    targets = {d: 0.3 + 0.05 * order for d in OTHERS}
    for dataset in ("imagenet", "imagenet_v2", "dtd", "imagenet_a"):
        targets[dataset] = 0.3 + 0.05 * rng.permutation(N_MODELS)
    targets["eurosat"] = 0.3 + 0.05 * order[::-1]
    rows = []
    for dataset, gamma in targets.items():
        for m in range(N_MODELS):
            rows += [(f"m{m}", dataset, "hr", 0.9, 1000), (f"m{m}", dataset, 16, 0.9 * gamma[m], 1000)]
    return pd.DataFrame(rows, columns=["model", "dataset", "resolution", "top1", "n_classes"]), targets


def eq_2(weights, targets, coefficients):
    """Eq. 2 from scratch: Σ c_d · Spearman(weighted-mean ranking, dataset ranking)."""
    war = sum(weights[d] * targets[d] for d in targets) / sum(weights.values())
    return sum(c * spearmanr(war, targets[d]).statistic for d, c in coefficients.items())


def test_optimized_weights_favour_the_contrarian_dataset():
    table, targets = contrarian_eurosat_table()
    result = optimize_weights(table, 16, maxiter=150)
    assert result.dropped == [] and result.coefficients == PAPER_OBJECTIVE
    assert all(0.01 <= w <= 1.0 for w in result.weights.values())
    assert result.objective == pytest.approx(eq_2(result.weights, targets, PAPER_OBJECTIVE))
    uniform = dict.fromkeys(targets, 1.0)
    assert result.objective_uniform == pytest.approx(eq_2(uniform, targets, PAPER_OBJECTIVE))
    assert result.objective_paper == pytest.approx(eq_2(TABLE_11, targets, PAPER_OBJECTIVE))
    assert result.objective >= max(result.objective_uniform, result.objective_paper)
    spearman = result.spearman.set_index("dataset")
    uniform_rho = spearmanr(sum(targets.values()), targets["eurosat"]).statistic
    assert spearman.loc["eurosat", "spearman_uniform"] == pytest.approx(uniform_rho)
    assert spearman.loc["eurosat", "spearman_uniform"] < -0.9
    assert spearman.loc["eurosat", "spearman_optimized"] > spearman.loc["eurosat", "spearman_uniform"] + 0.5


def test_optimization_is_reproducible_and_respects_bounds():
    table, _ = contrarian_eurosat_table()
    first = optimize_weights(table, 16, bounds=(0.2, 0.6), seed=3, maxiter=40)
    second = optimize_weights(table, 16, bounds=(0.2, 0.6), seed=3, maxiter=40)
    assert first.weights == second.weights and first.objective == second.objective
    assert all(0.2 <= w <= 0.6 for w in first.weights.values())
    with pytest.raises(WeightsError, match="bounds"):
        optimize_weights(table, 16, bounds=(1.0, 0.5))


def test_objective_datasets_absent_from_the_table():
    table, targets = contrarian_eurosat_table()
    subset = table[table["dataset"].isin(["eurosat", "pets", "cars"])]
    result = optimize_weights(subset, 16, maxiter=30)
    assert result.dropped == ["imagenet", "imagenet_v2", "dtd", "imagenet_a"]
    assert result.coefficients == {"eurosat": 1.0}
    assert result.objective == pytest.approx(1.0)  # eurosat's order is reachable within bounds
    assert result.objective_paper == pytest.approx(
        eq_2({d: TABLE_11[d] for d in ("eurosat", "pets", "cars")},
             {d: targets[d] for d in ("eurosat", "pets", "cars")}, {"eurosat": 1.0}))

    no_objective = table[table["dataset"].isin(["pets", "cars"])]
    result = optimize_weights(no_objective, 16, maxiter=10)
    assert result.coefficients == {"pets": 1.0, "cars": 1.0}
    assert result.objective == pytest.approx(2.0)
