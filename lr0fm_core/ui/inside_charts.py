"""Plotly figures of the "Inside the model" page (drawing only; the numbers come from :mod:`lr0fm_core.inside`)."""

from __future__ import annotations

import importlib.util
from typing import Sequence

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

HEATMAP_SCALE = "Viridis"  # bright = similar, as in Fig. 7 right
CLASS_COLORS = px.colors.qualitative.Dark24  # distinct hues for up to 24 classes
PANEL_MARGIN = {"l": 10, "r": 10, "t": 40, "b": 10}


def png_export_available() -> bool:
    """Whether plotly can write PNG files here (it needs the kaleido package and a Chrome/Chromium)."""
    return importlib.util.find_spec("kaleido") is not None


def heatmap_figure(matrix: np.ndarray, layer_names: Sequence[str], title: str,
                   zrange: tuple[float, float]) -> go.Figure:
    """Layers of the n×n model (rows, top = patch embedding) against the HR model's (columns)."""
    ticks = [name.replace("block_", "") if name.startswith("block_") else "emb" for name in layer_names]
    figure = go.Figure(go.Heatmap(
        z=matrix, x=ticks, y=ticks, colorscale=HEATMAP_SCALE, zmin=zrange[0], zmax=zrange[1],
        hovertemplate="n×n layer %{y} · HR layer %{x}<br>similarity %{z:.3f}<extra></extra>",
        colorbar={"thickness": 10}))
    figure.update_layout(title={"text": title, "font": {"size": 14}}, height=330, margin=PANEL_MARGIN,
                         xaxis={"title": "HR layer", "type": "category"},
                         yaxis={"title": "n×n layer", "type": "category", "autorange": "reversed"})
    return figure


def diagonal_figure(diagonal: pd.DataFrame, measure_label: str) -> go.Figure:
    """Layer i (n×n) vs layer i (HR), one line per resolution (dashed per ``variant``, e.g. with LR tokens,
    where that column holds more than one value): low on the left = early layers suffer more."""
    frame = diagonal.assign(resolution=diagonal["resolution"].map(lambda r: f"{r}×{r}"))
    dashed = "variant" in frame and frame["variant"].nunique() > 1
    figure = px.line(frame, x="depth", y="similarity", color="resolution", line_dash="variant" if dashed else None,
                     markers=True, hover_data={"layer": True},
                     labels={"depth": "layer depth (0 = patch embedding)", "similarity": measure_label})
    figure.update_layout(title={"text": "Same layer, n×n vs HR (the heatmaps' diagonals)", "font": {"size": 14}},
                         height=360, margin=PANEL_MARGIN, legend={"title": "input"})
    return figure


def tsne_figure(points: pd.DataFrame, title: str) -> go.Figure:
    """One resolution's t-SNE map, points coloured by class (Fig. 8)."""
    figure = px.scatter(points, x="x", y="y", color="label", hover_data={"image": True, "x": False, "y": False},
                        category_orders={"label": sorted(points["label"].unique())},
                        color_discrete_sequence=CLASS_COLORS)
    figure.update_traces(marker={"size": 7, "opacity": 0.85})
    figure.update_layout(title={"text": title, "font": {"size": 14}}, height=340, margin=PANEL_MARGIN,
                         xaxis={"visible": False}, yaxis={"visible": False}, legend={"title": "class"})
    return figure


def dataset_map_figure(embedding: pd.DataFrame, resolution) -> go.Figure:
    """Datasets placed by their Γ vectors over models (Fig. 7 middle), coloured by mean Γ."""
    figure = px.scatter(embedding, x="x", y="y", text="dataset", color="mean_Gamma", color_continuous_scale="Viridis",
                        hover_data={"x": False, "y": False, "models": True})
    figure.update_traces(textposition="top center", marker={"size": 12})
    figure.update_layout(title={"text": f"Datasets by their robustness Γ at {resolution} over "
                                        f"{int(embedding['models'].iloc[0])} models", "font": {"size": 14}},
                         height=460, margin=PANEL_MARGIN, xaxis={"visible": False}, yaxis={"visible": False},
                         coloraxis_colorbar={"title": "mean Γ"})
    return figure
