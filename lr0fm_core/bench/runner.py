"""``lr0fm bench``: zero-shot accuracy of models x datasets x resolutions (Sec. 3, Appendix A).

Every image is decoded once by the data loader (in worker processes, or in this process with
``workers=0``), and all requested resolutions are made from the decoded image with the paper's
pipeline (:func:`lr0fm_core.pipeline.model_view`), so one batch carries every resolution of its
images and adding a resolution adds model time, not decoding time. Views travel as uint8 and
are normalized on the model's device; autocast is used on GPUs. Class embeddings come from the engine's zero-shot head cache. Top-1, top-5 and
per-class accuracy are computed from each image's top-5 classes.

A sweep is planned against the results database (:mod:`.results_db`): a (model, dataset) pass
covers only the resolutions not stored yet for the same number of images, and each pass is
written in one transaction as soon as it ends, so an interrupted sweep resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from time import perf_counter

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from .. import __version__
from ..datasets import LabeledImages, build_dataset, build_datasets, size_note
from ..models.loading import (RANDOM_INIT, UNTRAINED_WARNING, LoadedModel, ModelLoadError, check_model_name,
                              load_model, resolve_model)
from ..models.registry import list_models
from ..pipeline import model_view
from ..resolution import HR, Resolution, parse_resolution
from ..zeroshot.head import ZeroShotHead, build_zero_shot_head
from . import results_db
from .results_db import KEY_COLUMNS, NO_LR_TOKENS, TOP_K

DEFAULT_BATCH_SIZE = 128  # model inputs (image x resolution views) per forward pass
MAX_AUTO_WORKERS = 8
Progress = Callable[[int], None]  # called with the number of images just evaluated


class BenchError(ValueError):
    """A sweep that cannot start (bad arguments) or whose passes failed (listed in the message)."""


@dataclass(frozen=True)
class ModelChoice:
    """One ``--models`` entry: ``model`` as stored in results (registry key, else open_clip
    name), the open_clip architecture ``name`` and the weights tag ``pretrained`` (``none`` = random init)."""

    model: str
    name: str
    pretrained: str

    def __str__(self) -> str:
        return f"{self.model}:{self.pretrained}"


def parse_model_choice(text: str) -> ModelChoice:
    """``M[:TAG]`` where M is a registry key or open_clip name; without TAG, the registry's tag."""
    model, separator, tag = text.strip().rpartition(":")
    if not separator or not model or "/" in tag:
        model, tag = text.strip(), None
    try:
        name, pretrained = resolve_model(model, tag or None)
        check_model_name(name)
    except ModelLoadError as exc:
        raise ModelLoadError(f"--models {text}: {exc}") from None
    keys = {spec.key for spec in list_models()}
    if model.lower() in keys:
        stored = model.lower()
    else:
        stored = next((s.key for s in list_models() if (s.open_clip_name, s.pretrained_tag) == (name, pretrained)), name)
    return ModelChoice(stored, name, pretrained)


@dataclass(frozen=True)
class SweepConfig:
    """Everything a pass needs besides the model and dataset (sent as is to Ray workers)."""

    db: Path
    resolutions: tuple[Resolution, ...]
    data_root: Path | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    workers: int | None = None  # DataLoader processes; None: see default_workers
    limit: int | None = None
    lr_tokens: Path | None = None
    save_predictions: bool = False
    download: bool = False
    device: str | None = None

    def __post_init__(self):
        resolutions = tuple(dict.fromkeys(parse_resolution(r) for r in self.resolutions))
        if not resolutions:
            raise BenchError("give at least one resolution, e.g. --resolutions 16 32 64 128 hr")
        object.__setattr__(self, "resolutions", resolutions)
        if self.batch_size < 1:
            raise BenchError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.workers is not None and self.workers < 0:
            raise BenchError(f"--workers must be 0 or more, got {self.workers}")
        if self.limit is not None and self.limit < 1:
            raise BenchError(f"--limit must be at least 1, got {self.limit}")

    @property
    def lr_tokens_key(self) -> str:
        return NO_LR_TOKENS if self.lr_tokens is None else str(Path(self.lr_tokens).expanduser().resolve())


@dataclass(frozen=True)
class Task:
    """One pass: a model over one dataset at the resolutions it still misses."""

    model: ModelChoice
    dataset: str
    resolutions: tuple[Resolution, ...]
    n_images: int


@dataclass(frozen=True)
class Evaluation:
    """A pass's raw output: for image ``images[i]`` (dataset index) with class ``targets[i]``,
    ``topk[i, r]`` are the top classes at ``resolutions[r]``, best first."""

    resolutions: tuple[Resolution, ...]
    images: np.ndarray
    targets: np.ndarray
    topk: np.ndarray
    n_classes: int
    seconds: float


@dataclass
class PassResult:
    """A finished pass: rows for the ``runs`` table and, if asked, for ``predictions``."""

    task: Task
    runs: pd.DataFrame
    predictions: pd.DataFrame | None


@dataclass
class SweepSummary:
    """What a sweep did: the passes it planned, the cells it found done, what it wrote and what failed."""

    tasks: list[Task]
    skipped: int  # (model, dataset, resolution) cells already in the database
    written: list[PassResult] = field(default_factory=list)
    failed: list[tuple[Task, str]] = field(default_factory=list)


def default_workers(device: torch.device) -> int:
    """0 on CPU, where the model already uses every core (workers would only compete with it);
    up to 8 decoding processes when a GPU runs the model."""
    return 0 if device.type == "cpu" else min(MAX_AUTO_WORKERS, os.cpu_count() or 1)


def sample_indices(n_images: int, limit: int | None) -> np.ndarray:
    """All indices, or ``limit`` of them evenly spread over the dataset (deterministic; datasets are class-sorted)."""
    if limit is None or limit >= n_images:
        return np.arange(n_images)
    return np.unique(np.linspace(0, n_images - 1, limit).round().astype(np.int64))


class ResolutionViews(Dataset):
    """Item ``i``: the paper's views of one decoded image at every resolution, a uint8 tensor
    (R, 3, S, S), with its target and dataset index. Runs in DataLoader workers."""

    def __init__(self, images: LabeledImages, indices: Sequence[int], resolutions: Sequence[Resolution],
                 model_resolution: int):
        self.images, self.indices = images, np.asarray(indices)
        self.resolutions, self.model_resolution = tuple(resolutions), model_resolution

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, int]:
        index = int(self.indices[i])
        image, target = self.images[index]
        views = np.stack([np.asarray(model_view(image, r, self.model_resolution), dtype=np.uint8)
                          for r in self.resolutions])
        return torch.from_numpy(views).permute(0, 3, 1, 2).contiguous(), target, index


def _autocast(device: torch.device) -> tuple[contextlib.AbstractContextManager, str]:
    if device.type != "cuda":
        return contextlib.nullcontext(), "fp32"
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype), f"amp-{str(dtype).removeprefix('torch.')}"


@torch.inference_mode()
def evaluate(loaded: LoadedModel, class_weights: torch.Tensor, images: LabeledImages,
             resolutions: Sequence[Resolution], indices: Sequence[int] | None = None,
             batch_size: int = DEFAULT_BATCH_SIZE, workers: int | None = None,
             progress: Progress | None = None) -> Evaluation:
    """Top-k classes of ``images[indices]`` at every resolution, in one pass over the images.

    ``class_weights`` are the zero-shot head's unit class embeddings (C x D). A forward pass
    takes about ``batch_size`` views (``batch_size // len(resolutions)`` images). Pixels are
    normalized on the model's device exactly as ``pipeline.to_model_input`` does. ``workers``:
    DataLoader processes (None: :func:`default_workers`).
    """
    resolutions = tuple(parse_resolution(r) for r in resolutions)
    indices = np.arange(len(images)) if indices is None else np.asarray(indices)
    device = loaded.device
    workers = default_workers(device) if workers is None else workers
    loader = DataLoader(ResolutionViews(images, indices, resolutions, loaded.resolution),
                        batch_size=max(1, batch_size // len(resolutions)), num_workers=workers,
                        pin_memory=device.type == "cuda")
    mean = torch.as_tensor(loaded.mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    std = torch.as_tensor(loaded.std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    weights = class_weights.to(device=device, dtype=torch.float32)
    k = min(TOP_K, len(weights))
    autocast, _ = _autocast(device)
    seen, targets, topk = [], [], []
    start = perf_counter()
    for pixels, target, index in loader:
        batch = pixels.to(device, non_blocking=True).flatten(0, 1).to(torch.float32).div_(255).sub_(mean).div_(std)
        with autocast:
            features = loaded.model.encode_image(batch)
        logits = F.normalize(features.float(), dim=-1) @ weights.T
        topk.append(logits.topk(k, dim=-1).indices.view(len(target), len(resolutions), k).cpu())
        seen.append(index)
        targets.append(target)
        if progress is not None:
            progress(len(target))
    if not seen:
        raise BenchError(f"{images.name}: no images to evaluate")
    return Evaluation(resolutions, torch.cat(seen).numpy(), torch.cat(targets).numpy(), torch.cat(topk).numpy(),
                      len(weights), perf_counter() - start)


def accuracies(evaluation: Evaluation) -> pd.DataFrame:
    """Per resolution: ``resolution, n_images, top1, top5, mean_per_class_top1, per_class_top1``
    (a list over all classes, None for classes without images)."""
    targets, n_classes = evaluation.targets, evaluation.n_classes
    counts = np.bincount(targets, minlength=n_classes)
    rows = []
    for r, resolution in enumerate(evaluation.resolutions):
        top = evaluation.topk[:, r]
        hit1 = top[:, 0] == targets
        per_class = np.bincount(targets, weights=hit1, minlength=n_classes) / np.maximum(counts, 1)
        rows.append({
            "resolution": resolution, "n_images": len(targets), "top1": float(hit1.mean()),
            "top5": float((top == targets[:, None]).any(axis=1).mean()),
            "mean_per_class_top1": float(per_class[counts > 0].mean()),
            "per_class_top1": [float(a) if c else None for a, c in zip(per_class, counts)],
        })
    return pd.DataFrame(rows)


def _device_label(device: torch.device) -> str:
    return f"{device} ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else str(device)


def pass_rows(task: Task, evaluation: Evaluation, loaded: LoadedModel, lr_tokens: str,
              save_predictions: bool) -> PassResult:
    """The database rows of a finished pass; ``seconds`` is the pass time shared equally by its resolutions."""
    runs = accuracies(evaluation)
    runs["resolution"] = runs["resolution"].astype(str)
    key = {"model": task.model.model, "pretrained": task.model.pretrained, "dataset": task.dataset,
           "lr_tokens": lr_tokens}
    for column, value in key.items():
        runs[column] = value
    runs["n_classes"] = evaluation.n_classes
    runs["weights_id"] = loaded.weights_id
    runs["package_version"] = f"lr0fm {__version__}; open_clip {_open_clip_version()}; torch {torch.__version__}"
    runs["device"] = _device_label(loaded.device)
    runs["precision"] = _autocast(loaded.device)[1]
    runs["seconds"] = evaluation.seconds / len(evaluation.resolutions)
    runs["created_at"] = datetime.now(timezone.utc).replace(tzinfo=None)
    runs["has_predictions"] = save_predictions
    predictions = None
    if save_predictions:
        n, n_res, k = evaluation.topk.shape
        predictions = pd.DataFrame({
            **key,
            "resolution": np.repeat(np.array([str(r) for r in evaluation.resolutions], dtype=object), n),
            "image": np.tile(evaluation.images, n_res), "target": np.tile(evaluation.targets, n_res).astype(np.int32),
            **{f"pred{j + 1}": (evaluation.topk[:, :, j].T.reshape(-1).astype(np.int32) if j < k else None)
               for j in range(TOP_K)},
        })
    return PassResult(task, runs, predictions)


def _open_clip_version() -> str:
    import open_clip

    return open_clip.__version__


def plan_tasks(models: Sequence[ModelChoice], datasets: Sequence[LabeledImages], config: SweepConfig,
               done: pd.DataFrame) -> tuple[list[Task], int]:
    """The passes a sweep still needs, and how many (model, dataset, resolution) cells are done.

    A cell is done when the database has its key with the same number of images (and per-image
    predictions, if asked for); a pass evaluates only the resolutions not done.
    """
    complete = done.loc[done["has_predictions"].astype(bool)] if config.save_predictions else done
    stored = {tuple(row[:-1]): row[-1] for row in
              complete[[*KEY_COLUMNS, "n_images"]].itertuples(index=False, name=None)}
    tasks, skipped = [], 0
    for model, images in itertools.product(models, datasets):
        n_images = len(sample_indices(len(images), config.limit))
        missing = tuple(r for r in config.resolutions if stored.get(
            (model.model, model.pretrained, images.name, str(r), config.lr_tokens_key)) != n_images)
        skipped += len(config.resolutions) - len(missing)
        if missing:
            tasks.append(Task(model, images.name, missing, n_images))
    return tasks, skipped


def load_bench_model(model: ModelChoice, config: SweepConfig) -> LoadedModel:
    """The model of a pass, with the LR tokens of ``config.lr_tokens`` (LR-TK0, Sec. 5) when given."""
    loaded = load_model(model.name, model.pretrained, device=config.device)
    if config.lr_tokens is None:
        return loaded
    from ..lr_tokens import load_lr_tokens

    return load_lr_tokens(loaded, Path(config.lr_tokens).expanduser())


def check_lr_tokens(checkpoint: Path, models: Sequence[ModelChoice]) -> None:
    """Refuse, before any model loads, a token file that is not LR tokens or was trained for other weights."""
    from ..lr_tokens import read_lr_tokens

    tokens = read_lr_tokens(Path(checkpoint).expanduser())
    others = [str(m) for m in models if (m.name, m.pretrained) != (tokens.model, tokens.pretrained)]
    if others:
        raise BenchError(f"--lr-tokens {checkpoint} were trained for {tokens.model} (pretrained={tokens.pretrained}); "
                         f"they cannot be added to {', '.join(others)}")


def zero_shot_head(loaded: LoadedModel, label_set) -> ZeroShotHead:
    """The cached zero-shot head; with LR tokens, the base model's (tokens leave the text tower alone)."""
    base = getattr(loaded, "base", None)
    if base is None:
        return build_zero_shot_head(loaded, label_set)
    from ..lr_tokens import head_for_tokens

    return head_for_tokens(build_zero_shot_head(base, label_set), loaded)


def run_pass(task: Task, config: SweepConfig, images: LabeledImages, loaded: LoadedModel, head: ZeroShotHead,
             progress: Progress | None = None) -> PassResult:
    """Evaluate one task in one pass over the images and return the rows to store."""
    evaluation = evaluate(loaded, head.weights, images, task.resolutions, sample_indices(len(images), config.limit),
                          config.batch_size, config.workers, progress)
    return pass_rows(task, evaluation, loaded, config.lr_tokens_key, config.save_predictions)


def run_task(task: Task, config: SweepConfig) -> PassResult:
    """A task on its own (a Ray worker): build the dataset, the model and its head, then :func:`run_pass`."""
    images = build_dataset(task.dataset, config.data_root)
    loaded = load_bench_model(task.model, config)
    return run_pass(task, config, images, loaded, zero_shot_head(loaded, images.label_set))


def run_local(tasks: Sequence[Task], config: SweepConfig, datasets: dict[str, LabeledImages],
              finished: Callable[[PassResult], None], failed: Callable[[Task, str], None], bars: "SweepBars") -> None:
    """Run the tasks in this process, one model at a time (each model is loaded once)."""
    for model, model_tasks in itertools.groupby(tasks, key=lambda t: t.model):
        model_tasks = list(model_tasks)
        try:
            loaded = load_bench_model(model, config)
        except Exception as exc:  # e.g. weights unavailable, out of memory: the other models go on
            for task in model_tasks:
                failed(task, f"{type(exc).__name__}: {exc}")
            continue
        for task in model_tasks:
            images = datasets[task.dataset]
            try:
                head = zero_shot_head(loaded, images.label_set)
                with bars.dataset(task, task.n_images) as progress:
                    result = run_pass(task, config, images, loaded, head, progress)
            except Exception as exc:  # one failing pass must not stop the sweep; it is reported at the end
                failed(task, f"{type(exc).__name__}: {exc}")
                continue
            finished(result)
        del loaded


class SweepBars:
    """One tqdm bar for the sweep (passes) and one for the current dataset (images, with images/s)."""

    def __init__(self, total: int, enabled: bool = True):
        from tqdm import tqdm

        self._tqdm = tqdm
        self.sweep = tqdm(total=total, desc="sweep", unit="pass", position=0, disable=not enabled, dynamic_ncols=True)
        self.enabled = enabled

    @contextlib.contextmanager
    def dataset(self, task: Task, n_images: int):
        bar = self._tqdm(total=n_images, desc=f"{task.model.model} · {task.dataset}", unit="img", position=1,
                         leave=False, disable=not self.enabled, dynamic_ncols=True)
        try:
            yield bar.update
        finally:
            bar.close()

    def write(self, text: str, file=None) -> None:
        """Print a line above the bars (stdout unless ``file`` says otherwise)."""
        self._tqdm.write(text, file=file)

    def close(self) -> None:
        self.sweep.close()


def run_sweep(models: Sequence[str], datasets: Sequence[str], config: SweepConfig, backend: str = "local",
              address: str | None = None, progress: bool = True) -> SweepSummary:
    """Plan and run a sweep; results go to ``config.db`` as each pass ends.

    Everything that can be checked cheaply is checked before any model loads: model names and
    tags, every dataset (one message for all problems), the LR-token file. Failed passes are
    reported in the summary while the others go on.
    """
    if backend not in BACKENDS:
        raise BenchError(f"unknown backend {backend!r}; choose {' or '.join(BACKENDS)}")
    if address is not None and backend != "ray":
        raise BenchError("--address is for --backend ray")
    if backend == "ray":
        from .ray_backend import import_ray

        import_ray()  # a missing Ray is said before anything else is checked
    choices = list(dict.fromkeys(parse_model_choice(m) for m in models))
    built = build_datasets(datasets, config.data_root, config.download)
    if config.lr_tokens is not None:
        check_lr_tokens(config.lr_tokens, choices)
    tasks, skipped = plan_tasks(choices, built, config, results_db.completed_runs(config.db))
    summary = SweepSummary(tasks, skipped)
    bars = SweepBars(len(tasks), enabled=progress)
    for choice in choices:
        if choice.pretrained == RANDOM_INIT:
            bars.write(f"warning: {choice} is {UNTRAINED_WARNING}", file=sys.stderr)
    for images in built:
        note = size_note(images) if config.limit is None else None
        if note:
            bars.write(f"note: {note}", file=sys.stderr)

    def finished(result: PassResult) -> None:
        results_db.write_runs(config.db, result.runs, result.predictions)
        summary.written.append(result)
        bars.sweep.update()
        bars.write(_pass_line(result))

    def failed(task: Task, reason: str) -> None:
        summary.failed.append((task, reason))
        bars.sweep.update()
        bars.write(f"FAILED {task.model} · {task.dataset}: {reason}", file=sys.stderr)

    try:
        BACKENDS[backend](tasks, config, {images.name: images for images in built}, finished, failed, bars,
                          address=address)
    finally:
        bars.close()
    return summary


def _pass_line(result: PassResult) -> str:
    runs, task = result.runs, result.task
    scores = "  ".join(f"{'HR' if r == HR else r + 'px'} {t:.1%}" for r, t in zip(runs["resolution"], runs["top1"]))
    return (f"{task.model} · {task.dataset} ({task.n_images} images, {runs['seconds'].sum():.1f} s): "
            f"top-1 {scores}")


def _run_local_backend(tasks, config, datasets, finished, failed, bars, address=None) -> None:
    run_local(tasks, config, datasets, finished, failed, bars)


def _run_ray_backend(tasks, config, datasets, finished, failed, bars, address=None) -> None:
    from .ray_backend import run_ray

    run_ray(tasks, config, finished, failed, address=address)


BACKENDS: dict[str, Callable] = {"local": _run_local_backend, "ray": _run_ray_backend}
