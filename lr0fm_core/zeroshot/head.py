"""Zero-shot classification heads (the CLIP protocol, paper Appendix A / Fig. 3 right).

For every class, each template is filled with the class name and encoded; the embeddings are
L2-normalized, averaged over templates, and the mean is normalized again. The result is a
(classes x dim) matrix whose product with a normalized image embedding gives the class logits.

Fast and exact: all prompts go through the text tower in large batches sorted by token length,
and for a causal text tower each batch is cut after its longest prompt's end token (a causal
mask makes every position ignore what follows it, and the pooled token is the end token, so the
padding changes nothing). Bidirectional towers attend to padding, so they always see the full
context. Heads are cached on disk, keyed by model weights, class names and templates.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from .. import config
from ..models.loading import LoadedModel
from .labels import LabelSet

HEAD_FORMAT = "1"  # bump when the head computation changes, to invalidate on-disk caches
DEFAULT_BATCH_SIZE = 256
Progress = Callable[[int, int], None]  # (prompts done, prompts total)


@dataclass(frozen=True)
class ZeroShotHead:
    """Class embeddings (classes x dim, unit rows) for one model and label set."""

    label_set: LabelSet
    weights: torch.Tensor
    weights_id: str

    @property
    def classnames(self) -> tuple[str, ...]:
        return self.label_set.classnames


def build_zero_shot_head(
    loaded: LoadedModel,
    label_set: LabelSet,
    batch_size: int = DEFAULT_BATCH_SIZE,
    use_cache: bool = True,
    progress: Progress | None = None,
) -> ZeroShotHead:
    """The zero-shot head of ``label_set`` for ``loaded``, from the disk cache when present."""
    path = _cache_path(loaded, label_set) if use_cache else None
    if path is not None and path.is_file():
        cached = _read(path, loaded.device)
        if cached is not None:
            return ZeroShotHead(label_set, cached, loaded.weights_id)
    weights = class_embeddings(loaded, label_set, batch_size, progress)
    if path is not None:
        _write(path, weights, loaded, label_set)
    return ZeroShotHead(label_set, weights, loaded.weights_id)


@torch.inference_mode()
def class_embeddings(loaded: LoadedModel, label_set: LabelSet, batch_size: int = DEFAULT_BATCH_SIZE,
                     progress: Progress | None = None) -> torch.Tensor:
    """Encode every (class, template) prompt and average per class (CLIP protocol)."""
    prompts = [template.format(c=name) for name in label_set.classnames for template in label_set.templates]
    tokens = loaded.tokenizer(prompts)
    lengths = _needed_lengths(loaded.model, tokens)
    order = torch.argsort(lengths, descending=True, stable=True)
    embeddings = [None] * len(prompts)
    for start in range(0, len(prompts), batch_size):
        index = order[start:start + batch_size]
        batch = tokens[index, : int(lengths[index].max())].to(loaded.device)
        for i, row in zip(index.tolist(), F.normalize(_encode_text(loaded.model, batch).float(), dim=-1)):
            embeddings[i] = row
        if progress is not None:
            progress(min(start + batch_size, len(prompts)), len(prompts))
    per_class = torch.stack(embeddings).view(len(label_set.classnames), len(label_set.templates), -1)
    return F.normalize(per_class.mean(dim=1), dim=-1)


def _text_tower(model: torch.nn.Module):
    """The module holding the text transformer's parts (CLIP keeps them on itself)."""
    text = getattr(model, "text", None)
    return text if text is not None and hasattr(text, "token_embedding") else model


def _cuts_padding(model: torch.nn.Module) -> bool:
    """True when dropping the padding after the end token leaves the text embedding unchanged."""
    tower = _text_tower(model)
    return (
        hasattr(tower, "token_embedding")
        and getattr(tower, "attn_mask", None) is not None  # causal
        and getattr(tower, "text_pool_type", getattr(tower, "pool_type", None)) == "argmax"
        and getattr(tower, "cls_emb", None) is None
        and not getattr(tower, "use_pad_mask", False)
    )


def _needed_lengths(model: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """Tokens each prompt needs: through its end token (CLIP's end token has the largest id)."""
    if _cuts_padding(model):
        return tokens.argmax(dim=-1) + 1
    return torch.full((len(tokens),), tokens.shape[1], dtype=torch.long)


def _encode_text(model: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    tower = _text_tower(model)
    context = tokens.shape[1]
    if context == tower.positional_embedding.shape[0]:
        return model.encode_text(tokens)
    # open_clip's causal encode_text, with positions and mask cut to `context` tokens
    cast_dtype = tower.transformer.get_cast_dtype()
    x = tower.token_embedding(tokens).to(cast_dtype) + tower.positional_embedding[:context].to(cast_dtype)
    x = tower.ln_final(tower.transformer(x, attn_mask=tower.attn_mask[:context, :context]))
    x = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]
    projection = tower.text_projection
    if projection is None:
        return x
    return projection(x) if isinstance(projection, torch.nn.Linear) else x @ projection


def _cache_path(loaded: LoadedModel, label_set: LabelSet) -> Path:
    key = json.dumps([HEAD_FORMAT, loaded.weights_id, label_set.fingerprint()])
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return config.cache_dir() / "heads" / f"{digest}.safetensors"


def _read(path: Path, device: torch.device) -> torch.Tensor | None:
    try:
        return load_file(str(path), device=str(device))["weights"]
    except Exception:  # a corrupt or partial cache file is rebuilt, never trusted
        return None


def _write(path: Path, weights: torch.Tensor, loaded: LoadedModel, label_set: LabelSet) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"weights_id": loaded.weights_id, "label_set": label_set.name,
                "n_classes": str(len(label_set.classnames)), "n_templates": str(len(label_set.templates))}
    temporary = path.with_suffix(".tmp")
    save_file({"weights": weights.detach().cpu().contiguous()}, str(temporary), metadata=metadata)
    temporary.replace(path)  # atomic: readers never see a half-written head
