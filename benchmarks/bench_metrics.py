"""Timing of the metrics package on a paper-sized grid (66 models × 15 datasets × HR + 4
low resolutions). The accuracies are SYNTHETIC random numbers for timing only: they are
never saved and mean nothing.

    python benchmarks/bench_metrics.py [--repeats 50]   # after `pip install -e .`, or with PYTHONPATH=.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd

from lr0fm_core.metrics import metrics_report, optimize_weights, summarize

N_MODELS = 66
LOW_RESOLUTIONS = (16, 32, 64, 128)
N_CLASSES = {
    "imagenet": 1000, "imagenet_a": 200, "imagenet_v2": 1000, "imagenet_r": 200, "imagenet_sketch": 1000,
    "caltech101": 101, "dtd": 47, "food101": 101, "sun397": 397, "cars": 196, "fgvc_aircraft": 100,
    "pets": 37, "flowers102": 102, "eurosat": 10, "ucf101": 101,
}


def synthetic_table(seed: int = 0) -> pd.DataFrame:
    """SYNTHETIC random accuracies on the paper's grid, for timing only."""
    rng = np.random.default_rng(seed)
    models = np.repeat([f"synthetic_model_{i}" for i in range(N_MODELS)], len(N_CLASSES))
    datasets = np.tile(list(N_CLASSES), N_MODELS)
    acc_hr = rng.uniform(0.05, 0.95, len(models))
    frames = [pd.DataFrame({"model": models, "dataset": datasets, "resolution": "hr", "top1": acc_hr})]
    for resolution in LOW_RESOLUTIONS:
        frames.append(pd.DataFrame({"model": models, "dataset": datasets, "resolution": resolution,
                                    "top1": acc_hr * rng.uniform(0.05, 1.0, len(models))}))
    table = pd.concat(frames, ignore_index=True)
    return table.assign(n_classes=table["dataset"].map(N_CLASSES))


def median_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    table = synthetic_table()
    rows = [  # (operation, median seconds, target seconds)
        ("summarize (validation included)",
         median_seconds(lambda: summarize(table, 16, weights="paper"), args.repeats), 0.020),
        ("metrics_report (validation included)",
         median_seconds(lambda: metrics_report(table, 16, weights="paper"), args.repeats), 0.020),
        ("optimize_weights (default settings)", median_seconds(lambda: optimize_weights(table, 16), 3), 10.0),
    ]
    print(f"synthetic table: {len(table)} rows ({N_MODELS} models × {len(N_CLASSES)} datasets × "
          f"{1 + len(LOW_RESOLUTIONS)} resolutions)\n")
    print("| operation | median | target | ok |\n|---|---:|---:|:---:|")
    for name, seconds, target in rows:
        shown = f"{seconds * 1e3:.1f} ms" if target < 1 else f"{seconds:.2f} s"
        goal = f"{target * 1e3:.0f} ms" if target < 1 else f"{target:.0f} s"
        print(f"| {name} | {shown} | {goal} | {'yes' if seconds < target else 'NO'} |")


if __name__ == "__main__":
    main()
