"""Plotly figures of the leaderboard page, as pure functions of DataFrames (no Streamlit):
the paper's Fig. 1 (accuracy vs resolution), Fig. 4 left (Γ vs γ, and Eq. 1's factor
against E) and right (WAR weights), Fig. 5 left (Spearman of SAR vs WAR per dataset) and
right (robustness vs model size), and the charts of the transcribed paper tables."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from ..metrics import DEFAULT_ALPHA, improved_robustness

PALETTE = qualitative.Plotly
DASHES = ("solid", "dash", "dot", "dashdot")
FACET_COLUMNS = 4


def _colors(values: Sequence) -> dict:
    """A palette colour for each distinct value, in order of appearance."""
    return {v: PALETTE[i % len(PALETTE)] for i, v in enumerate(pd.unique(pd.Series(values)))}


def _translucent(hex_color: str, opacity: float) -> str:
    red, green, blue = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{opacity})"


def spearman_figure(frame: pd.DataFrame, sar: str = "spearman_sar", war: str = "spearman_war",
                    title: str = "Spearman correlation with each dataset's ranking") -> go.Figure:
    """Fig. 5 left: per dataset, the Spearman correlation between its model ranking (by Γ)
    and the ranking by SAR and by WAR, as grouped bars (columns ``dataset``, ``sar``, ``war``)."""
    figure = go.Figure([
        go.Bar(name="SAR", x=frame["dataset"].to_numpy(), y=frame[sar].to_numpy()),
        go.Bar(name="WAR", x=frame["dataset"].to_numpy(), y=frame[war].to_numpy()),
    ])
    figure.update_layout(barmode="group", title=title, yaxis_title="Spearman ρ", xaxis_title="dataset")
    return figure


def gamma_figure(points: pd.DataFrame, title: str = "Γ against γ") -> go.Figure:
    """Fig. 4 left: Γ against γ for each (model, dataset) point, one colour per dataset,
    with the line Γ = γ (Γ ≈ γ away from random accuracy). ``points``: columns
    ``dataset, gamma, Gamma`` (fractions) and optionally ``model`` (hover text)."""
    names = points["model"].to_numpy() if "model" in points.columns else None
    gamma, Gamma = points["gamma"].to_numpy(float), points["Gamma"].to_numpy(float)
    figure = go.Figure()
    for dataset, color in _colors(points["dataset"]).items():
        rows = points["dataset"].eq(dataset).to_numpy()
        figure.add_trace(go.Scatter(
            x=gamma[rows], y=Gamma[rows], mode="markers", name=str(dataset), marker={"color": color},
            text=None if names is None else names[rows],
            hovertemplate=None if names is None else "%{text}<br>γ=%{x:.3f}, Γ=%{y:.3f}",
        ))
    top = max(1.0, float(np.nanmax([*gamma, *Gamma], initial=0.0)))
    figure.add_trace(go.Scatter(x=[0, top], y=[0, top], mode="lines", name="Γ = γ",
                                line={"dash": "dash", "color": "gray"}))
    figure.update_layout(title=title, xaxis_title="γ (relative robustness)",
                         yaxis_title="Γ (improved relative robustness)")
    return figure


def gap_factor_figure(gap: Sequence[float], alpha: float = DEFAULT_ALPHA) -> go.Figure:
    """Eq. 1's factor Γ/γ = 1 − exp(−αE²) against the accuracy gap E ∈ [0, 1] as a curve,
    with the results' own E values marked on it (Fig. 4 left's behaviour near random)."""
    gap = np.asarray(gap, float)
    curve = np.linspace(0.0, 1.0, 201)
    figure = go.Figure([
        go.Scatter(x=curve, y=improved_robustness(1.0, curve, alpha), mode="lines",
                   name="1 − exp(−αE²)", line={"color": "black"}),
        go.Scatter(x=gap, y=improved_robustness(1.0, gap, alpha), mode="markers", name="results' E",
                   marker={"color": "gray", "size": 5}),
    ])
    figure.update_layout(title=f"Γ / γ against the accuracy gap E, α = {alpha:g}",
                         xaxis={"title": "E = A_HR − 1/C", "range": [0, 1]}, yaxis_title="Γ / γ")
    return figure


def weights_figure(weights: pd.DataFrame, title: str = "WAR dataset weights") -> go.Figure:
    """Fig. 4 right: the dataset weights (columns ``dataset, weight``) as a pie."""
    figure = go.Figure(go.Pie(
        labels=weights["dataset"].to_numpy(), values=weights["weight"].to_numpy(), sort=False,
        textinfo="label+percent", hovertemplate="%{label}: w=%{value:.4f}<extra></extra>"))
    figure.update_layout(title=title)
    return figure


def accuracy_figure(frame: pd.DataFrame, title: str = "Top-1 accuracy against resolution") -> go.Figure:
    """Fig. 1: one panel per family; its models as light lines, the family mean dark.
    ``frame``: ``model, family, resolution`` (ordered categorical), ``ACC`` (percent).
    The models of a family are line pieces of one trace, separated by gaps."""
    families = list(pd.unique(frame["family"]))
    columns = min(FACET_COLUMNS, len(families))
    rows = math.ceil(len(families) / columns)
    figure = make_subplots(rows=rows, cols=columns, subplot_titles=[str(f) for f in families],
                           shared_yaxes=True, vertical_spacing=0.25 / rows)
    resolutions = list(frame["resolution"].cat.categories)
    colors = _colors(families)
    for i, family in enumerate(families):
        cells = frame[frame["family"].eq(family)].sort_values(["model", "resolution"], kind="stable")
        breaks = cells["model"].ne(cells["model"].shift(-1)).to_numpy()  # last point of each model
        position = np.arange(len(cells)) + np.cumsum(breaks) - breaks  # room for a gap after each model
        size = len(cells) + int(breaks.sum())
        x, y, text = (np.full(size, None, dtype=object) for _ in range(3))
        x[position] = cells["resolution"].astype(str).to_numpy()
        y[position] = cells["ACC"].to_numpy()
        text[position] = cells["model"].to_numpy()
        row, col = divmod(i, columns)
        figure.add_trace(go.Scatter(
            x=x, y=y, text=text, mode="lines", name=f"{family} models", legendgroup=str(family),
            line={"color": _translucent(colors[family], 0.35), "width": 1}, connectgaps=False,
            hovertemplate="%{text}<br>%{x}: %{y:.1f}%<extra></extra>",
        ), row=row + 1, col=col + 1)
        mean = cells.groupby("resolution", observed=True)["ACC"].mean()
        figure.add_trace(go.Scatter(
            x=mean.index.astype(str).to_numpy(), y=mean.to_numpy(), mode="lines+markers",
            name=f"{family} mean", legendgroup=str(family), line={"color": colors[family], "width": 3},
        ), row=row + 1, col=col + 1)
    figure.update_xaxes(type="category", categoryorder="array", categoryarray=resolutions)
    figure.update_yaxes(title_text="top-1 (%)", col=1)
    figure.update_layout(title=title, height=max(350, 300 * rows))
    return figure


def size_figure(frame: pd.DataFrame, metric: str) -> go.Figure:
    """Fig. 5 right: ``metric`` (percent) against model size, one colour per family
    (columns ``model, family, params_m, <metric>``); rows without a known size are left out."""
    known = frame.dropna(subset=["params_m"])
    figure = go.Figure()
    for family, color in _colors(known["family"]).items():
        rows = known[known["family"].eq(family)]
        figure.add_trace(go.Scatter(
            x=rows["params_m"].to_numpy(), y=rows[metric].to_numpy(), text=rows["model"].to_numpy(),
            mode="markers", name=str(family), marker={"color": color, "size": 9},
            hovertemplate="%{text}<br>%{x:.0f}M params, %{y:.1f}%<extra></extra>",
        ))
    figure.update_layout(title=f"{metric} against model size", xaxis_title="parameters (millions, log scale)",
                         yaxis_title=f"{metric} (%)")
    figure.update_xaxes(type="log")
    return figure


def metrics_by_resolution(frame: pd.DataFrame, series: str, metrics: Sequence[str], dash: str | None = None,
                          color: str | None = None, title: str | None = None) -> go.Figure:
    """One panel per metric: the metric against ``resolution`` for each ``series`` value
    (and ``dash`` value, e.g. vanilla vs LR-TK0), coloured by ``color`` (default the series).
    For the paper's tables, whose scores are printed in percent."""
    figure = make_subplots(rows=1, cols=len(metrics), subplot_titles=list(metrics))
    keys = [series] + ([dash] if dash else [])
    colors = _colors(frame[color or series])
    dashes = {v: DASHES[i % len(DASHES)] for i, v in enumerate(pd.unique(frame[dash]))} if dash else {}
    resolutions = [str(r) for r in sorted(pd.unique(frame["resolution"]))]
    for group, rows in frame.groupby(keys, sort=False, dropna=False):
        name = " · ".join(str(g) for g in group)
        rows = rows.sort_values("resolution")
        style = {"color": colors[rows[color or series].iloc[0]]}
        if dash:
            style["dash"] = dashes[group[1]]
        for i, metric in enumerate(metrics):
            shown = rows.dropna(subset=[metric])
            figure.add_trace(go.Scatter(
                x=shown["resolution"].astype(str).to_numpy(), y=shown[metric].to_numpy(), mode="lines+markers",
                name=name, legendgroup=name, showlegend=i == 0, line=style,
            ), row=1, col=i + 1)
    figure.update_xaxes(type="category", categoryorder="array", categoryarray=resolutions, title_text="resolution")
    figure.update_layout(title=title)
    return figure


def _ablation_settings(table: pd.DataFrame) -> pd.DataFrame:
    """Table 5 rows named by their flags, e.g. 'frozen + LR tokens + CL'."""
    names = np.where(table["frozen"], "frozen", "fine-tuned")
    for flag, label in (("lr_tokens", " + LR tokens"), ("classifier", " + CL")):
        names = names + np.where(table[flag], label, "")
    return table.assign(setting=names)


def _random_prediction_points(table: pd.DataFrame) -> pd.DataFrame:
    """Table 9 (percent) as gamma_figure points (fractions)."""
    return pd.DataFrame({
        "model": table["model"] + " @ " + table["resolution"].astype(str), "dataset": table["dataset"],
        "gamma": table["gamma"] / 100, "Gamma": table["improved_gamma"] / 100,
    })


# Paper table number -> its figures (Table 7, dataset statistics, has none).
PAPER_TABLE_FIGURES: dict[int, Callable[[pd.DataFrame], list[go.Figure]]] = {
    2: lambda t: [metrics_by_resolution(t, "backbone", ("SAR", "WAR", "ACC"), dash="method",
                                        title="Table 2: vanilla vs LR-TK0")],
    3: lambda t: [metrics_by_resolution(t, "method", ("SAR", "WAR", "ACC"), title="Table 3: SR methods")],
    4: lambda t: [metrics_by_resolution(t, "method", ("WAR",), title="Table 4: zero-shot techniques")],
    5: lambda t: [metrics_by_resolution(_ablation_settings(t), "setting", ("SAR", "WAR"), title="Table 5: ablation")],
    6: lambda t: [metrics_by_resolution(t, "row_label", ("WAR",), title="Table 6: multi-scale buckets")],
    9: lambda t: [gamma_figure(_random_prediction_points(t), title="Table 9: Γ against γ near random accuracy"),
                  gap_factor_figure((t["acc_224"] - t["acc_rand"]) / 100, alpha=200.0)],
    10: lambda t: [metrics_by_resolution(t[t["resolution"] < 224], "backbone", ("SAR", "WAR"), color="architecture",
                                         title="Table 10: CNN vs ViT backbones of CLIP")],
    11: lambda t: [weights_figure(t, title="Table 11: WAR-16 weights (Fig. 4 right)"),
                   spearman_figure(t, sar="SAR16_correlation", war="WAR16_correlation",
                                   title="Table 11: Spearman correlation per dataset (Fig. 5 left)")],
    12: lambda t: [metrics_by_resolution(t, "method", ("SAR", "WAR", "ACC"), title="Table 12: SR methods")],
    13: lambda t: [metrics_by_resolution(t, "method", ("top1", "top5"), title="Table 13: diffusion SR on Pets")],
    14: lambda t: [metrics_by_resolution(t.astype({"block": str}), "block", ("SAR", "WAR"),
                                         title="Table 14: first block with LR tokens")],
}


def paper_table_figures(number: int, table: pd.DataFrame) -> list[go.Figure]:
    """The figures for paper table ``number`` (as loaded by ``load_paper_table``); [] when
    the table has no chart."""
    build = PAPER_TABLE_FIGURES.get(number)
    return [] if build is None else build(table)
