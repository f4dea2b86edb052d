"""Leaderboard figure builders: each returns a plotly Figure with the expected traces and
points for a small table, and every transcribed paper table with a chart draws."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from lr0fm_core.paper_tables import list_paper_tables, load_paper_table
from lr0fm_core.ui import leaderboard_charts as charts


def test_spearman_figure_has_sar_and_war_bars_per_dataset():
    frame = pd.DataFrame({"dataset": ["imagenet", "eurosat"], "spearman_sar": [0.99, 0.26],
                          "spearman_war": [0.93, 0.49]})
    figure = charts.spearman_figure(frame)
    assert isinstance(figure, go.Figure)
    assert [(t.type, t.name) for t in figure.data] == [("bar", "SAR"), ("bar", "WAR")]
    assert list(figure.data[0].x) == ["imagenet", "eurosat"]
    assert list(figure.data[1].y) == [0.93, 0.49]
    assert figure.layout.barmode == "group"


def test_gamma_figure_has_one_trace_per_dataset_and_the_diagonal():
    points = pd.DataFrame({"model": ["a", "b", "a"], "dataset": ["d1", "d1", "d2"],
                           "gamma": [0.9, 0.5, 1.2], "Gamma": [0.1, 0.5, 1.2]})
    figure = charts.gamma_figure(points)
    assert [t.name for t in figure.data] == ["d1", "d2", "Γ = γ"]
    assert list(figure.data[0].x) == [0.9, 0.5] and list(figure.data[0].y) == [0.1, 0.5]
    assert list(figure.data[1].text) == ["a"]
    assert list(figure.data[2].x) == [0, 1.2]  # the diagonal reaches the largest score


def test_gap_factor_figure_follows_eq_1():
    figure = charts.gap_factor_figure([0.05, 0.5], alpha=200.0)
    curve, marks = figure.data
    assert curve.x[0] == 0 and curve.y[0] == 0 and curve.x[-1] == 1
    assert curve.y[-1] == pytest.approx(1 - math.exp(-200))
    assert list(marks.x) == [0.05, 0.5]
    assert marks.y[0] == pytest.approx(1 - math.exp(-200 * 0.05**2))
    assert "α = 200" in figure.layout.title.text


def test_weights_figure_is_a_pie_of_the_weights():
    figure = charts.weights_figure(pd.DataFrame({"dataset": ["a", "b"], "weight": [0.2, 0.6]}))
    (pie,) = figure.data
    assert pie.type == "pie" and list(pie.labels) == ["a", "b"] and list(pie.values) == [0.2, 0.6]


def accuracy_frame() -> pd.DataFrame:
    rows = [("m1", "F1", "16", 10.0), ("m1", "F1", "hr", 50.0), ("m2", "F1", "16", 20.0), ("m2", "F1", "hr", 70.0),
            ("m3", "F2", "16", 5.0), ("m3", "F2", "hr", 40.0)]
    frame = pd.DataFrame(rows, columns=["model", "family", "resolution", "ACC"])
    frame["resolution"] = pd.Categorical(frame["resolution"], categories=["16", "hr"], ordered=True)
    return frame


def test_accuracy_figure_has_model_lines_and_the_family_mean_per_family():
    figure = charts.accuracy_figure(accuracy_frame())
    assert [t.name for t in figure.data] == ["F1 models", "F1 mean", "F2 models", "F2 mean"]
    models = figure.data[0]
    assert list(models.x) == ["16", "hr", None, "16", "hr", None]  # one gap after each model
    assert list(models.y) == [10.0, 50.0, None, 20.0, 70.0, None]
    assert list(figure.data[1].x) == ["16", "hr"] and list(figure.data[1].y) == [15.0, 60.0]
    assert list(figure.data[3].y) == [5.0, 40.0]
    assert figure.data[2].xaxis != figure.data[0].xaxis  # one panel per family
    assert [a.text for a in figure.layout.annotations] == ["F1", "F2"]


def test_size_figure_leaves_out_models_without_a_size():
    frame = pd.DataFrame({"model": ["m1", "m2", "m3"], "family": ["F1", "F2", "F1"],
                          "params_m": [150.0, np.nan, 400.0], "WAR": [30.0, 20.0, 40.0]})
    figure = charts.size_figure(frame, "WAR")
    assert [t.name for t in figure.data] == ["F1"]
    assert list(figure.data[0].x) == [150.0, 400.0] and list(figure.data[0].y) == [30.0, 40.0]
    assert figure.layout.xaxis.type == "log"


def test_table_2_chart_has_vanilla_and_lr_tk0_lines_per_backbone_and_metric():
    table = load_paper_table(2)
    (figure,) = charts.paper_table_figures(2, table)
    assert len(figure.data) == 3 * 2 * 3  # backbones × methods × (SAR, WAR, ACC)
    eva = [t for t in figure.data if t.name == "EVA-B/16 · vanilla"]
    assert [list(t.x) for t in eva] == [["16", "32", "64", "128", "224"]] * 3
    assert list(eva[0].y) == [38.0, 74.4, 92.4, 98.4, 100.0]  # SAR as printed in Table 2
    assert {t.line.dash for t in figure.data if t.name.endswith("vanilla")} != \
        {t.line.dash for t in figure.data if t.name.endswith("LR-TK0")}


def test_table_10_chart_colours_backbones_by_architecture_and_skips_224():
    (figure,) = charts.paper_table_figures(10, load_paper_table(10))
    rn50 = next(t for t in figure.data if t.name == "RN50")
    assert list(rn50.x) == ["16", "32", "64", "128"] and list(rn50.y) == [10.00, 32.75, 70.16, 92.54]
    cnn_colors = {t.line.color for t in figure.data if t.name.startswith("RN")}
    vit_colors = {t.line.color for t in figure.data if t.name.startswith("ViT")}
    assert len(cnn_colors) == 1 and len(vit_colors) == 1 and cnn_colors != vit_colors


def test_table_11_charts_are_the_weights_pie_and_the_spearman_bars():
    table = load_paper_table(11)
    pie, bars = charts.paper_table_figures(11, table)
    assert list(pie.data[0].values) == list(table["weight"])
    eurosat = list(table["dataset"]).index("eurosat")
    assert bars.data[0].y[eurosat] == 0.25753 and bars.data[1].y[eurosat] == 0.49229  # Fig. 5 left


@pytest.mark.parametrize("number", [t.number for t in list_paper_tables()])
def test_every_paper_table_with_a_chart_draws(number):
    figures = charts.paper_table_figures(number, load_paper_table(number))
    assert (number in charts.PAPER_TABLE_FIGURES) == bool(figures)
    for figure in figures:
        assert isinstance(figure, go.Figure) and figure.data
