"""The Leaderboard page under Streamlit's AppTest: without a results table (how-to and the
paper's tables), with one (editing a WAR weight re-ranks exactly as the engine does),
with a bad one (st.error, the page goes on), the weight optimizer, and `lr0fm bench` databases
opened from the runs folder, a typed path and an upload."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from lr0fm_core import leaderboard as lb
from lr0fm_core.leaderboard import ENV_RUNS_DIR
from lr0fm_core.metrics import REQUIRED_COLUMNS, optimize_weights, summarize
from lr0fm_core.paper_tables import list_paper_tables, load_paper_table

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "2_Leaderboard.py")
TIMEOUT = 60

# Synthetic (A_HR, A_16) on two datasets with many classes (so Γ ≈ γ). γ on (d1, d2):
# m1 (0.9, 0.3), m3 (0.7, 0.45), m2 (0.5, 0.6): with uniform weights WAR ranks m1, m3, m2;
# weighting d2 by 5 reverses it to m2, m3, m1.
GAMMAS = {"m1": (0.9, 0.3), "m2": (0.5, 0.6), "m3": (0.7, 0.45)}


def synthetic_table() -> pd.DataFrame:
    rows = []
    for model, gammas in GAMMAS.items():
        for dataset, gamma in zip(("d1", "d2"), gammas):
            rows += [(model, dataset, "hr", 0.8, 1000), (model, dataset, 16, 0.8 * gamma, 1000)]
    return pd.DataFrame(rows, columns=["model", "dataset", "resolution", "top1", "n_classes"])


@pytest.fixture
def runs(tmp_path, monkeypatch):
    folder = tmp_path / "runs"
    folder.mkdir()
    monkeypatch.setenv(ENV_RUNS_DIR, str(folder))
    return folder


def run_page() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    return at


def ranking(at: AppTest) -> pd.DataFrame:
    (frame,) = [d.value for d in at.dataframe if "trend" in d.value.columns]
    return frame


def test_without_a_results_table_the_page_explains_and_shows_the_paper_tables(runs):
    at = run_page()
    how_to = " ".join(i.value for i in at.info)
    assert "lr0fm bench" in how_to and str(runs) in how_to
    assert all(column in how_to for column in REQUIRED_COLUMNS)
    assert len(at.file_uploader) == 1 and not at.error
    picker = next(s for s in at.selectbox if s.label == "Paper table")
    assert len(picker.options) == len(list_paper_tables())
    for option, table in zip(picker.options, list_paper_tables()):
        picker.set_value(option).run()
        assert not at.exception, (option, at.exception)
        shown = [d.value for d in at.dataframe]
        assert any(len(frame) == len(load_paper_table(table.number)) and list(frame.columns) ==
                   [c.name for c in table.columns] for frame in shown), option
        picker = next(s for s in at.selectbox if s.label == "Paper table")


def test_editing_a_weight_reranks_as_the_engine_does(runs):
    table = synthetic_table()
    table.to_csv(runs / "synthetic.csv", index=False)
    at = run_page()
    assert not at.error and not at.warning
    before = ranking(at)
    assert list(before["model"]) == list(summarize(table, 16).models["model"]) == ["m1", "m3", "m2"]

    editor = at.data_editor[0]
    weights = editor.value.set_index("dataset")["weight"].to_dict()
    assert weights == {"d1": 1.0, "d2": 1.0}
    row = list(editor.value["dataset"]).index("d2")
    at.session_state[editor.key] = {"edited_rows": {row: {"weight": 5.0}}, "added_rows": [], "deleted_rows": []}
    at.run()
    assert not at.exception and not at.error
    after = ranking(at)
    expected = summarize(table, 16, weights={"d1": 1.0, "d2": 5.0}).models
    assert list(after["model"]) == list(expected["model"]) == ["m2", "m3", "m1"]
    assert after["WAR"].tolist() == pytest.approx((expected["WAR"] * 100).tolist())
    # SAR ranks m1, m3, m2, so the WAR leader m2 climbed two places and m1 fell two.
    assert after["trend"].tolist() == ["▲ 2", "=", "▼ 2"]


def test_a_bad_results_csv_shows_an_error_and_the_page_goes_on(runs):
    table = synthetic_table()
    table.loc[2, "top1"] = 64.0  # a percentage instead of a fraction
    table.to_csv(runs / "bad.csv", index=False)
    at = run_page()
    (error,) = at.error
    assert "top1" in error.value and "line 4" in error.value
    assert any("lr0fm bench" in i.value for i in at.info)
    assert any(s.label == "Paper table" for s in at.selectbox)


def test_an_uploaded_csv_is_validated_and_ranked(runs):
    at = run_page()
    bad = synthetic_table().drop(columns="n_classes").to_csv(index=False).encode()
    at.file_uploader[0].set_value(("mine.csv", bad, "text/csv")).run()
    assert not at.exception
    (error,) = at.error
    assert "'mine.csv'" in error.value and "n_classes" in error.value
    good = synthetic_table().to_csv(index=False).encode()
    at.file_uploader[0].set_value(("mine.csv", good, "text/csv")).run()
    assert not at.exception and not at.error
    assert list(ranking(at)["model"]) == ["m1", "m3", "m2"]


def test_the_optimizer_fills_the_editor_and_reports_objectives(runs):
    table = synthetic_table()
    table.to_csv(runs / "synthetic.csv", index=False)
    at = run_page()
    next(r for r in at.radio if r.label == "WAR dataset weights").set_value("optimized").run()
    assert any("Not optimized yet" in i.value for i in at.info)
    next(b for b in at.button if b.label.startswith("Optimize")).click().run()
    assert not at.exception and not at.error
    expected = optimize_weights(table, 16)
    assert [m.value for m in at.metric] == [
        f"{expected.objective:.3f}", f"{expected.objective_uniform:.3f}", "n/a"]  # d1, d2 are not in Table 11
    edited = at.data_editor[0].value.set_index("dataset")["weight"].to_dict()
    assert edited == pytest.approx(expected.weights)


# ---------------------------------------------------------------- `lr0fm bench` databases

def expected_ranking(db: Path) -> pd.DataFrame:
    """The engine's WAR-16 ranking of a database with the page's default (uniform) weights."""
    table = lb.read_results_file(db)
    uniform = {dataset: 1.0 for dataset in lb.datasets_at(table, 16)}
    return lb.rank_models(table, 16, weights=uniform).ranking


def test_a_bench_database_in_the_runs_folder_is_ranked(runs, bench_db):
    shutil.copy(bench_db, runs / "sweep.duckdb")
    at = run_page()
    assert not at.error
    (warning,) = at.warning  # the sweep ran random-init models: never shown as real results
    assert "untrained" in warning.value
    assert "lr0fm-tiny-ViT:none" in warning.value and "lr0fm-tiny-ViT-bidir:none" in warning.value
    assert next(s for s in at.selectbox if s.label == "Results table").value == "sweep.duckdb"
    shown, expected = ranking(at), expected_ranking(bench_db)
    assert shown["model"].tolist() == expected["model"].tolist()
    assert shown["WAR"].tolist() == pytest.approx(expected["WAR"].tolist())
    assert next(s for s in at.selectbox if s.label == "Resolution n (n×n)").options == ["16", "32"]


def test_a_database_opens_by_path_and_by_upload(runs, bench_db, tmp_path):
    at = run_page()
    at.text_input[0].input(str(tmp_path / "absent.duckdb")).run()
    assert not at.exception
    (error,) = at.error
    assert "absent.duckdb" in error.value and "does not exist" in error.value

    at.text_input[0].input(str(bench_db)).run()
    assert not at.exception and not at.error
    assert ranking(at)["model"].tolist() == expected_ranking(bench_db)["model"].tolist()

    at.text_input[0].input("").run()
    at.file_uploader[0].set_value(("cluster.duckdb", bench_db.read_bytes(), "application/octet-stream")).run()
    assert not at.exception and not at.error
    assert next(s for s in at.selectbox if s.label == "Results table").value == "uploaded: cluster.duckdb"
    assert ranking(at)["model"].tolist() == expected_ranking(bench_db)["model"].tolist()
    at.file_uploader[0].set_value(("broken.duckdb", b"not a database", "application/octet-stream")).run()
    assert not at.exception
    (error,) = at.error
    assert "'broken.duckdb'" in error.value and "not a valid DuckDB" in error.value
