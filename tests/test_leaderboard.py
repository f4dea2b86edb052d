"""Leaderboard logic: rankings with rank change vs SAR (checked against a hand computation),
weight presets, results tables (CSVs and `lr0fm bench` databases) from a runs folder, a path
and uploads."""

from __future__ import annotations

import io
import json
import math
import shutil

import duckdb
import numpy as np
import pandas as pd
import pytest

from lr0fm_core import config
from lr0fm_core import leaderboard as lb
from lr0fm_core.bench import export_results, read_runs, results_db
from lr0fm_core.metrics import PAPER_WAR16_WEIGHTS, ResultsTableError, WeightsError, load_weights
from lr0fm_core.models.registry import get_model_spec
from lr0fm_core.paper_tables import load_paper_table

# Three models on two datasets (d1: 10 classes, d2: 100 classes): (A_HR, A_16) per dataset.
# Model "a" is barely above random on d1 (A_HR 0.12 vs 1/10), so its high γ there is
# discounted by Γ (Problem A of Sec. 3): SAR ranks it first, WAR last.
ACCURACIES = {
    "a": {"d1": (0.12, 0.11), "d2": (0.80, 0.40)},
    "b": {"d1": (0.90, 0.54), "d2": (0.70, 0.42)},
    "c": {"d1": (0.50, 0.35), "d2": (0.50, 0.30)},
}
N_CLASSES = {"d1": 10, "d2": 100}


def tiny_table() -> pd.DataFrame:
    rows = []
    for model, cells in ACCURACIES.items():
        for dataset, (acc_hr, acc_16) in cells.items():
            rows.append((model, dataset, "hr", acc_hr, N_CLASSES[dataset]))
            rows.append((model, dataset, 16, acc_16, N_CLASSES[dataset]))
    return pd.DataFrame(rows, columns=["model", "dataset", "resolution", "top1", "n_classes"])


def hand_scores(weights: dict[str, float], alpha: float = 200.0) -> dict[str, dict[str, float]]:
    """SAR, WAR, ACC (percent) per model, straight from the formulas of Sec. 3."""
    scores = {}
    for model, cells in ACCURACIES.items():
        gammas, Gammas, accs = {}, {}, {}
        for dataset, (acc_hr, acc_16) in cells.items():
            gammas[dataset] = acc_16 / acc_hr
            gap = max(0.0, acc_hr - 1 / N_CLASSES[dataset])
            Gammas[dataset] = gammas[dataset] * (1 - math.exp(-alpha * gap * gap))
            accs[dataset] = acc_16
        scores[model] = {
            "SAR": 100 * sum(gammas.values()) / len(gammas),
            "WAR": 100 * sum(Gammas[d] * weights[d] for d in Gammas) / sum(weights.values()),
            "ACC": 100 * sum(accs.values()) / len(accs),
        }
    return scores


def hand_ranks(scores: dict[str, dict[str, float]], metric: str) -> dict[str, int]:
    order = sorted(scores, key=lambda m: -scores[m][metric])
    return {model: order.index(model) + 1 for model in scores}


@pytest.mark.parametrize("metric, weights", [
    ("WAR", {"d1": 1.0, "d2": 1.0}), ("WAR", {"d1": 1.0, "d2": 3.0}), ("ACC", {"d1": 1.0, "d2": 1.0}),
    ("SAR", {"d1": 1.0, "d2": 1.0}),
])
def test_rank_models_matches_a_hand_computation(metric, weights):
    board = lb.rank_models(tiny_table(), 16, weights=weights, metric=metric)
    scores = hand_scores(weights)
    ranks, sar_ranks = hand_ranks(scores, metric), hand_ranks(scores, "SAR")
    ranking = board.ranking.set_index("model")
    assert list(board.ranking["model"]) == sorted(scores, key=ranks.get)
    for model in scores:
        for column in ("SAR", "WAR", "ACC"):
            assert ranking.loc[model, column] == pytest.approx(scores[model][column], abs=1e-9)
        assert ranking.loc[model, "rank"] == ranks[model]
        assert ranking.loc[model, "rank_sar"] == sar_ranks[model]
        assert ranking.loc[model, "change_vs_sar"] == sar_ranks[model] - ranks[model]


def test_rank_change_labels_for_the_war_ranking():
    # SAR: a (70.8) > c (65) > b (60); WAR: c (65) > b (60) > a (28.5).
    board = lb.rank_models(tiny_table(), 16, metric="WAR")
    assert dict(zip(board.ranking["model"], board.ranking["trend"])) == {"c": "▲ 1", "b": "▲ 1", "a": "▼ 2"}
    sar = lb.rank_models(tiny_table(), 16, metric="SAR")
    assert set(sar.ranking["trend"]) == {"="}


def test_rank_change_label():
    assert [lb.rank_change_label(c) for c in (3, 0, -1)] == ["▲ 3", "=", "▼ 1"]


def test_rank_models_rejects_an_unknown_metric():
    with pytest.raises(ValueError, match="GAR.*WAR, SAR, ACC"):
        lb.rank_models(tiny_table(), 16, metric="GAR")


def test_rank_models_names_a_dataset_without_weight():
    with pytest.raises(WeightsError, match="d2"):
        lb.rank_models(tiny_table(), 16, weights={"d1": 1.0})


def test_uniform_preset():
    preset = lb.preset_weights("uniform", ["d1", "d2"])
    assert preset.note is None
    assert preset.frame.to_dict("list") == {"dataset": ["d1", "d2"], "weight": [1.0, 1.0],
                                            "source": ["uniform", "uniform"]}


def test_paper_preset_uses_table_11_and_names_datasets_it_lacks():
    printed = load_paper_table(11).set_index("dataset")["weight"]
    preset = lb.preset_weights("paper", ["eurosat", "cifar10", "dtd"])
    frame = preset.frame.set_index("dataset")
    assert frame.loc["eurosat", "weight"] == printed["eurosat"] == 1.0
    assert frame.loc["dtd", "weight"] == printed["dtd"]
    assert frame.loc["cifar10", "weight"] == lb.PAPER_FALLBACK_WEIGHT
    assert frame.loc["cifar10", "source"].startswith("not in Table 11")
    assert "cifar10" in preset.note and "dtd" not in preset.note


def test_paper_preset_covering_all_datasets_has_no_note():
    preset = lb.preset_weights("paper", list(PAPER_WAR16_WEIGHTS))
    assert preset.note is None
    assert len(preset.frame) == 15


def test_optimized_preset():
    pending = lb.preset_weights("optimized", ["d1", "d2"])
    assert list(pending.frame["weight"]) == [1.0, 1.0] and "Not optimized yet" in pending.note
    done = lb.preset_weights("optimized", ["d1", "d2"], {"d2": 0.3, "d1": 0.7})
    assert list(done.frame["weight"]) == [0.7, 0.3] and done.note is None
    with pytest.raises(WeightsError, match="d2"):
        lb.preset_weights("optimized", ["d1", "d2"], {"d1": 0.7})


def test_unknown_preset():
    with pytest.raises(WeightsError, match="'table12'.*uniform, paper, optimized"):
        lb.preset_weights("table12", ["d1"])


def test_weights_from_editor():
    edited = pd.DataFrame({"dataset": ["d1", "d2"], "weight": [0.5, 2], "source": ["x", "y"]})
    assert lb.weights_from_editor(edited) == {"d1": 0.5, "d2": 2.0}


def test_runs_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(lb.ENV_RUNS_DIR, str(tmp_path))
    assert lb.runs_dir() == tmp_path
    monkeypatch.delenv(lb.ENV_RUNS_DIR)
    assert lb.runs_dir() == lb.DEFAULT_RUNS_DIR
    assert lb.DEFAULT_RUNS_DIR.parts[-2:] == ("precomputed", "runs")


def test_list_runs_finds_tables_and_databases_in_a_folder(monkeypatch, tmp_path):
    (tmp_path / "2025" / "deep").mkdir(parents=True)
    (tmp_path / "folder.csv").mkdir()
    for name in ("b.csv", "2025/a.csv", "2025/deep/c.csv", "notes.txt", "2025/provenance.json",
                 "2025/sweep.duckdb", "2025/sweep.duckdb.wal", "d.CSV"):
        (tmp_path / name).write_text("x")
    monkeypatch.setenv(lb.ENV_RUNS_DIR, str(tmp_path))
    expected = [tmp_path / "2025/a.csv", tmp_path / "2025/deep/c.csv", tmp_path / "2025/sweep.duckdb",
                tmp_path / "b.csv", tmp_path / "d.CSV"]
    assert lb.list_runs() == expected
    assert lb.list_runs(tmp_path / "missing") == []


def test_read_uploaded_table_validates():
    table = lb.read_uploaded_table(tiny_table().to_csv(index=False).encode(), "mine.csv")
    assert len(table) == 12
    assert set(table["resolution"]) == {"hr", 16}


def test_read_uploaded_table_names_the_file_and_the_bad_rows():
    frame = tiny_table()
    frame.loc[3, "top1"] = 42.0  # a percentage instead of a fraction
    with pytest.raises(ResultsTableError) as err:
        lb.read_uploaded_table(frame.to_csv(index=False).encode(), "mine.csv")
    message = str(err.value)
    assert "'mine.csv'" in message and "row 4" in message and "top1=42.0" in message
    assert "first data row" in message


@pytest.mark.parametrize("data, expected", [
    (b"", "'bad.csv' is empty"),
    (b"model,dataset\nx,y\n", "missing required column"),
    (b"\xff\xfe\x00\x81", "not a readable CSV"),
])
def test_read_uploaded_table_errors(data, expected):
    with pytest.raises(ResultsTableError, match=expected):
        lb.read_uploaded_table(data, "bad.csv")


# ---------------------------------------------------------------- `lr0fm bench` databases

KEY = ["model", "dataset", "resolution"]


def test_a_bench_database_reads_as_the_table_it_exports(bench_db, tmp_path):
    table = lb.read_results_file(bench_db)
    runs = read_runs(bench_db)
    assert len(table) == len(runs) == 2 * 2 * 3
    assert set(table["model"]) == {"lr0fm-tiny-ViT:none", "lr0fm-tiny-ViT-bidir:none"}
    assert set(table["resolution"]) == {16, 32, "hr"}
    stored = {(f"{r.model}:{r.pretrained}", r.dataset, r.resolution): r.top1 for r in runs.itertuples()}
    assert {(r.model, r.dataset, str(r.resolution)): r.top1 for r in table.itertuples()} == stored

    exported = tmp_path / "exported.csv"
    export_results(bench_db, exported)
    from_csv = lb.read_results_file(exported)
    columns = [*KEY, "top1", "n_classes"]
    pd.testing.assert_frame_equal(table[columns], from_csv[columns], check_dtype=False)
    by_db, by_csv = lb.rank_models(table, 16).ranking, lb.rank_models(from_csv, 16).ranking
    assert by_db["model"].tolist() == by_csv["model"].tolist()
    assert by_db["WAR"].tolist() == pytest.approx(by_csv["WAR"].tolist())


def test_random_init_results_are_named_untrained(bench_db):
    table = lb.read_results_file(bench_db)
    assert sorted(lb.untrained_models(table)) == ["lr0fm-tiny-ViT-bidir:none", "lr0fm-tiny-ViT:none"]
    one_trained = table.assign(pretrained=table["model"].map({"lr0fm-tiny-ViT:none": "openai",
                                                              "lr0fm-tiny-ViT-bidir:none": " NONE"}))
    assert lb.untrained_models(one_trained) == ["lr0fm-tiny-ViT-bidir:none"]
    assert lb.untrained_models(table.drop(columns="pretrained")) == []
    assert lb.untrained_warning(["m:none"]).startswith("m:none is untrained: predictions are meaningless")
    assert lb.untrained_warning(["a:none", "b:none"]).startswith("a:none, b:none are untrained")


def test_an_uploaded_database_reads_like_the_file_and_leaves_no_copy(bench_db):
    table = lb.read_uploaded_table(bench_db.read_bytes(), "cluster.duckdb")
    pd.testing.assert_frame_equal(table, lb.read_results_file(bench_db))
    assert not list(config.cache_dir().glob("upload-*"))


def test_bad_databases_are_named_in_the_message(bench_db, tmp_path):
    with pytest.raises(ResultsTableError, match="holds no results yet"):
        with results_db.connect(tmp_path / "empty.duckdb"):
            pass
        lb.read_results_file(tmp_path / "empty.duckdb")
    no_hr = tmp_path / "no_hr.duckdb"
    shutil.copy(bench_db, no_hr)
    with duckdb.connect(str(no_hr)) as connection:
        connection.execute("DELETE FROM runs WHERE resolution = 'hr' AND model = 'lr0fm-tiny-ViT'")
    with pytest.raises(ResultsTableError, match=f"results database {no_hr}: .*hr"):
        lb.read_results_file(no_hr)
    with pytest.raises(ValueError, match="does not exist"):
        lb.read_results_file(tmp_path / "absent.duckdb")
    with pytest.raises(ResultsTableError, match="not a results file"):
        lb.read_results_file(tmp_path / "table.parquet")
    with pytest.raises(ResultsTableError, match="uploaded file 'x.duckdb': .*x.duckdb.*not a valid DuckDB") as err:
        lb.read_uploaded_table(b"hello", "x.duckdb")
    assert str(config.cache_dir()) not in str(err.value)
    assert not list(config.cache_dir().glob("upload-*"))


def test_low_resolutions():
    table = pd.concat([tiny_table(), tiny_table().assign(resolution=lambda t: t["resolution"].replace(16, 8))])
    table = table.drop_duplicates(["model", "dataset", "resolution"])
    assert lb.low_resolutions(table) == [8, 16]
    with pytest.raises(ResultsTableError, match="only 'hr' rows"):
        lb.low_resolutions(tiny_table().query("resolution == 'hr'"))


def test_model_facts_from_registry_and_table_columns():
    spec = get_model_spec("clip-vit-b-32")
    other = get_model_spec("clip-rn50")
    table = pd.DataFrame({"model": ["clip-vit-b-32", other.display_name, "mine", "custom"],
                          "family": [None, None, None, "Homemade"], "params": [None, None, None, 12]})
    facts = lb.model_facts(table).set_index("model")
    assert facts.loc["clip-vit-b-32", "family"] == spec.family
    assert facts.loc["clip-vit-b-32", "params_m"] == spec.params_m
    assert facts.loc[other.display_name, "family"] == other.family
    assert facts.loc["mine", "family"] == lb.UNKNOWN_FAMILY and np.isnan(facts.loc["mine", "params_m"])
    assert facts.loc["custom", "family"] == "Homemade" and facts.loc["custom", "params_m"] == 12


def test_accuracy_by_resolution():
    means = lb.accuracy_by_resolution(tiny_table())
    assert list(means["resolution"].cat.categories) == ["16", "hr"]
    a = means[means["model"].eq("a")].set_index("resolution")["ACC"]
    assert a["16"] == pytest.approx(100 * (0.11 + 0.40) / 2)
    assert a["hr"] == pytest.approx(100 * (0.12 + 0.80) / 2)
    one = lb.accuracy_by_resolution(tiny_table(), "d2")
    assert one.set_index(["model", "resolution"]).loc[("b", "16"), "ACC"] == pytest.approx(42.0)
    with pytest.raises(ResultsTableError, match="'d9'"):
        lb.accuracy_by_resolution(tiny_table(), "d9")


def test_gamma_points():
    board = lb.rank_models(tiny_table(), 16, alpha=100.0)
    points = lb.gamma_points(board.summary.per_dataset).set_index(["model", "dataset"])
    gap = 0.12 - 1 / 10
    assert points.loc[("a", "d1"), "gap"] == pytest.approx(gap)
    assert points.loc[("a", "d1"), "gamma"] == pytest.approx(0.11 / 0.12)
    assert points.loc[("a", "d1"), "Gamma"] == pytest.approx(0.11 / 0.12 * (1 - math.exp(-100 * gap**2)))


def test_exports_round_trip(tmp_path):
    board = lb.rank_models(tiny_table(), 16, weights={"d1": 0.25, "d2": 1.0})
    ranking = pd.read_csv(io.StringIO(lb.ranking_csv(board)))
    assert list(ranking["model"]) == ["c", "b", "a"]
    assert ranking["WAR"].tolist() == pytest.approx(board.ranking["WAR"].tolist(), abs=1e-4)
    path = tmp_path / "weights.json"
    path.write_text(lb.weights_json(board))
    assert json.loads(path.read_text()) == {"d1": 0.25, "d2": 1.0}
    assert load_weights(path, ["d1", "d2"]) == {"d1": 0.25, "d2": 1.0}
