"""Plotly figures of the resolution explorer (drawing only; the numbers come from :mod:`lr0fm_core.explore`).

Each figure is built in one call from plain dicts: plotly's incremental ``update_layout``/``add_vline``
cost several times more, and the explorer redraws on every slider move.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from ..explore import stop_label
from ..resolution import Resolution

PROB_COLOR, RANK_COLOR, CHANGE_COLOR = "#1f77b4", "#ff7f0e", "#d62728"
MARGIN = {"l": 10, "r": 10, "t": 10, "b": 40}


def topk_figure(topk: pd.DataFrame) -> go.Figure:
    """Horizontal bars of a top-k table (rank, label, prob), rank 1 on top."""
    names = [f"{rank}. {label}" for rank, label in zip(topk["rank"], topk["label"])]  # labels may repeat
    bars = go.Bar(x=topk["prob"], y=names, orientation="h", marker_color=PROB_COLOR,
                  text=[f"{p:.1%}" for p in topk["prob"]], textposition="auto")
    return go.Figure(bars, layout={
        "xaxis": {"title": {"text": "probability"}, "range": [0, 1], "tickformat": ".0%"},
        "yaxis": {"autorange": "reversed"}, "height": 60 + 40 * len(topk), "margin": MARGIN,
    })


def label_trace_figure(trace: pd.DataFrame, label: str, first_change: Resolution | None) -> go.Figure:
    """Probability (left axis) and rank (right axis, log, 1 on top) of one label at every resolution.

    ``first_change`` is marked with a dashed line: there the label stops being top-1, going down from HR.
    """
    stops = [stop_label(r) for r in trace["resolution"]]
    marks = {}
    if first_change is not None:
        x = stops.index(stop_label(first_change))
        marks = {
            "shapes": [{"type": "line", "xref": "x", "yref": "paper", "x0": x, "x1": x, "y0": 0, "y1": 1,
                        "line": {"color": CHANGE_COLOR, "dash": "dash"}}],
            "annotations": [{"xref": "x", "yref": "paper", "x": x, "y": 1, "yanchor": "bottom", "showarrow": False,
                             "text": "top-1 changes", "font": {"color": CHANGE_COLOR}}],
        }
    return go.Figure(
        [go.Scatter(x=stops, y=trace["prob"], name="probability", mode="lines+markers", line_color=PROB_COLOR),
         go.Scatter(x=stops, y=trace["rank"], name="rank", mode="lines+markers", yaxis="y2",
                    line={"color": RANK_COLOR, "dash": "dot"})],
        layout={
            "title": {"text": f"HR top-1 label “{label}” across resolutions", "font": {"size": 14}},
            "xaxis": {"title": {"text": "input resolution (px, shorter side; ★ = the paper's)"}, "type": "category"},
            "yaxis": {"title": {"text": "probability"}, "range": [0, 1.02], "tickformat": ".0%"},
            "yaxis2": {"title": {"text": "rank"}, "overlaying": "y", "side": "right", "type": "log",
                       "autorange": "reversed"},
            "legend": {"orientation": "h", "y": -0.3}, "height": 360, "margin": {**MARGIN, "t": 50}, **marks,
        },
    )
