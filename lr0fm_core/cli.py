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
    with _progress_bar(f"zero-shot head ({label_set.name})", "prompts") as progress:
        head = build_zero_shot_head(loaded, label_set, progress=progress)
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
    from .metrics import metrics_report, read_results_table
    from .resolution import parse_resolution

    table = read_results_table(args.table)
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
    p.add_argument("table", help="CSV with columns model, dataset, resolution, top1, n_classes")
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
