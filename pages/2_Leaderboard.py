"""Leaderboard: the paper's published tables, and SAR / WAR / ACC rankings (Sec. 3) of a
per-dataset results table with editable WAR dataset weights (Table 11, Eq. 2)."""

import hashlib
from pathlib import Path

import pandas as pd
import streamlit as st

from lr0fm_core import leaderboard as lb
from lr0fm_core.metrics import DEFAULT_ALPHA, REQUIRED_COLUMNS, optimize_weights
from lr0fm_core.paper_tables import list_paper_tables, load_paper_table
from lr0fm_core.ui import ensure_app_shell, shown_errors
from lr0fm_core.ui import leaderboard_charts as charts

ensure_app_shell()

PERCENT = st.column_config.NumberColumn(format="%.1f")


@st.cache_data(show_spinner=False, max_entries=16)
def load_run(path: str, modified: float) -> pd.DataFrame:
    return lb.read_results_file(path)


@st.cache_data(show_spinner=False)
def load_upload(data: bytes, name: str) -> pd.DataFrame:
    return lb.read_uploaded_table(data, name)


@st.cache_resource(show_spinner=False)
def paper_figures(number: int) -> list:
    return charts.paper_table_figures(number, load_paper_table(number))


# Figures that do not depend on the weights, cached per results table (``source``).
@st.cache_resource(max_entries=16, show_spinner=False)
def gamma_figures(source: str, resolution: int, alpha: float, _per_dataset: pd.DataFrame) -> tuple:
    points = lb.gamma_points(_per_dataset)
    return charts.gamma_figure(points), charts.gap_factor_figure(points["gap"], alpha)


@st.cache_resource(max_entries=16, show_spinner=False)
def accuracy_figure(source: str, dataset: str | None, _table: pd.DataFrame):
    return charts.accuracy_figure(lb.accuracy_by_resolution(_table, dataset))


def show_paper_tables() -> None:
    with shown_errors("Cannot show the paper's tables", stop=False):
        tables = {f"Table {t.number}: {t.title}": t for t in list_paper_tables()}
        table = tables[st.selectbox("Paper table", list(tables))]
        st.caption(table.caption)
        st.dataframe(load_paper_table(table.number), hide_index=True)
        for i, figure in enumerate(paper_figures(table.number)):
            st.plotly_chart(figure, key=f"paper_{table.number}_{i}")
        for note in table.notes:
            st.caption(f"Note: {note}")


def show_how_to() -> None:
    optional = "\n".join(f"- `{name}`: {meaning}" for name, meaning in lb.OPTIONAL_COLUMNS.items())
    st.info(
        f"No per-dataset results table is loaded. A results table is a CSV with one row per "
        f"(model, dataset, resolution) and the columns `{', '.join(REQUIRED_COLUMNS)}`: `resolution` is "
        f"`hr` (the model's native resolution) or a side length n such as 16; `top1` is the accuracy as a "
        f"fraction in [0, 1]; `n_classes` the dataset's number of classes. Every (model, dataset) needs an "
        f"`hr` row. Optional columns:\n{optional}\n\n"
        f"The page also opens `lr0fm bench` results databases (`.duckdb`) directly. Results files in "
        f"`{lb.runs_dir()}` are listed here (set `{lb.ENV_RUNS_DIR}` to use another folder), e.g. after "
        f"`lr0fm bench ... --db {lb.runs_dir() / 'results.duckdb'}`; or upload one, or give its path, above. "
        f"The paper's own tables are in the other tab."
    )
    st.code("model,dataset,resolution,top1,n_classes\nclip-vit-b-32,eurosat,hr,0.45,10\n"
            "clip-vit-b-32,eurosat,16,0.21,10", language="csv")


def load_results() -> tuple[pd.DataFrame, str] | None:
    """The chosen results table and an id of its source, or None (after saying why)."""
    uploaded = st.file_uploader("Upload a per-dataset results CSV or a `lr0fm bench` database",
                                type=list(lb.RESULTS_READERS))
    typed = st.text_input("…or open a results file by path", placeholder="results.duckdb or table.csv").strip()
    typed_file = {f"path: {typed}": Path(typed).expanduser()} if typed else {}
    listed = {str(path.relative_to(lb.runs_dir())): path for path in lb.list_runs()}
    runs = {**listed, **typed_file}
    choices = [*typed_file, *([f"uploaded: {uploaded.name}"] if uploaded else []), *listed]
    if not choices:
        show_how_to()
        return None
    choice = st.selectbox("Results table", choices)
    with shown_errors("Cannot use this results table", stop=False):
        if choice in runs:
            path = runs[choice]
            modified = path.stat().st_mtime if path.is_file() else 0.0  # a sweep's new rows show on rerun
            return load_run(str(path), modified), f"{path}@{modified}"
        data = uploaded.getvalue()
        return load_upload(data, uploaded.name), f"upload:{hashlib.sha1(data).hexdigest()}"
    show_how_to()
    return None


def edit_weights(table: pd.DataFrame, source: str, resolution: int, alpha: float) -> dict[str, float]:
    """Preset choice, the optimizer button and the weights editor; returns the edited weights."""
    preset = st.radio("WAR dataset weights", list(lb.WEIGHT_PRESET_LABELS), horizontal=True,
                      format_func=lb.WEIGHT_PRESET_LABELS.get)
    optimized = st.session_state.setdefault("leaderboard_optimized", {})
    run_key = (source, resolution, alpha)
    if preset == "optimized" and st.button("Optimize weights (Eq. 2)"):
        with st.spinner("Searching weights that maximize Eq. 2 ..."), \
                shown_errors("Cannot optimize the weights", stop=False):
            optimized[run_key] = optimize_weights(table, resolution, alpha)
    result = optimized.get(run_key) if preset == "optimized" else None
    if result is not None:
        columns = st.columns(3)
        columns[0].metric("Eq. 2 objective, optimized", f"{result.objective:.3f}")
        columns[1].metric("uniform weights", f"{result.objective_uniform:.3f}")
        paper = "n/a" if result.objective_paper is None else f"{result.objective_paper:.3f}"
        columns[2].metric("paper weights (Table 11)", paper)
        if result.dropped:
            st.caption(f"Eq. 2 datasets absent from this table, left out of the objective: {', '.join(result.dropped)}")
    base = lb.preset_weights(preset, lb.datasets_at(table, resolution), result and result.weights)
    if base.note:
        st.info(base.note)
    edited = st.data_editor(
        base.frame, key="weights_" + hashlib.sha1(base.frame.to_json().encode()).hexdigest()[:16],
        hide_index=True, disabled=["dataset", "source"],
        column_config={"weight": st.column_config.NumberColumn(min_value=0.0, step=0.01, format="%.4f")},
    )
    return lb.weights_from_editor(edited)


def show_results() -> None:
    loaded = load_results()
    if loaded is None:
        return
    table, source = loaded
    untrained = lb.untrained_models(table)
    if untrained:
        st.warning(lb.untrained_warning(untrained))
    with shown_errors("Cannot rank the models"):
        resolutions = lb.low_resolutions(table)
    left, middle, right = st.columns(3)
    resolution = left.selectbox("Resolution n (n×n)", resolutions)
    alpha = middle.number_input("α of Eq. 1", min_value=1.0, max_value=10_000.0, value=DEFAULT_ALPHA, step=10.0)
    metric = right.radio("Rank by", lb.RANK_METRICS, horizontal=True)
    weights = edit_weights(table, source, resolution, alpha)
    with shown_errors("Cannot rank the models"):
        board = lb.rank_models(table, resolution, alpha, weights, metric)

    st.subheader(f"Ranking by {metric}-{resolution}")
    st.caption("SAR, WAR and ACC in percent; 'vs SAR' is the move against the model's SAR rank.")
    st.dataframe(board.ranking.drop(columns="change_vs_sar"), hide_index=True, column_config={
        "trend": "vs SAR", "SAR": PERCENT, "WAR": PERCENT, "ACC": PERCENT,
        "params_m": st.column_config.NumberColumn("params (M)", format="%.0f"),
    })
    left, right = st.columns(2)
    left.download_button("Download the ranking (CSV)", lb.ranking_csv(board),
                         file_name=f"ranking_{metric}{resolution}.csv", mime="text/csv")
    right.download_button("Download the weights (JSON)", lb.weights_json(board),
                          file_name=f"war_weights_{resolution}.json", mime="application/json")

    st.plotly_chart(charts.spearman_figure(board.summary.datasets), key="spearman")
    st.plotly_chart(charts.weights_figure(board.summary.datasets), key="weights")
    left, right = st.columns(2)
    for column, figure, key in zip((left, right), gamma_figures(source, resolution, alpha, board.summary.per_dataset),
                                   ("gamma", "gap_factor")):
        column.plotly_chart(figure, key=key)
    dataset = st.selectbox("Accuracy of", [None, *pd.unique(table["dataset"])],
                           format_func=lambda d: "mean over datasets" if d is None else d)
    st.plotly_chart(accuracy_figure(source, dataset, table), key="accuracy")
    unsized = int(board.ranking["params_m"].isna().sum())
    if unsized < len(board.ranking):
        st.plotly_chart(charts.size_figure(board.ranking, metric), key="size")
    if unsized:
        st.caption(f"{unsized} model(s) have no known size: add a `params` column (millions) to plot them by size.")


st.title("Leaderboard")
results_tab, paper_tab = st.tabs(["Per-dataset results", "Paper tables"])
with paper_tab:
    show_paper_tables()
with results_tab:
    show_results()
