"""The CLI's JSON metrics report: schema, percent scaling, ordering, JSON safety."""

import json
import math

import pandas as pd
import pytest

from lr0fm_core.metrics import metrics_report

COLUMNS = ["model", "dataset", "resolution", "top1", "n_classes"]


@pytest.fixture
def table():
    # A_HR = 0.9 with C = 1000 gives Γ = γ (see test_metrics_aggregate). "flat" ranks no one.
    rows = []
    for model, eurosat_16 in (("weak", 0.45), ("strong", 0.9)):
        rows += [(model, "eurosat", "hr", 0.9, 1000), (model, "eurosat", "16", eurosat_16, 1000),
                 (model, "flat", "hr", 0.9, 1000), (model, "flat", "16", 0.72, 1000)]
    return pd.DataFrame(rows, columns=COLUMNS).assign(family="clip")


def test_report_schema_percent_and_order(table):
    report = metrics_report(table, "16", weights={"eurosat": 3.0, "flat": 1.0})
    assert list(report) == ["resolution", "alpha", "models", "datasets"]
    assert report["resolution"] == 16 and report["alpha"] == 200.0
    assert [list(m) for m in report["models"]] == [["model", "SAR", "WAR", "ACC", "rank_war"]] * 2
    strong, weak = report["models"]
    assert (strong["model"], strong["rank_war"], weak["model"], weak["rank_war"]) == ("strong", 1, "weak", 2)
    assert strong["SAR"] == pytest.approx(90.0) and strong["WAR"] == pytest.approx(95.0)  # (3·100 + 80) / 4
    assert weak["SAR"] == pytest.approx(65.0) and weak["WAR"] == pytest.approx(57.5)  # (3·50 + 80) / 4
    assert weak["ACC"] == pytest.approx(58.5)  # (45 + 72) / 2
    datasets = {d["dataset"]: d for d in report["datasets"]}
    assert list(datasets["eurosat"]) == ["dataset", "weight", "spearman_sar", "spearman_war"]
    assert datasets["eurosat"]["weight"] == 3.0
    assert datasets["eurosat"]["spearman_war"] == pytest.approx(1.0)  # a plain coefficient, not percent
    assert datasets["flat"]["spearman_sar"] is None and datasets["flat"]["spearman_war"] is None
    json.dumps(report, allow_nan=False)


def test_report_per_dataset_in_percent(table):
    report = metrics_report(table, 16, per_dataset=True)
    cells = report["per_dataset"]
    assert [list(c) for c in cells] == [["model", "dataset", "acc", "gamma", "Gamma"]] * 4
    assert [c["model"] for c in cells] == ["strong", "strong", "weak", "weak"]
    weak_eurosat = next(c for c in cells if (c["model"], c["dataset"]) == ("weak", "eurosat"))
    assert weak_eurosat["acc"] == pytest.approx(45.0)
    assert weak_eurosat["gamma"] == pytest.approx(50.0)
    assert weak_eurosat["Gamma"] == pytest.approx(50.0 * (1 - math.exp(-200 * 0.899**2)))
    assert all(type(c["acc"]) is float and type(c["model"]) is str for c in cells)
    assert json.loads(json.dumps(report, allow_nan=False)) == report


def test_report_accepts_preset_and_hr(table):
    report = metrics_report(table, "HR", weights="uniform")
    assert report["resolution"] == "hr"
    assert all(d["weight"] == 1.0 for d in report["datasets"])
    assert all(m["SAR"] == pytest.approx(100.0) for m in report["models"])
