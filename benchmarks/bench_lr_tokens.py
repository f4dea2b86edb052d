"""Speed of LR-TK0 (issue 5's goals): training throughput and the inference cost of LR tokens.

    python benchmarks/bench_lr_tokens.py [--threads 2] [--images 64] [--batch-size 16]

1. Training throughput (HR images per second, each counted once; every HR image also gives one LR
   view per bucket, so a step encodes 1 teacher + 4 student views per image) on CPU for the tiny
   random-init model "lr0fm-tiny-ViT" (64 px), default buckets 16-32,32-64,64-128.
2. The inference cost of LR tokens: ``encode_image`` of a ViT-B/16 (random init, 224 px, all 13
   token sets) against the same model without tokens, as ms per image and a ratio (the paper:
   under 1 ms on GPU).
3. With CUDA: training throughput of a random-init ViT-B/16 with batch 64 (mixed precision) and
   the GPU inference cost. Without CUDA the table says so.

Random-init weights time the same arithmetic as trained ones. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from markdown_table import print_table


def make_images(folder: Path, count: int, size: tuple[int, int] = (320, 240)) -> list[Path]:
    """Smooth random colour fields, like downscaled photos (decoding and resizing cost included)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        coarse = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
        path = folder / f"image_{i:04d}.jpg"
        Image.fromarray(coarse).resize(size, Image.Resampling.BICUBIC).save(path, quality=90)
        paths.append(path)
    return paths


def training_throughput(model: str, images: list[Path], batch_size: int, device: str, epochs: int = 4) -> tuple[float, int]:
    """(HR images/s, the median over epochs 2.. of one epoch's rate, data loading included; steps per epoch)."""
    from lr0fm_core.models.loading import load_model
    from lr0fm_core.train_lr_tokens import TrainingConfig, train_lr_tokens

    loaded = load_model(model, "none", device=device)
    last_step_at = {}  # epoch -> time its last step ended

    def on_step(state) -> None:
        last_step_at[state.epoch] = time.perf_counter()

    with tempfile.TemporaryDirectory() as out:
        config = TrainingConfig(epochs=epochs, batch_size=batch_size, workers=0 if device == "cpu" else 8)
        result = train_lr_tokens(loaded, images, Path(out) / "tokens.safetensors", config, on_step=on_step)
    steps = result.steps // epochs
    rates = [steps * batch_size / (last_step_at[e] - last_step_at[e - 1]) for e in range(2, epochs + 1)]
    return statistics.median(rates), steps


def inference_cost(device: str, batch: int, repeats: int) -> tuple[float, float]:
    """(ms per image without tokens, with all 13 sets) for a random-init ViT-B/16: the fastest of interleaved
    repeats (the least disturbed by other work on the machine)."""
    from lr0fm_core.lr_tokens import LRTokens, with_lr_tokens
    from lr0fm_core.models.loading import load_model

    loaded = load_model("ViT-B-16", "none", device=device)
    tokens = LRTokens.for_model(loaded.model)
    with torch.no_grad():
        tokens.tokens.normal_(std=0.02)
    tokened = with_lr_tokens(loaded, tokens)
    pixels = torch.randn(batch, 3, 224, 224, device=device)
    timings = {"plain": [], "tokens": []}

    def timed(model) -> float:
        if device != "cpu":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.inference_mode(), torch.autocast(device_type=torch.device(device).type, enabled=device != "cpu"):
            model.encode_image(pixels)
        if device != "cpu":
            torch.cuda.synchronize()
        return (time.perf_counter() - start) * 1000 / batch

    for model in (loaded.model, tokened.model):  # warm-up
        timed(model)
    for _ in range(repeats):
        timings["plain"].append(timed(loaded.model))
        timings["tokens"].append(timed(tokened.model))
    return min(timings["plain"]), min(timings["tokens"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--images", type=int, default=128, help="training images for the tiny model")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=7, help="timed ViT-B/16 forwards per variant")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("LR0FM_CACHE_DIR", tempfile.mkdtemp(prefix="lr0fm-bench-"))

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        images = make_images(Path(folder), args.images)
        rate, steps = training_throughput("lr0fm-tiny-ViT", images, args.batch_size, "cpu")
        rows.append((f"LR-TK0 training, lr0fm-tiny-ViT (64 px), CPU, batch {args.batch_size}, 3 buckets",
                     f"{rate:.1f} HR images/s", f"{steps} steps/epoch of {args.images} 320x240 JPEGs, decoding included"))
        plain, tokened = inference_cost("cpu", batch=8, repeats=args.repeats)
        rows.append(("LR tokens' inference cost, ViT-B/16 (random init, 224 px, 13 sets), CPU, batch 8",
                     f"{tokened - plain:+.2f} ms/image ({tokened / plain:.3f}x)",
                     f"{plain:.1f} ms/image without, {tokened:.1f} with"))
        if torch.cuda.is_available():
            gpu_folder = Path(folder) / "gpu"
            gpu_folder.mkdir()
            rate, steps = training_throughput("ViT-B-16", make_images(gpu_folder, 640), 64, "cuda")
            rows.append(("LR-TK0 training, ViT-B/16 (random init), GPU, batch 64, bf16/fp16 autocast",
                         f"{rate:.0f} HR images/s", f"{steps} steps/epoch"))
            plain, tokened = inference_cost("cuda", batch=64, repeats=20)
            rows.append(("LR tokens' inference cost, ViT-B/16, GPU, batch 64", f"{tokened - plain:+.3f} ms/image "
                         f"({tokened / plain:.3f}x)", f"{plain:.3f} ms/image without, {tokened:.3f} with"))
        else:
            rows.append(("GPU rows (ViT-B/16 batch 64 training; GPU inference cost)", "not measured",
                         "no CUDA device in this session"))

    print(f"LR-TK0 benchmarks ({platform.processor() or platform.machine()}, {args.threads} threads, "
          f"torch {torch.__version__}, load average {os.getloadavg()[0]:.2f})\n")
    print_table(("what", "result", "notes"), rows)


if __name__ == "__main__":
    main()
