"""``lr0fm bench``: resumable zero-shot sweeps over models x datasets x resolutions into a DuckDB file.

This package's top level is torch-free (the results database, for the leaderboard and
``lr0fm export``); the sweep itself is :mod:`lr0fm_core.bench.runner`.
"""

from .results_db import (
    ResultsDbError,
    display_model_name,
    export_results,
    read_predictions,
    read_results_database,
    read_results_db,
    read_runs,
    read_top1_correct,
    write_runs,
)

__all__ = [
    "ResultsDbError", "display_model_name", "export_results", "read_predictions", "read_results_database",
    "read_results_db", "read_runs", "read_top1_correct", "write_runs",
]
