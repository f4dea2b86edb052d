"""Speed of the engine's hot paths on a random-init ViT-B-32 (issue 2's goals).

    python benchmarks/bench_engine.py [--classes 100] [--threads 2]

1. Zero-shot head, 100 ImageNet classes x 80 templates: lr0fm's batched, padding-cut encoder
   against open_clip's per-class loop (``build_zero_shot_classifier(num_classes_per_batch=1)``),
   checking both give the same head. Goal: at least 3x faster.
2. ``predict`` for one photo at 10 resolutions in one batched forward (goal <= 1.5 s), and the
   same call repeated (features cached; goal <= 50 ms).

Random-init weights time the same arithmetic as trained ones; no accuracy is measured here.
Prints a markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from markdown_table import print_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--parts", nargs="+", choices=["head", "predict"], default=["head", "predict"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("LR0FM_CACHE_DIR", tempfile.mkdtemp(prefix="lr0fm-bench-"))

    import open_clip

    from lr0fm_core.models.loading import load_model
    from lr0fm_core.zeroshot.labels import LabelSet, get_label_set

    loaded = load_model("ViT-B-32", "none", device="cpu")
    imagenet = get_label_set("imagenet")
    label_set = LabelSet("imagenet-100", imagenet.classnames[: args.classes], imagenet.templates)
    rows = []

    if "head" in args.parts:
        rows.append(_head_row(loaded, label_set))
    if "predict" in args.parts:
        rows.extend(_predict_rows(loaded))

    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
          f"{torch.__version__}, {args.threads} threads, open_clip {open_clip.__version__}\n")
    print_table(("measurement", "result", "detail", "goal"), rows)


def _head_row(loaded, label_set):
    import open_clip

    from lr0fm_core.zeroshot.head import build_zero_shot_head

    start = time.perf_counter()
    fast = build_zero_shot_head(loaded, label_set, use_cache=False).weights
    fast_s = time.perf_counter() - start
    templates = [lambda c, t=t: t.format(c=c) for t in label_set.templates]
    start = time.perf_counter()
    with torch.inference_mode():
        naive = open_clip.build_zero_shot_classifier(loaded.model, loaded.tokenizer, label_set.classnames, templates,
                                                     num_classes_per_batch=1, device="cpu", use_tqdm=False).T
    naive_s = time.perf_counter() - start
    same = torch.allclose(fast, naive, atol=1e-5)
    return (f"zero-shot head, {len(label_set.classnames)} classes x {len(label_set.templates)} templates",
            f"{fast_s:.1f} s", f"open_clip per-class loop {naive_s:.1f} s: {naive_s / fast_s:.1f}x faster "
            f"(heads equal: {same})", ">= 3x")


def _predict_rows(loaded):
    from lr0fm_core.predict import predict
    from lr0fm_core.zeroshot.head import build_zero_shot_head
    from lr0fm_core.zeroshot.labels import get_label_set

    rows = []
    photo = _photo()
    resolutions = [8, 12, 16, 24, 32, 48, 64, 96, 128, "hr"]
    head = build_zero_shot_head(loaded, get_label_set("imagenet"))  # not timed: built once per model
    cold = []
    for _ in range(3):
        loaded.feature_cache.clear()
        start = time.perf_counter()
        predict(loaded, head, photo, resolutions)
        cold.append(time.perf_counter() - start)
    warm = []
    for _ in range(20):
        start = time.perf_counter()
        predict(loaded, head, photo, resolutions)
        warm.append(time.perf_counter() - start)
    rows.append(("predict, 10 resolutions, one batched forward (1000 classes)",
                 f"{statistics.median(cold):.2f} s", f"median of {len(cold)}", "<= 1.5 s"))
    rows.append(("predict, same image and model again", f"{statistics.median(warm) * 1000:.1f} ms",
                 f"median of {len(warm)}", "<= 50 ms"))
    return rows


def _photo():
    from PIL import Image

    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "labeled_photos" / "imagenet"
    files = sorted(shared.glob("*.jpg"))
    if files:
        return Image.open(files[0]).convert("RGB")
    generator = torch.Generator().manual_seed(0)
    pixels = (torch.rand(480, 640, 3, generator=generator) * 255).to(torch.uint8).numpy()
    return Image.fromarray(pixels)


if __name__ == "__main__":
    main()
