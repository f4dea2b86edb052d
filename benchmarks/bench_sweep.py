"""Speed of `lr0fm bench` (issue 4's goals) on a random-init ViT-B-32, CPU threads only.

    python benchmarks/bench_sweep.py [--images 500] [--threads 2] [--workers 0] [--batch-size 50]

The default run does about 6,300 ViT-B-32 forwards on CPU: about 7 minutes on a 2-core machine
(12 when other work shares it); --images 100 gives a first look in under 2 minutes.

Generates a folder of JPEGs (crops, flips and rescales of the shared labeled photos, ImageNet-like
sizes), then times over the same images and 5 resolutions (16 32 64 128 hr), interleaved in chunks
of images so that the load of a shared machine weighs on every path alike:

1. the ceiling: the model's forward throughput on ready tensors at the sweep's forward batch size
   (half as many views as the sweep, timed between its chunks);
2. the sweep (`lr0fm_core.bench.runner.evaluate`): each image decoded once, its 5 views made by the
   data loader (in worker processes with --workers > 0), one forward per batch of views. Goal:
   >= 80 % of the ceiling, in image-resolutions per second;
3. separate passes: one DataLoader pass per resolution, each decoding every image again, sharing
   the sweep's loaded model and head (same batch size): what the single decode alone buys;
4. the preprocessing alone (no model) of 2 and 3: what the single decode saves, and what bounds
   the throughput when a GPU makes the forward cheap.

Then, end to end, each in a fresh Python process with an empty cache, timed from launch to exit:
5. `lr0fm bench` over the folder at the 5 resolutions (into a new database), against
6. 5 per-resolution runs, the way per-resolution scripts work: each process imports torch, loads
   the model, builds the zero-shot head, decodes every image and evaluates one resolution
   (this file with --per-resolution-run). Goal: the sweep >= 1.3x faster end to end.
   --skip-end-to-end leaves 5 and 6 out.

Random-init weights time the same arithmetic as trained ones. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from markdown_table import print_table

RESOLUTIONS = (16, 32, 64, 128, "hr")
MODEL = "ViT-B-32"
PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "labeled_photos"


def make_image_folder(root: Path, n_images: int, seed: int = 0) -> Path:
    """``n_images`` JPEGs in one folder per class: random crops (60-100 %), flips and a shorter
    side of 300-500 px of the labeled ImageNet photos (ImageNet val is ~400 x 350 on average)."""
    from PIL import Image, ImageOps

    rows = list(csv.DictReader((PHOTOS / "labels.csv").open()))
    sources = [(PHOTOS / r["path"], r["label_name"]) for r in rows if r["label_space"] == "imagenet"]
    if not sources:
        raise SystemExit(f"no labeled ImageNet photos under {PHOTOS}")
    rng = random.Random(seed)
    for i in range(n_images):
        path, label = sources[i % len(sources)]
        with Image.open(path) as image:
            image = image.convert("RGB")
        w, h = image.size
        scale = rng.uniform(0.6, 1.0)
        cw, ch = int(w * scale), int(h * scale)
        left, top = rng.randint(0, w - cw), rng.randint(0, h - ch)
        image = image.crop((left, top, left + cw, top + ch))
        if rng.random() < 0.5:
            image = ImageOps.mirror(image)
        short = rng.randint(300, 500)
        factor = short / min(image.size)
        image = image.resize((max(1, round(image.width * factor)), max(1, round(image.height * factor))),
                             Image.Resampling.BICUBIC)
        folder = root / label.replace("/", " ")
        folder.mkdir(parents=True, exist_ok=True)
        image.save(folder / f"{i:05d}.jpg", quality=90)
    return root


class SingleResolution(Dataset):
    """What a per-resolution script feeds its model: decode, then Listing 1 at one resolution."""

    def __init__(self, images, transform, indices=None):
        self.images, self.transform = images, transform
        self.indices = range(len(images)) if indices is None else indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int):
        image, target = self.images[self.indices[index]]
        return self.transform(image), target


@torch.inference_mode()
def resolution_pass(loaded, weights, images, resolution, indices, batch_size: int, workers: int) -> int:
    """A per-resolution script's pass: decode every image, Listing 1 at ``resolution``, forward,
    top-5; returns the number of top-1 hits."""
    from lr0fm_core.pipeline import lr_transform

    transform = lr_transform(resolution, loaded.resolution, loaded.mean, loaded.std)
    hits = 0
    for batch, targets in DataLoader(SingleResolution(images, transform, indices), batch_size=batch_size,
                                     num_workers=workers):
        features = torch.nn.functional.normalize(loaded.model.encode_image(batch).float(), dim=-1)
        top5 = (features @ weights.T).topk(5, dim=-1).indices
        hits += int((top5[:, 0] == targets).sum())
    return hits


def separate_passes(loaded, weights, images, indices, batch_size: int, workers: int) -> float:
    """One pass per resolution, each decoding every image again; returns seconds."""
    start = time.perf_counter()
    for resolution in RESOLUTIONS:
        resolution_pass(loaded, weights, images, resolution, indices, batch_size, workers)
    return time.perf_counter() - start


@torch.inference_mode()
def forward_seconds(loaded, batch_size: int, batches: int) -> float:
    """Seconds of ``batches`` bare forwards on ready tensors of ``batch_size`` views."""
    x = torch.randn(batch_size, 3, loaded.resolution, loaded.resolution)
    start = time.perf_counter()
    for _ in range(batches):
        loaded.model.encode_image(x)
    return time.perf_counter() - start


def preprocessing_seconds(images, indices, loaded) -> tuple[float, float]:
    """CPU seconds to prepare ``images[indices]`` for the model at every resolution, without the model:
    the sweep's way (decode once, 5 uint8 views, normalize the stack) and the per-resolution way
    (5 x (decode, view, ToTensor + Normalize)). Best of two interleaved rounds."""
    from lr0fm_core.bench.runner import ResolutionViews
    from lr0fm_core.pipeline import lr_transform

    views = ResolutionViews(images, indices, RESOLUTIONS, loaded.resolution)
    mean = torch.as_tensor(loaded.mean).view(1, -1, 1, 1)
    std = torch.as_tensor(loaded.std).view(1, -1, 1, 1)
    singles = [SingleResolution(images, lr_transform(r, loaded.resolution, loaded.mean, loaded.std), indices)
               for r in RESOLUTIONS]
    once, separate = [], []
    for _ in range(2):
        start = time.perf_counter()
        for i in range(len(views)):
            views[i][0].to(torch.float32).div_(255).sub_(mean).div_(std)
        once.append(time.perf_counter() - start)
        start = time.perf_counter()
        for single in singles:
            for i in range(len(single)):
                single[i]
        separate.append(time.perf_counter() - start)
    return min(once), min(separate)


def per_resolution_run(folder: Path, resolution, batch_size: int, workers: int) -> float:
    """One run of a per-resolution script: load the model, build the head, evaluate ``folder`` at
    one resolution (every image decoded); returns its top-1."""
    from lr0fm_core.datasets import build_dataset
    from lr0fm_core.models.loading import load_model
    from lr0fm_core.zeroshot.head import build_zero_shot_head

    images = build_dataset(f"imagefolder:{folder}")
    loaded = load_model(MODEL, "none", device="cpu")
    weights = build_zero_shot_head(loaded, images.label_set, use_cache=False).weights
    return resolution_pass(loaded, weights, images, resolution, None, batch_size, workers) / len(images)


def timed_process(command: list[str], threads: int) -> float:
    """Wall seconds of ``command`` in a fresh process with its own empty cache and ``threads`` threads."""
    with tempfile.TemporaryDirectory(prefix="lr0fm-bench-cache-") as cache:
        env = {**os.environ, "LR0FM_CACHE_DIR": cache, "OMP_NUM_THREADS": str(threads), "LR0FM_DEVICE": "cpu"}
        start = time.perf_counter()
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - start


def end_to_end_seconds(folder: Path, batch_size: int, workers: int, threads: int) -> tuple[float, list[float]]:
    """Wall seconds of one `lr0fm bench` sweep over the 5 resolutions, and of each of the 5
    per-resolution runs, every one a fresh process from launch to exit."""
    resolutions = [str(r) for r in RESOLUTIONS]
    with tempfile.TemporaryDirectory(prefix="lr0fm-bench-db-") as tmp:
        sweep = timed_process(
            [sys.executable, "-m", "lr0fm_core.cli", "bench", "--models", f"{MODEL}:none",
             "--datasets", f"imagefolder:{folder}", "--resolutions", *resolutions, "--db", f"{tmp}/results.duckdb",
             "--batch-size", str(batch_size), "--workers", str(workers)], threads)
    runs = [timed_process([sys.executable, __file__, "--per-resolution-run", resolution, "--folder", str(folder),
                           "--batch-size", str(batch_size), "--workers", str(workers)], threads)
            for resolution in resolutions]
    return sweep, runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=500, help="images in the generated folder (default 500)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--workers", type=int, default=0,
                        help="DataLoader workers for both paths (default 0: on CPU the model uses every core)")
    parser.add_argument("--batch-size", type=int, default=50, help="views per forward for both paths (default 50)")
    parser.add_argument("--chunk", type=int, help="images per interleaved measurement round (default: the forward "
                                                   "batch size, so that separate passes run full batches)")
    parser.add_argument("--skip-end-to-end", action="store_true",
                        help="leave out the end-to-end runs (a fresh process each: about 6 more minutes)")
    parser.add_argument("--per-resolution-run", metavar="RES", help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.per_resolution_run:
        from lr0fm_core.resolution import parse_resolution

        top1 = per_resolution_run(args.folder, parse_resolution(args.per_resolution_run), args.batch_size, args.workers)
        print(f"top-1 at {args.per_resolution_run}: {top1:.4f}")
        return
    os.environ.setdefault("LR0FM_CACHE_DIR", tempfile.mkdtemp(prefix="lr0fm-bench-"))

    from lr0fm_core.bench.runner import evaluate
    from lr0fm_core.datasets import build_dataset
    from lr0fm_core.models.loading import load_model
    from lr0fm_core.zeroshot.head import build_zero_shot_head

    with tempfile.TemporaryDirectory(prefix="lr0fm-sweep-") as tmp:
        folder = make_image_folder(Path(tmp) / "images", args.images)
        images = build_dataset(f"imagefolder:{folder}")
        n, r = len(images), len(RESOLUTIONS)
        forward_batch = (args.batch_size // r) * r

        start = time.perf_counter()
        loaded = load_model(MODEL, "none", device="cpu")
        load_s = time.perf_counter() - start
        start = time.perf_counter()
        head = build_zero_shot_head(loaded, images.label_set, use_cache=False)
        head_s = time.perf_counter() - start

        # The machine may be shared: the three paths run interleaved over chunks of the images, so a
        # change of load hits all of them alike.
        sweep_s = separate_s = ceiling_s = 0.0
        ceiling_views = 0
        with torch.inference_mode():
            loaded.model.encode_image(torch.randn(2, 3, loaded.resolution, loaded.resolution))  # warm-up
        chunk_size = args.chunk or forward_batch
        for start in range(0, n, chunk_size):
            chunk = range(start, min(n, start + chunk_size))
            batches = max(1, len(chunk) * r // forward_batch // 2)
            ceiling_s += forward_seconds(loaded, forward_batch, batches)
            ceiling_views += batches * forward_batch
            sweep_s += evaluate(loaded, head.weights, images, RESOLUTIONS, chunk, batch_size=args.batch_size,
                                workers=args.workers).seconds
            separate_s += separate_passes(loaded, head.weights, images, chunk, forward_batch, args.workers)
        ceiling = ceiling_views / ceiling_s

        sample = range(min(n, 100))
        prep_once, prep_separate = (seconds / len(sample) for seconds in preprocessing_seconds(images, sample, loaded))
        if not args.skip_end_to_end:
            sweep_run_s, runs_s = end_to_end_seconds(folder, forward_batch, args.workers, args.threads)

    sweep_rate = n * r / sweep_s
    separate_rate = n * r / separate_s
    rows = [
        ("forward ceiling: ready tensors", f"{ceiling:.1f} views/s", f"batch {forward_batch}"),
        ("sweep: one decode, 5 resolutions per image", f"{sweep_rate:.1f} image-res/s ({sweep_s:.0f} s)",
         f"{sweep_rate / ceiling:.0%} of the ceiling (goal >= 80 %)"),
        ("separate passes (decode per resolution; model and head shared)",
         f"{separate_rate:.1f} image-res/s ({separate_s:.0f} s)", f"sweep {separate_s / sweep_s:.2f}x faster"),
        ("preprocessing only: decode once, 5 views, normalize", f"{prep_once * 1000:.1f} ms/image",
         "no model: what bounds a sweep when a GPU runs the model"),
        ("preprocessing only: 5 x (decode, 1 view, normalize)", f"{prep_separate * 1000:.1f} ms/image",
         f"{prep_separate / prep_once:.2f}x the single decode's cost"),
    ]
    if not args.skip_end_to_end:
        rows += [
            ("end to end: `lr0fm bench`, 5 resolutions, one process", f"{sweep_run_s:.0f} s",
             f"in-process model load {load_s:.1f} s, head {head_s:.1f} s ({len(head.classnames)} classes x "
             f"{len(images.label_set.templates)} templates)"),
            ("end to end: 5 per-resolution runs, one process each", f"{sum(runs_s):.0f} s "
             f"({' + '.join(f'{t:.0f}' for t in runs_s)})", f"sweep {sum(runs_s) / sweep_run_s:.2f}x faster (goal >= 1.3x)"),
        ]
    print(f"\n### `lr0fm bench` sweep, random-init ViT-B-32, {n} images x {r} resolutions, "
          f"{args.threads} threads, {args.workers} workers ({platform.processor() or platform.machine()}, "
          f"load {os.getloadavg()[0]:.1f})\n")
    print_table(("measurement", "result", "note"), rows)


if __name__ == "__main__":
    main()
