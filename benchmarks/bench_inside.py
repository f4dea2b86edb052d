"""Speed of the "Inside the model" analyses on a random-init ViT-B-32 (issue 6's goals).

    python benchmarks/bench_inside.py [--threads 2] [--points 1000]

1. One photo: the N + 1 layer features at 16, 32, 64, 128 px and HR (the paper's pipeline, one
   forward per resolution, all tokens) and the 4-resolution similarity grid (13 × 13 layers each),
   for the L2 similarity and for linear CKA. Goal: under 3 s.
2. t-SNE (PCA to 50 dims first) of 1,000 image features (512-d, 10 classes) and their silhouette.
   Goal: under 15 s.

Random-init weights time the same arithmetic as trained ones. The machine may be shared: the load
average is printed with the table. Prints a markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time

import numpy as np
import torch

from markdown_table import print_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("LR0FM_CACHE_DIR", tempfile.mkdtemp(prefix="lr0fm-bench-"))

    from lr0fm_core import gallery
    from lr0fm_core.inside import cluster_separation, similarity_grid, tsne_embedding
    from lr0fm_core.inside.features import extract_features
    from lr0fm_core.models.loading import load_model

    loaded = load_model("ViT-B-32", "none", device="cpu")
    photo = gallery.get_photo("imagenet_bald_eagle.jpg").read_image()
    resolutions = [16, 32, 64, 128, "hr"]
    rows = []
    for measure in ("l2", "cka"):
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            layers = {r: extract_features(loaded, [photo], r, tokens="all").layers for r in resolutions}
            grid = similarity_grid(layers, "hr", measure)
            times.append(time.perf_counter() - start)
        shape = next(iter(grid.values())).shape
        rows.append((f"one photo: layer features at 5 resolutions + 4 similarity matrices {shape[0]}×{shape[1]} "
                     f"({measure})", f"{statistics.median(times):.2f} s", f"median of {len(times)}", "< 3 s"))

    rng = np.random.default_rng(0)
    centers = rng.normal(size=(10, 512))
    labels = np.repeat(np.arange(10), args.points // 10)
    features = centers[labels] + rng.normal(size=(len(labels), 512)) * 1.5
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    start = time.perf_counter()
    tsne_embedding(features)
    tsne_s = time.perf_counter() - start
    start = time.perf_counter()
    silhouette = cluster_separation(features, labels)
    silhouette_s = time.perf_counter() - start
    rows.append((f"t-SNE of {len(labels):,} features (512-d, PCA to 50)", f"{tsne_s:.1f} s", "one run", "< 15 s"))
    rows.append((f"silhouette of {len(labels):,} features (cosine)", f"{silhouette_s * 1000:.0f} ms",
                 f"score {silhouette:.2f}", "-"))

    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{args.threads} threads; load average (1, 5, 15 min) at the end: {load}\n")
    print_table(("measurement", "result", "detail", "goal"), rows)


if __name__ == "__main__":
    main()
