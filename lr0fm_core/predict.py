"""Zero-shot predictions for one image at several resolutions, in one batched forward.

Every requested resolution goes through the paper's pipeline (:mod:`lr0fm_core.pipeline`), and
all views are encoded together. Image embeddings are kept in a small per-model LRU cache keyed by
the image's pixels, the resolution and the degradation, so asking again for the same photo (or
adding one resolution) only encodes what is new.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from PIL import Image

from .models.loading import LoadedModel
from .pipeline import HR, PAPER, Degradation, Resolution, model_view, parse_resolution, to_model_input
from .zeroshot.head import ZeroShotHead

DEFAULT_RESOLUTIONS: tuple[Resolution, ...] = (16, 32, 64, 128, HR)
FEATURE_CACHE_SIZE = 256  # image embeddings kept per model


@dataclass(frozen=True)
class ResolutionPrediction:
    """Top-k labels with probabilities at one input resolution."""

    resolution: Resolution
    labels: tuple[str, ...]
    probs: tuple[float, ...]

    def to_dict(self) -> dict:
        return {"resolution": self.resolution,
                "topk": [{"label": label, "prob": prob} for label, prob in zip(self.labels, self.probs)]}


def image_digest(image: Image.Image) -> str:
    """A fingerprint of the pixels (not of the file), for caches."""
    digest = hashlib.blake2b(image.tobytes(), digest_size=16)
    digest.update(f"{image.mode}{image.size}".encode())
    return digest.hexdigest()


@torch.inference_mode()
def encode_resolutions(loaded: LoadedModel, image: Image.Image, resolutions: Sequence[Resolution],
                       degradation: Degradation = PAPER) -> torch.Tensor:
    """Unit-norm image embeddings (len(resolutions) x dim); views not cached are encoded in one batch."""
    resolutions = [parse_resolution(r) for r in resolutions]
    cache = loaded.feature_cache
    digest = image_digest(image)
    keys = [(digest, r, degradation.key()) for r in resolutions]
    with loaded.cache_lock:
        missing = [i for i, key in enumerate(keys) if key not in cache]
    encoded = {}
    if missing:
        views = [model_view(image, resolutions[i], loaded.resolution, degradation) for i in missing]
        batch = to_model_input(views, loaded.mean, loaded.std).to(loaded.device)
        features = F.normalize(loaded.model.encode_image(batch).float(), dim=-1)
        encoded = {keys[i]: feature for i, feature in zip(missing, features)}
    with loaded.cache_lock:
        cache.update(encoded)
        found = torch.stack([cache[key] for key in keys])
        for key in keys:
            cache.move_to_end(key)
        while len(cache) > FEATURE_CACHE_SIZE:
            cache.popitem(last=False)
    return found


@torch.inference_mode()
def class_probabilities(loaded: LoadedModel, head: ZeroShotHead, features: torch.Tensor) -> torch.Tensor:
    """Softmax over classes of the scaled cosine similarities (CLIP's zero-shot logits)."""
    if head.weights_id != loaded.weights_id:
        raise ValueError(f"the zero-shot head was built for {head.weights_id}, not for {loaded.weights_id}")
    scale = loaded.model.logit_scale.exp().clamp(max=100).float()
    return (scale * features @ head.weights.T).softmax(dim=-1)


def predict(loaded: LoadedModel, head: ZeroShotHead, image: Image.Image,
            resolutions: Sequence[Resolution] = DEFAULT_RESOLUTIONS, topk: int = 5,
            degradation: Degradation = PAPER) -> list[ResolutionPrediction]:
    """Top-k labels and probabilities for ``image`` at every resolution (one batched forward)."""
    if topk < 1:
        raise ValueError(f"topk must be at least 1, got {topk}")
    resolutions = [parse_resolution(r) for r in resolutions]
    probs = class_probabilities(loaded, head, encode_resolutions(loaded, image, resolutions, degradation))
    values, indices = probs.topk(min(topk, probs.shape[1]), dim=-1)
    names = head.classnames
    return [
        ResolutionPrediction(resolution, tuple(names[i] for i in idx.tolist()), tuple(round(v, 6) for v in val.tolist()))
        for resolution, val, idx in zip(resolutions, values, indices)
    ]
