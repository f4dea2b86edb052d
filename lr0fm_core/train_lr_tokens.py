"""LR-TK0 training (paper sections 5.1-5.2, Fig. 10 right, Table 6): multi-scale self-distillation of LR tokens.

Teacher: the frozen model without tokens on each high-resolution (HR) image, giving f_HR^T.
Student: the same frozen model with LR tokens on the HR image (f_HR^S) and on one low-resolution
version per bucket (f_LR^S), each at a size drawn uniformly from its bucket (default [16, 32],
[32, 64], [64, 128], section 5.2) and made by the paper's LR pipeline (:mod:`lr0fm_core.pipeline`).
Loss: CLIP's contrastive loss (InfoNCE in both directions, Radford et al. 2021) between every
student view's embeddings and the teacher's HR embeddings of the batch, averaged over the views;
no labels. Only the tokens train (AdamW, cosine schedule; bfloat16 autocast on GPUs that support
it, else float16 with loss scaling; float32 on CPU).

Data is any folder of images (searched recursively); the paper used PixArt-alpha images generated
from 7,000 Conceptual Captions (docs/lr_tk0.md says how to make such a set). Checkpoints, written
after every epoch, hold only the tokens, AdamW's moments and metadata (:func:`lr0fm_core.lr_tokens.save_lr_tokens`);
a run resumes from one at the next epoch, and with the same settings ends exactly where an
uninterrupted run would (the data order and LR sizes are drawn from the seed, epoch and image).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from . import __version__
from .io import SUPPORTED_EXTENSIONS, load_image
from .lr_tokens import OPTIMIZER_KEYS, LRTokens, LRTokensError, read_lr_tokens, save_lr_tokens, with_lr_tokens
from .models.loading import LoadedModel
from .pipeline import model_view, to_model_input
from .resolution import HR

DEFAULT_BUCKETS: tuple[tuple[int, int], ...] = ((16, 32), (32, 64), (64, 128))  # section 5.2, Table 6
LOGIT_SCALE_MAX = 100.0  # CLIP clamps its learned temperature here


class TrainingError(ValueError):
    """Training settings or data that cannot be used."""


@dataclass(frozen=True)
class TrainingConfig:
    """LR-TK0 hyper-parameters; ``start_block`` is Table 14's [i] (see :mod:`lr0fm_core.lr_tokens`)."""

    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0  # tokens start at zero; decay would only pull them back
    start_block: int = 0
    buckets: tuple[tuple[int, int], ...] = DEFAULT_BUCKETS
    seed: int = 0
    workers: int = 0  # data-loading processes

    def __post_init__(self):
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise TrainingError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.batch_size < 2:
            raise TrainingError("the contrastive loss needs at least 2 images per batch (--batch-size 2 or more)")
        if not self.lr > 0:
            raise TrainingError(f"learning rate must be positive, got {self.lr}")
        if self.weight_decay < 0 or self.workers < 0:
            raise TrainingError("weight decay and workers cannot be negative")
        if not self.buckets:
            raise TrainingError("give at least one low-resolution bucket, e.g. 16-32")
        for low, high in self.buckets:
            if not 1 <= low <= high:
                raise TrainingError(f"bucket {low}-{high}: sizes must satisfy 1 <= low <= high")

    def buckets_text(self) -> str:
        return format_buckets(self.buckets)


def parse_buckets(text: str) -> tuple[tuple[int, int], ...]:
    """``"16-32,32-64,64-128"`` -> ((16, 32), (32, 64), (64, 128)); a single size ``"16"`` is the bucket 16-16."""
    buckets = []
    for part in (p.strip() for p in text.split(",")):
        sides = part.split("-")
        try:
            low, high = (int(sides[0]), int(sides[-1])) if 1 <= len(sides) <= 2 else (None, None)
        except ValueError:
            low = high = None
        if low is None or not 1 <= low <= high:
            raise TrainingError(f"bad bucket {part!r} in {text!r}: write LOW-HIGH pixel sizes, e.g. 16-32,32-64,64-128")
        buckets.append((low, high))
    return tuple(buckets)


def format_buckets(buckets: Sequence[tuple[int, int]]) -> str:
    return ",".join(f"{low}-{high}" for low, high in buckets)


def find_images(folder: str | os.PathLike) -> list[Path]:
    """Image files under ``folder`` (recursively, by extension), sorted."""
    root = Path(folder)
    if not root.is_dir():
        raise TrainingError(f"image folder not found: {root}")
    suffixes = {f".{ext}" for ext in SUPPORTED_EXTENSIONS}
    images = sorted(p for p in root.rglob("*") if p.suffix.lower() in suffixes and p.is_file())
    if len(images) < 2:
        raise TrainingError(f"{root} holds {len(images)} image file(s) ({', '.join(sorted(suffixes))}); "
                            f"training needs at least 2")
    return images


class MultiScaleViews(Dataset):
    """Item i: the HR view of image i and one LR view per bucket, as a (1 + buckets, 3, H, W) model input.

    The LR sizes are drawn from (seed, epoch, i), so they do not depend on workers or resuming.
    """

    def __init__(self, images: Sequence[Path], loaded: LoadedModel, buckets: Sequence[tuple[int, int]], seed: int):
        self.images, self.buckets, self.seed, self.epoch = list(images), tuple(buckets), seed, 0
        self.resolution, self.mean, self.std = loaded.resolution, loaded.mean, loaded.std

    def __len__(self) -> int:
        return len(self.images)

    def sizes(self, index: int) -> list[int]:
        """The LR size (shorter side, px) of each bucket for this image in this epoch."""
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return [int(rng.integers(low, high, endpoint=True)) for low, high in self.buckets]

    def __getitem__(self, index: int) -> torch.Tensor:
        image = load_image(self.images[index])
        views = [model_view(image, size, self.resolution) for size in (HR, *self.sizes(index))]
        return to_model_input(views, self.mean, self.std)


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, logit_scale: torch.Tensor | float) -> torch.Tensor:
    """Mean over student views of CLIP's symmetric InfoNCE against the teacher's HR embeddings.

    ``student``: (views, B, D), ``teacher``: (B, D). Image b's student view is pulled to the
    teacher's embedding of image b and pushed from the other images' (section 5.1).
    """
    views, batch, _ = student.shape
    logits = logit_scale * F.normalize(student, dim=-1) @ F.normalize(teacher, dim=-1).T  # (views, B, B)
    target = torch.arange(batch, device=student.device).repeat(views)
    to_teacher = F.cross_entropy(logits.reshape(views * batch, batch), target)
    from_teacher = F.cross_entropy(logits.transpose(1, 2).reshape(views * batch, batch), target)
    return (to_teacher + from_teacher) / 2


def cosine_lr(step: int, total_steps: int, base_lr: float) -> float:
    """Cosine decay from ``base_lr`` at step 0 to 0 at ``total_steps``."""
    return 0.5 * base_lr * (1 + math.cos(math.pi * min(step, total_steps) / max(total_steps, 1)))


@dataclass(frozen=True)
class TrainingStep:
    """Progress after one optimizer step (for progress bars)."""

    epoch: int  # 1-based
    epochs: int
    step: int  # global, 1-based
    total_steps: int
    loss: float
    lr: float
    images_per_s: float  # HR images, each counted once


@dataclass(frozen=True)
class TrainingResult:
    tokens: LRTokens
    checkpoint: Path
    steps: int
    losses: tuple[float, ...]  # one per step of this run
    images_per_s: float


def train_lr_tokens(
    loaded: LoadedModel,
    images: Sequence[Path],
    out: str | os.PathLike,
    config: TrainingConfig = TrainingConfig(),
    resume: str | os.PathLike | None = None,
    on_step: Callable[[TrainingStep], None] | None = None,
) -> TrainingResult:
    """Train LR tokens for ``loaded`` on ``images``; the checkpoint ``out`` is rewritten after every epoch."""
    images = list(images)
    if len(images) < 2:
        raise TrainingError(f"training needs at least 2 images, got {len(images)}")
    device = loaded.device
    tokens, moments, start_epoch = _initial_state(loaded, config, resume)
    student = with_lr_tokens(loaded, tokens).model
    teacher = loaded.model
    batch_size = min(config.batch_size, len(images))
    steps_per_epoch = len(images) // batch_size
    total_steps = steps_per_epoch * config.epochs
    step = steps_per_epoch * start_epoch

    optimizer = torch.optim.AdamW([tokens.tokens], lr=config.lr, weight_decay=config.weight_decay)
    if moments:
        state = optimizer.state[tokens.tokens]
        state["step"] = torch.tensor(float(step))
        state["exp_avg"], state["exp_avg_sq"] = (moments[key].clone() for key in OPTIMIZER_KEYS)
    amp_dtype = _autocast_dtype(device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    logit_scale = teacher.logit_scale.detach().exp().clamp(max=LOGIT_SCALE_MAX).float()

    dataset = MultiScaleViews(images, loaded, config.buckets, config.seed)
    losses: list[float] = []
    seen, started = 0, time.perf_counter()
    out = Path(out)
    for epoch in range(start_epoch, config.epochs):
        dataset.epoch = epoch
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(config.seed * 100_003 + epoch))
        loader = DataLoader(dataset, batch_size=batch_size, sampler=order.tolist(), drop_last=True,
                            num_workers=config.workers, pin_memory=device.type == "cuda")
        for views in loader:  # (B, 1 + buckets, 3, H, W); view 0 is HR
            views = views.to(device, non_blocking=True)
            batch, n_views = views.shape[:2]
            lr = cosine_lr(step, total_steps, config.lr)
            for group in optimizer.param_groups:
                group["lr"] = lr
            with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                with torch.no_grad():
                    target = teacher.encode_image(views[:, 0]).float()
                embedded = student.encode_image(views.flatten(0, 1)).float()
            loss = distillation_loss(embedded.view(batch, n_views, -1).transpose(0, 1), target, logit_scale)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            step += 1
            seen += batch
            losses.append(loss.item())
            if on_step is not None:
                on_step(TrainingStep(epoch + 1, config.epochs, step, total_steps, losses[-1], lr,
                                     seen / (time.perf_counter() - started)))
        _save(out, tokens, loaded, config, optimizer, step, epoch + 1, len(images), losses)
    elapsed = time.perf_counter() - started
    return TrainingResult(tokens, out, step, tuple(losses), seen / elapsed if seen else 0.0)


def _initial_state(loaded: LoadedModel, config: TrainingConfig, resume) -> tuple[LRTokens, dict, int]:
    """(tokens, AdamW moments, epochs already done): zeros, or the state saved in ``resume``."""
    if resume is None:
        return LRTokens.for_model(loaded.model, config.start_block), {}, 0
    checkpoint = read_lr_tokens(resume, loaded.device)
    checkpoint.check_model(loaded)
    if checkpoint.tokens.start_block != config.start_block:
        raise LRTokensError(f"{resume} was trained with start block {checkpoint.tokens.start_block}, "
                            f"not {config.start_block}; resume with --start-block {checkpoint.tokens.start_block}")
    epochs_done = int(checkpoint.metadata.get("epochs_done", 0))
    if epochs_done >= config.epochs:
        raise TrainingError(f"{resume} has already been trained for {epochs_done} epochs; ask for more "
                            f"(--epochs {epochs_done + 1} or more) to go on training")
    return checkpoint.tokens, checkpoint.optimizer_state, epochs_done


def _autocast_dtype(device: torch.device) -> torch.dtype | None:
    """Mixed precision on CUDA (bfloat16 where supported), none elsewhere."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _save(out: Path, tokens: LRTokens, loaded: LoadedModel, config: TrainingConfig, optimizer, step: int,
          epochs_done: int, n_images: int, losses: list[float]) -> None:
    state = optimizer.state.get(tokens.tokens, {})
    moments = {key: state[key.split(".")[1]] for key in OPTIMIZER_KEYS if key.split(".")[1] in state}
    metadata = {"buckets": config.buckets_text(), "steps": step, "epochs_done": epochs_done, "epochs": config.epochs,
                "batch_size": config.batch_size, "lr": config.lr, "weight_decay": config.weight_decay,
                "seed": config.seed, "images": n_images, "loss": f"{losses[-1]:.6f}" if losses else "",
                "lr0fm_version": __version__}
    save_lr_tokens(out, tokens, loaded, metadata, moments)
