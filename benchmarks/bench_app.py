"""Server time of the resolution explorer's rerun after the slider moves (issue 3's goal: < 100 ms).

    python benchmarks/bench_app.py [--model lr0fm-tiny-ViT] [--labels custom] [--cycles 5] [--threads 2]

Runs app.py with AppTest (random-init weights, the first gallery photo), opens the explorer, then
moves the slider through every stop ``--cycles`` times and times each rerun (the whole script:
sidebar, cached model/head/sweep lookups, previews, charts, table, downloads). The first cycle
also computes each stop's previews; later cycles find them cached. Prints medians in milliseconds.
``--labels`` is a dataset id (e.g. ``imagenet``; the first pass then builds its zero-shot head) or
``custom`` (the default list: CIFAR-10's 10 classes). Random-init weights time the same work as trained ones.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app.py"
ENTRY = f"import runpy; runpy.run_path({str(APP)!r}, run_name='__main__')"  # see tests/test_page_explorer.py
PAGE = str(APP.parent / "pages" / "1_Resolution_explorer.py")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="lr0fm-tiny-ViT", help="registry key or open_clip name")
    parser.add_argument("--labels", default="custom")
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    os.environ.update(LR0FM_RANDOM_INIT="1", LR0FM_APP_MODEL=args.model, LR0FM_DEVICE="cpu")
    os.environ.setdefault("LR0FM_CACHE_DIR", tempfile.mkdtemp(prefix="lr0fm-bench-"))

    import torch
    from streamlit.testing.v1 import AppTest

    torch.set_num_threads(args.threads)
    app = AppTest.from_string(ENTRY, default_timeout=1800)
    app.session_state["explore_labels"] = args.labels
    start = time.perf_counter()
    app.run()
    home_s = time.perf_counter() - start
    start = time.perf_counter()
    app.switch_page(PAGE).run()
    first_s = time.perf_counter() - start
    if app.exception or app.error:
        raise SystemExit(f"the explorer failed: {[e.value for e in app.exception or app.error]}")

    from lr0fm_core.explore import slider_stops
    from lr0fm_core.ui.session import STATUS_KEY

    stops = slider_stops(app.session_state[STATUS_KEY].loaded.resolution)
    cold, warm = [], []
    for cycle in range(args.cycles):
        for stop in stops:
            start = time.perf_counter()
            app.select_slider(key="explore_resolution").set_value(stop).run()
            (cold if cycle == 0 else warm).append(time.perf_counter() - start)
            if app.exception:
                raise SystemExit(f"the rerun at {stop} failed: {app.exception[0].value}")
    print(f"model {args.model} (random init), labels {args.labels}, {len(stops)} stops, torch threads {args.threads}")
    print("| step | time |\n|---|---|")
    print(f"| app start (imports, model load, home page) | {home_s:.2f} s |")
    print(f"| explorer first pass (head, one batched sweep of all stops) | {first_s:.2f} s |")
    print(f"| slider rerun, stop seen for the first time (median of {len(cold)}) | "
          f"{1000 * statistics.median(cold):.0f} ms |")
    if warm:
        print(f"| slider rerun, stop seen before (median of {len(warm)}) | {1000 * statistics.median(warm):.0f} ms |")


if __name__ == "__main__":
    main()
