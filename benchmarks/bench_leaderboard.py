"""Timing of the Leaderboard page's recompute on a paper-sized grid (66 models × 15 datasets
× HR + 4 low resolutions): the library path the page runs after a weight edit, the full
recompute (every chart rebuilt), and an AppTest rerun of the page after a weight edit.
The accuracies are SYNTHETIC random numbers for timing only: the table is written to a
temporary folder, never saved in the repository, and means nothing. The first 54 models
get the registry's keys (so families and sizes resolve), the other 12 are unknown names.

    python benchmarks/bench_leaderboard.py [--repeats 30]   # after `pip install -e .`, or with PYTHONPATH=.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from bench_metrics import median_seconds, synthetic_table

from lr0fm_core import leaderboard as lb
from lr0fm_core.metrics import validate_results_table
from lr0fm_core.models.registry import list_models
from lr0fm_core.ui import leaderboard_charts as charts

PAGE = Path(__file__).resolve().parents[1] / "pages" / "2_Leaderboard.py"
RESOLUTION, ALPHA = 16, 200.0


def leaderboard_table():
    """bench_metrics' synthetic grid with registry model keys where the registry has enough."""
    table = synthetic_table()
    names = {f"synthetic_model_{i}": spec.key for i, spec in enumerate(list_models())}
    return validate_results_table(table.assign(model=table["model"].replace(names)))


def after_weight_edit(table, editor):
    """What the page recomputes after a weight edit (weight-independent charts are cached)."""
    board = lb.rank_models(table, RESOLUTION, ALPHA, lb.weights_from_editor(editor), "WAR")
    charts.spearman_figure(board.summary.datasets)
    charts.weights_figure(board.summary.datasets)
    charts.size_figure(board.ranking, "WAR")
    lb.ranking_csv(board), lb.weights_json(board)
    return board


def full_recompute(table, editor):
    """Everything, as on a new table, resolution or α: also the cached Γ/γ and accuracy charts."""
    board = after_weight_edit(table, editor)
    points = lb.gamma_points(board.summary.per_dataset)
    charts.gamma_figure(points), charts.gap_factor_figure(points["gap"], ALPHA)
    charts.accuracy_figure(lb.accuracy_by_resolution(table))


def apptest_rerun_seconds(table, repeats: int) -> tuple[float, float]:
    """(first run, median rerun after editing one weight) of the page under AppTest."""
    import time

    from streamlit.testing.v1 import AppTest

    with tempfile.TemporaryDirectory() as folder:
        table.to_csv(Path(folder) / "synthetic.csv", index=False)
        os.environ[lb.ENV_RUNS_DIR] = folder
        at = AppTest.from_file(str(PAGE), default_timeout=120)
        start = time.perf_counter()
        at.run()
        first = time.perf_counter() - start
        if at.exception or at.error:
            raise RuntimeError(f"the page failed: {at.exception or at.error}")
        key = at.data_editor[0].key
        weights = iter(range(2, 2 + repeats))

        def edit_and_rerun():
            at.session_state[key] = {"edited_rows": {1: {"weight": float(next(weights))}},
                                     "added_rows": [], "deleted_rows": []}
            at.run()

        return first, median_seconds(edit_and_rerun, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    table = leaderboard_table()
    editor = lb.preset_weights("paper", lb.datasets_at(table, RESOLUTION)).frame
    full_recompute(table, editor)  # warm-up (imports, plotly validators)
    first, rerun = apptest_rerun_seconds(table, args.repeats)
    rows = [  # (operation, median seconds, target seconds or None)
        ("library path after a weight edit (rank_models + 3 charts + exports)",
         median_seconds(lambda: after_weight_edit(table, editor), args.repeats), 0.050),
        ("  of which rank_models (engine summarize + ranking)",
         median_seconds(lambda: lb.rank_models(table, RESOLUTION, ALPHA, None, "WAR"), args.repeats), None),
        ("full recompute (all charts rebuilt)", median_seconds(lambda: full_recompute(table, editor), args.repeats),
         None),
        ("AppTest: first run of the page (cold caches)", first, None),
        ("AppTest: rerun after a weight edit", rerun, None),
    ]
    print(f"synthetic table: {len(table)} rows ({table['model'].nunique()} models × "
          f"{table['dataset'].nunique()} datasets × {table['resolution'].nunique()} resolutions)\n")
    print("| operation | median | target | ok |\n|---|---:|---:|:---:|")
    for name, seconds, target in rows:
        goal, ok = ("–", "") if target is None else (f"{target * 1e3:.0f} ms", "yes" if seconds < target else "NO")
        print(f"| {name} | {seconds * 1e3:.1f} ms | {goal} | {ok} |")


if __name__ == "__main__":
    main()
