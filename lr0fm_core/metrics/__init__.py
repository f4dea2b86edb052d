"""Robustness metrics of LR0.FM (Sec. 3): γ, Γ (Eq. 1), ACC-n, SAR-n, WAR-n with dataset
weights (Table 11) and their optimization (Eq. 2). Pure numpy / pandas / scipy."""

from .aggregate import (
    RobustnessGrid,
    Summary,
    model_ranks,
    robustness_grid,
    spearman_per_dataset,
    summarize,
    weighted_aggregated_robustness,
)
from .optimize import PAPER_OBJECTIVE, WeightOptimization, optimize_weights
from .report import metrics_report
from .hr_correct import hr_correct_robustness, hr_correct_summary
from .robustness import (
    DEFAULT_ALPHA,
    accuracy_gap,
    improved_robustness,
    per_dataset_robustness,
    relative_robustness,
)
from .table import (
    HR,
    REQUIRED_COLUMNS,
    ResultsTableError,
    parse_resolution,
    read_results_table,
    validate_results_table,
)
from .weights import PAPER_WAR16_WEIGHTS, WEIGHT_PRESETS, WeightsError, load_weights

__all__ = [
    "DEFAULT_ALPHA", "HR", "PAPER_OBJECTIVE", "PAPER_WAR16_WEIGHTS", "REQUIRED_COLUMNS",
    "WEIGHT_PRESETS", "ResultsTableError", "RobustnessGrid", "Summary", "WeightOptimization",
    "WeightsError", "accuracy_gap", "hr_correct_robustness", "hr_correct_summary", "improved_robustness", "load_weights", "metrics_report",
    "model_ranks", "optimize_weights", "parse_resolution", "per_dataset_robustness",
    "read_results_table", "relative_robustness", "robustness_grid", "spearman_per_dataset",
    "summarize", "validate_results_table", "weighted_aggregated_robustness",
]
