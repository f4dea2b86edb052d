"""Every layer's features, and the image embedding, of a set of images at one input resolution.

The images go through the paper's low-resolution pipeline (:func:`lr0fm_core.pipeline.model_view`)
and one forward of ``encode_image`` (per batch of ``batch_size`` images) fills, through
:func:`lr0fm_core.models.vision_blocks.capture_layers`, the N + 1 layers of the image tower: the
patch embedding and the output of each of the N blocks (Fig. 7 right). Each layer becomes a
representation ``(groups, examples, width)`` for :mod:`lr0fm_core.inside.similarity`:

* ``tokens="all"``: every token of every image, one group per image: ``(images, tokens, width)``.
  A block's tokens are its class/register tokens followed by the spatial ones; the patch
  embedding has only the spatial ones.
* ``tokens="class"``: the class token of every image, all images in one group:
  ``(1, images, width)``. The patch embedding comes before any class token exists, and some towers
  have none (e.g. SigLIP): there the mean of the layer's tokens stands in.
* ``tokens=None``: no layers, only the image embeddings (for the feature t-SNE).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..io import load_image
from ..models.loading import LoadedModel
from ..models.vision_blocks import PATCH_EMBED, capture_layers, vision_layout
from ..pipeline import PAPER, Degradation, model_view, to_model_input
from ..resolution import Resolution, parse_resolution

TOKEN_MODES = {
    "all": "all tokens of each image (spatial + class/register), compared image by image",
    "class": "the class token of each image (the patch embedding: its mean token), compared across images",
}
DEFAULT_BATCH_SIZE = 32

ImageSource = Image.Image | str | os.PathLike
Progress = Callable[[int, int], None]


class FeatureRequestError(ValueError):
    """A feature extraction request that cannot be served (no images, unknown token mode, bad batch size)."""


@dataclass(frozen=True, eq=False)
class ResolutionFeatures:
    """The layers' representations and the unit-norm image embeddings of some images at one resolution.

    ``layers[l]`` is a ``(groups, examples, width)`` float32 array (see the module doc) for
    ``layer_names[l]`` (no layers when extracted with ``tokens=None``); ``embeddings`` is
    ``(images, embedding dim)``, L2-normalized.
    """

    resolution: Resolution
    tokens: str | None
    layer_names: tuple[str, ...]
    layers: tuple[np.ndarray, ...]
    embeddings: np.ndarray

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays (for caches)."""
        return self.embeddings.nbytes + sum(layer.nbytes for layer in self.layers)


def _select_tokens(name: str, output: torch.Tensor, tokens: str, prefix_tokens: int) -> torch.Tensor:
    """A layer's (B, T, width) output as the rows it contributes: (B, T, width) or (B, width)."""
    if tokens == "all":
        return output
    if name != PATCH_EMBED and prefix_tokens > 0:
        return output[:, 0]
    return output.mean(dim=1)


def _read(source: ImageSource) -> Image.Image:
    return source if isinstance(source, Image.Image) else load_image(source)


@torch.inference_mode()
def extract_features(loaded: LoadedModel, images: Sequence[ImageSource], resolution: Resolution,
                     tokens: str | None = "all", degradation: Degradation = PAPER, batch_size: int = DEFAULT_BATCH_SIZE,
                     progress: Progress | None = None) -> ResolutionFeatures:
    """Layer representations and image embeddings of ``images`` (PIL images, or paths read batch by batch
    with :func:`lr0fm_core.io.load_image`) at ``resolution`` (int or "hr"), one forward per batch.

    ``progress(done, total)`` is called after each batch with the number of images done.
    """
    if tokens is not None and tokens not in TOKEN_MODES:
        raise FeatureRequestError(f"unknown token mode {tokens!r}; choose from {', '.join(TOKEN_MODES)}")
    if len(images) == 0:
        raise FeatureRequestError("no images to extract features from")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise FeatureRequestError(f"batch size must be a positive integer, got {batch_size!r}")
    resolution = parse_resolution(resolution)
    layout = vision_layout(loaded.model) if tokens is not None else None  # embeddings alone need no ViT
    names = layout.layer_names if layout is not None else []
    per_layer: dict[str, list[np.ndarray]] = {name: [] for name in names}
    embeddings = []
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        views = [model_view(_read(source), resolution, loaded.resolution, degradation) for source in chunk]
        batch = to_model_input(views, loaded.mean, loaded.std).to(loaded.device)
        with capture_layers(loaded.model, names) if names else contextlib.nullcontext({}) as captured:
            embeddings.append(F.normalize(loaded.model.encode_image(batch).float(), dim=-1).cpu().numpy())
        for name in names:
            selected = _select_tokens(name, captured[name], tokens, layout.prefix_tokens)
            per_layer[name].append(selected.float().cpu().numpy())
        if progress is not None:
            progress(min(start + batch_size, len(images)), len(images))
    layers = tuple(np.concatenate(per_layer[name]) for name in names)
    if tokens == "class":
        layers = tuple(layer[None] for layer in layers)
    return ResolutionFeatures(resolution, tokens, tuple(names), layers, np.concatenate(embeddings))
