"""The ``lr0fm`` command line: a thin layer over the engine.

Every failure ends with one line on stderr and a non-zero exit code, never a traceback
(set ``LR0FM_DEBUG=1`` to see one).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import __version__

EXIT_USAGE = 2


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError) as exc:  # our errors are ValueErrors; OSError: files the user named
        if os.environ.get("LR0FM_DEBUG"):
            raise
        print(f"lr0fm {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # a bug: still one line, with a way to get the details
        if os.environ.get("LR0FM_DEBUG"):
            raise
        print(f"lr0fm {args.command}: unexpected error: {type(exc).__name__}: {exc} "
              f"(run with LR0FM_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1


# ---------------------------------------------------------------- commands

def run_models(args) -> None:
    from .models.registry import models_table

    table = models_table()
    if args.family:
        table = table[table["family"].str.lower() == args.family.lower()]
    if args.json:
        print(table.to_json(orient="records", indent=2))
    else:
        columns = ["key", "family", "architecture", "open_clip_name", "pretrained_tag",
                   "pretraining_data", "params_m", "resolution"]
        print(table[columns].to_string(index=False))


def run_predict(args) -> None:
    from .io import load_image
    from .lr_tokens import head_for_tokens, load_lr_tokens
    from .models.loading import UNTRAINED_WARNING, load_model
    from .predict import predict
    from .resolution import parse_resolution
    from .zeroshot.head import build_zero_shot_head
    from .zeroshot.labels import resolve_label_set

    image = load_image(args.image)  # cheap checks first: nothing is loaded for a bad image or label set
    label_set = resolve_label_set(args.labels)
    resolutions = [parse_resolution(r) for r in args.resolutions]
    loaded = load_model(args.model, args.pretrained, args.checkpoint, args.device)
    if loaded.untrained:
        print(f"warning: {loaded.name} is {UNTRAINED_WARNING}", file=sys.stderr)
    tokened = load_lr_tokens(loaded, args.lr_tokens) if args.lr_tokens else None
    with _progress_bar(f"zero-shot head ({label_set.name})", "prompts") as progress:
        head = build_zero_shot_head(loaded, label_set, progress=progress)
    if tokened is not None:  # LR tokens change image features only: the head is reused
        loaded, head = tokened, head_for_tokens(head, tokened)
    predictions = predict(loaded, head, image, resolutions, args.topk, _degradation(args))
    if args.json:
        records = [p.to_dict() | ({"warning": UNTRAINED_WARNING} if loaded.untrained else {}) for p in predictions]
        print(json.dumps(records, indent=2))
        return
    for p in predictions:
        name = "HR" if p.resolution == "hr" else f"{p.resolution}px"
        print(f"{name:>6}  " + "  ".join(f"{label} ({prob:.1%})" for label, prob in zip(p.labels, p.probs)))


def run_degrade(args) -> None:
    from .io import load_image
    from .pipeline import model_view

    image = load_image(args.image)
    view = model_view(image, args.resolution, args.model_resolution, _degradation(args))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    view.save(out)
    print(f"wrote {out} ({view.width}x{view.height}, from {args.resolution}px)")


def run_metrics(args) -> None:
    from .leaderboard import untrained_models, untrained_warning
    from .metrics import metrics_report
    from .resolution import parse_resolution

    if args.hr_correct_only:
        return _print_hr_correct_metrics(args)
    table = _metrics_table(args)
    untrained = untrained_models(table)
    if untrained:
        print(f"warning: {untrained_warning(untrained)}", file=sys.stderr)
    report = metrics_report(table, parse_resolution(args.resolution), alpha=args.alpha,
                            weights=args.weights, per_dataset=args.per_dataset)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    import pandas as pd

    print(pd.DataFrame(report["models"]).to_string(index=False))
    print()
    print(pd.DataFrame(report["datasets"]).to_string(index=False))


def run_optimize_weights(args) -> None:
    from .metrics import optimize_weights, read_results_table
    from .resolution import parse_resolution

    table = read_results_table(args.table)
    result = optimize_weights(table, parse_resolution(args.resolution), alpha=args.alpha,
                              bounds=(args.min_weight, args.max_weight), seed=args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result.weights, indent=2) + "\n")
    print(f"wrote {out}: objective (Eq. 2) = {result.objective:.4f}")


def run_train_lr_tokens(args) -> None:
    from tqdm import tqdm

    from .models.loading import UNTRAINED_WARNING, load_model
    from .train_lr_tokens import TrainingConfig, find_images, parse_buckets, train_lr_tokens

    images = find_images(args.images)  # cheap checks first
    workers = args.workers
    loaded = load_model(args.model, args.pretrained, args.checkpoint, args.device)
    if workers is None:  # data loading would compete with a CPU model for the cores
        workers = min(8, os.cpu_count() or 1) if loaded.device.type == "cuda" else 0
    config = TrainingConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                            weight_decay=args.weight_decay, start_block=args.start_block,
                            buckets=parse_buckets(args.buckets), seed=args.seed, workers=workers)
    if loaded.untrained:
        print(f"warning: {loaded.name} is {UNTRAINED_WARNING}; the tokens learn nothing useful", file=sys.stderr)
    print(f"training LR tokens for {loaded.description} on {len(images)} images from {args.images}", file=sys.stderr)
    with tqdm(desc="LR-TK0", unit="step", file=sys.stderr, dynamic_ncols=True) as bar:
        def on_step(state) -> None:
            bar.total = state.total_steps
            bar.n = state.step
            bar.set_postfix(epoch=f"{state.epoch}/{state.epochs}", loss=f"{state.loss:.4f}",
                            img_s=f"{state.images_per_s:.1f}", lr=f"{state.lr:.2e}")

        result = train_lr_tokens(loaded, images, args.out, config, resume=args.resume, on_step=on_step)
    loss = f", last loss {result.losses[-1]:.4f}" if result.losses else ""
    print(f"wrote {result.checkpoint}: {result.tokens.tokens.numel():,} LR-token parameters, {result.steps} steps"
          f"{loss}, {result.images_per_s:.1f} images/s")


def _metrics_table(args):
    """The per-dataset results table of `lr0fm metrics`: a CSV, or a `lr0fm bench` database (--db)."""
    from .metrics import read_results_table

    if (args.table is None) == (args.db is None):
        raise ValueError("give either a results table CSV or --db DATABASE (from `lr0fm bench`)")
    if args.db is None:
        return read_results_table(args.table)
    from .bench import read_results_database

    return read_results_database(args.db)


def _print_hr_correct_metrics(args) -> None:
    from .bench import read_top1_correct
    from .metrics.hr_correct import hr_correct_robustness, hr_correct_summary
    from .resolution import parse_resolution

    if args.db is None or args.table is not None:
        raise ValueError("--hr-correct-only reads per-image predictions: give --db DATABASE "
                         "(from `lr0fm bench --save-predictions`) instead of a CSV table")
    resolution = parse_resolution(args.resolution)
    per_dataset = hr_correct_robustness(read_top1_correct(args.db))
    models = hr_correct_summary(per_dataset, resolution)
    models[["SAR", "SAR_hr_correct"]] *= 100
    cells = per_dataset[per_dataset["resolution"].eq(resolution)].drop(columns="resolution")
    cells[["acc", "acc_hr", "gamma", "gamma_hr_correct"]] *= 100
    if args.json:
        report = {"resolution": resolution, "models": models.to_dict(orient="records")}
        if args.per_dataset:
            report["per_dataset"] = cells.to_dict(orient="records")
        print(json.dumps(report, indent=2))
        return
    print(f"robustness at {resolution} over the images each model gets right at HR (percent)")
    print(models.to_string(index=False))
    if args.per_dataset:
        print()
        print(cells.to_string(index=False))


def run_bench(args) -> None:
    from .bench.runner import BenchError, SweepConfig, run_sweep

    config = SweepConfig(
        db=Path(args.db), resolutions=tuple(args.resolutions),
        data_root=Path(args.data_root) if args.data_root else None, batch_size=args.batch_size,
        workers=args.workers, limit=args.limit, lr_tokens=Path(args.lr_tokens) if args.lr_tokens else None,
        save_predictions=args.save_predictions, download=args.download, device=args.device)
    summary = run_sweep(args.models, args.datasets, config, backend=args.backend, address=args.address)
    print(f"{len(summary.written)} of {len(summary.tasks)} passes written to {config.db}; "
          f"{summary.skipped} (model, dataset, resolution) results were already there")
    if summary.failed:
        raise BenchError(f"{len(summary.failed)} pass(es) failed: "
                         + "; ".join(f"{task.model} · {task.dataset}: {reason}" for task, reason in summary.failed))


def run_export(args) -> None:
    from .bench import export_results

    table = export_results(args.db, args.out)
    print(f"wrote {args.out}: {len(table)} rows, {table['model'].nunique()} models, "
          f"{table['dataset'].nunique()} datasets")


# ---------------------------------------------------------------- parser

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lr0fm", description="Low-resolution robustness of zero-shot vision-language models (LR0.FM).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("models", help="list the paper's backbones that open_clip can load")
    p.add_argument("--family", help="only this family, e.g. CLIP, OpenCLIP, EVA-CLIP")
    p.add_argument("--json", action="store_true", help="print JSON records")
    p.set_defaults(run=run_models)

    p = commands.add_parser("predict", help="top-k zero-shot labels of an image at several resolutions")
    p.add_argument("image", help="image file (jpg, png, webp, ...)")
    _model_arguments(p)
    p.add_argument("--resolutions", nargs="+", default=["16", "32", "64", "128", "hr"],
                   help="input sizes in pixels, 'hr' for the model's own (default: 16 32 64 128 hr)")
    p.add_argument("--labels", default="imagenet",
                   help="a benchmark dataset's classes (imagenet, dtd, eurosat, ...) or a label file")
    p.add_argument("--topk", type=int, default=5)
    p.add_argument("--json", action="store_true", help="print [{resolution, topk: [{label, prob}]}]")
    p.add_argument("--lr-tokens", metavar="CKPT", help="LR tokens (.safetensors from `lr0fm train-lr-tokens`) to add")
    _degradation_arguments(p)
    p.set_defaults(run=run_predict)

    p = commands.add_parser("degrade", help="write the exact image the model sees at a resolution")
    p.add_argument("image")
    p.add_argument("--resolution", required=True, help="low resolution n (shorter side), or 'hr'")
    p.add_argument("--model-resolution", type=int, default=224, help="the model's input size (default 224)")
    p.add_argument("--out", required=True, help="output image file, e.g. out.png")
    _degradation_arguments(p)
    p.set_defaults(run=run_degrade)

    p = commands.add_parser("metrics", help="SAR / WAR / ACC from a per-dataset results table")
    p.add_argument("table", nargs="?", help="CSV with columns model, dataset, resolution, top1, n_classes")
    p.add_argument("--db", help="read the results from a `lr0fm bench` database instead of a CSV")
    p.add_argument("--hr-correct-only", action="store_true",
                   help="robustness over only the images each model gets right at HR (needs --db with "
                        "per-image predictions: lr0fm bench --save-predictions)")
    p.add_argument("--resolution", required=True, help="the low resolution n to score, e.g. 16")
    p.add_argument("--alpha", type=float, default=200.0, help="decay of Γ near random accuracy (Eq. 1, default 200)")
    p.add_argument("--weights", help="dataset weights for WAR: paper | uniform | W.json | W.csv (default uniform)")
    p.add_argument("--per-dataset", action="store_true", help="add per model and dataset acc, γ and Γ")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=run_metrics)

    p = commands.add_parser("optimize-weights", help="WAR dataset weights maximizing the paper's Eq. 2")
    p.add_argument("table", help="CSV with columns model, dataset, resolution, top1, n_classes")
    p.add_argument("--resolution", required=True)
    p.add_argument("--alpha", type=float, default=200.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--min-weight", type=float, default=0.01)
    p.add_argument("--max-weight", type=float, default=1.0)
    p.add_argument("--out", required=True, help="weights JSON to write")
    p.set_defaults(run=run_optimize_weights)

    p = commands.add_parser("train-lr-tokens", help="train LR tokens (LR-TK0) on a folder of images")
    _model_arguments(p)
    p.add_argument("--images", required=True, help="folder of training images (searched recursively)")
    p.add_argument("--out", required=True, help="LR-token checkpoint to write (.safetensors), rewritten every epoch")
    p.add_argument("--epochs", type=int, default=10, help="passes over the images (default 10; the paper: 10, EVA 200)")
    p.add_argument("--batch-size", type=int, default=32, help="HR images per step (default 32)")
    p.add_argument("--lr", type=float, default=1e-3, help="AdamW peak learning rate, cosine decay (default 1e-3)")
    p.add_argument("--weight-decay", type=float, default=0.0, help="AdamW weight decay (default 0)")
    p.add_argument("--start-block", type=int, default=0,
                   help="Table 14's [i]: 0 = tokens after patchification and before every block (default); "
                        "i > 0 = tokens only after blocks i..N-1")
    p.add_argument("--buckets", default="16-32,32-64,64-128",
                   help="low-resolution buckets; one LR view per bucket per image (default 16-32,32-64,64-128)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, help="data-loading processes (default: 0 on CPU, up to 8 on CUDA)")
    p.add_argument("--resume", metavar="CKPT", help="go on from an LR-token checkpoint (at its next epoch)")
    p.set_defaults(run=run_train_lr_tokens)

    p = commands.add_parser("bench", help="zero-shot accuracy sweep: models x datasets x resolutions into a database")
    p.add_argument("--models", nargs="+", required=True, metavar="M[:TAG]",
                   help="registry keys or open_clip names, each with an optional pretrained tag (none = random init)")
    p.add_argument("--datasets", nargs="+", required=True, metavar="D",
                   help="paper datasets (imagenet, imagenet_a, dtd, eurosat, ...), imagefolder:PATH or csv:PATH")
    p.add_argument("--resolutions", nargs="+", default=["16", "32", "64", "128", "hr"],
                   help="input sizes in pixels, 'hr' for each model's own (default: 16 32 64 128 hr)")
    p.add_argument("--data-root", help="folder holding the paper's datasets (layouts: docs/bench.md)")
    p.add_argument("--db", default="results.duckdb", help="results database, created or resumed (default results.duckdb)")
    p.add_argument("--batch-size", type=int, default=128, help="images x resolutions per forward pass (default 128)")
    p.add_argument("--workers", type=int,
                   help="DataLoader processes decoding images (default: 0 on CPU, where the model uses every "
                        "core; up to 8 with a GPU)")
    p.add_argument("--limit", type=int, help="evaluate only N images per dataset, evenly spread")
    p.add_argument("--lr-tokens", metavar="CKPT", help="LR-TK0 token checkpoint to add to every model")
    p.add_argument("--save-predictions", action="store_true",
                   help="also store each image's top-5 classes (for `lr0fm metrics --hr-correct-only`)")
    p.add_argument("--download", action="store_true", help="download the datasets that can be downloaded")
    p.add_argument("--backend", choices=["local", "ray"], default="local",
                   help="local: this process; ray: one Ray task per (model, dataset)")
    p.add_argument("--address", help="Ray cluster address for --backend ray (default: start a local Ray)")
    p.add_argument("--device", help="torch device (default: cuda when present, else cpu)")
    p.set_defaults(run=run_bench)

    p = commands.add_parser("export", help="write a bench database as a per-dataset results CSV")
    p.add_argument("--db", required=True, help="results database of `lr0fm bench`")
    p.add_argument("--out", required=True, help="CSV to write (columns model, dataset, resolution, top1, n_classes, ...)")
    p.set_defaults(run=run_export)
    return parser


def _model_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="clip-vit-b-32",
                   help="registry key from `lr0fm models` or an open_clip architecture (default clip-vit-b-32)")
    p.add_argument("--pretrained", help="open_clip pretrained tag (default: the registry's tag for --model), "
                                        "or 'none' for an untrained random-init model")
    p.add_argument("--checkpoint", help="local weights: .safetensors / state-dict file, or a folder holding one")
    p.add_argument("--device", help="torch device (default: cuda when present, else cpu)")


def _degradation_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("degradation (defaults: the paper's bicubic pipeline)")
    g.add_argument("--interpolation", default="bicubic", help="downsampling filter: nearest, box, bilinear, hamming, bicubic, lanczos")
    g.add_argument("--no-antialias", action="store_true", help="downsample without a low-pass filter")
    g.add_argument("--jpeg-quality", type=int, help="JPEG-compress the low-resolution image at this quality")
    g.add_argument("--blur-sigma", type=float, help="Gaussian blur before downsampling")


def _degradation(args):
    from .pipeline import Degradation

    return Degradation(args.interpolation, not args.no_antialias, args.jpeg_quality, args.blur_sigma)


class _progress_bar:
    """A tqdm bar fed by (done, total) callbacks; shown only when work actually happens."""

    def __init__(self, description: str, unit: str):
        self.description, self.unit, self.bar = description, unit, None

    def __enter__(self):
        return self.update

    def update(self, done: int, total: int) -> None:
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=self.description, unit=self.unit, file=sys.stderr, leave=False)
        self.bar.update(done - self.bar.n)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()


if __name__ == "__main__":
    sys.exit(main())
