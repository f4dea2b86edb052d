"""LR tokens (LR-TK0, paper section 5.1, Fig. 10 left): trainable tokens added to a frozen ViT's spatial tokens.

Where the tokens go (our reading of section 5.1, Fig. 10 and Table 14). A tower with N blocks has
N + 1 *token positions*: position 0 is the patch embedding's output, right after patchification
(before the class token, positional embedding and pre-norm are applied); position i (1..N) is the
input of block i. Each position gets one set of (spatial tokens x width) LR tokens, **added**
(not concatenated, unlike prompt tuning) to the spatial tokens; class and register tokens are
untouched. ``start_block`` is Table 14 / Fig. 15's ``[i]``, "LR tokens after the i-th block and none
after patchification": ``start_block=0`` is the paper's default, all N + 1 sets (Table 14's [0] row
equals Table 2's LR-TK0 row); ``start_block=k`` (1 <= k < N) puts sets only at the inputs of blocks
k + 1 .. N, i.e. after blocks k .. N - 1, and none at position 0 ([11] on a 12-block ViT-B: one set,
before the last block). Number of LR tokens = spatial tokens x sets, e.g. 196 x 13 x 768 = 1.96 M
parameters for a ViT-B/16 at 224 px (Meta-B/16: 149.6 M -> 151.6 M, Table 2).

Tokens start at zero, so an untrained set leaves the model's features exactly as they were; the
pretrained weights (image tower, text tower, logit scale) are frozen (``requires_grad=False``).

API::

    tokens = LRTokens.for_model(loaded.model, start_block=0)   # zero-initialised, trainable
    tokened = with_lr_tokens(loaded, tokens)                    # a LoadedModel using them for images
    save_lr_tokens(path, tokens, loaded, metadata)              # safetensors: tokens + metadata only
    tokened = load_lr_tokens(loaded, path_or_bytes)             # refuses tokens of another model
    head = head_for_tokens(head, tokened)                       # the base model's zero-shot head, reused

``tokened`` is a :class:`LRTokenModel` (a :class:`~lr0fm_core.models.loading.LoadedModel`): it
works with :func:`lr0fm_core.predict.predict` and everything else that takes a loaded model. Its
``weights_id`` is the base model's plus a digest of the token values, so caches keyed by weights
(image features, sweeps, results) never mix features with and without tokens; it has a feature
cache of its own. The text tower is untouched by LR tokens, so the base model's zero-shot head is
exactly the tokened model's: :func:`head_for_tokens` relabels it instead of encoding every prompt
again. The base model stays usable without tokens: the tokens act only inside the tokened model's
image forwards (a context variable switches them on, per thread), never on other calls of the
shared base network.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import struct
import threading
import weakref
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from .models.loading import LoadedModel
from .models.vision_blocks import VisionLayout, add_to_spatial_tokens, vision_layout
from .zeroshot.head import ZeroShotHead

FORMAT = "lr0fm-lr-tokens/1"
TOKENS_KEY = "lr_tokens"
OPTIMIZER_KEYS = ("optimizer.exp_avg", "optimizer.exp_avg_sq")  # AdamW moments, for resuming training
REQUIRED_METADATA = ("model", "pretrained", "start_block", "n_blocks", "grid", "width")
MAX_HEADER_BYTES = 1 << 20


class LRTokensError(ValueError):
    """An LR-token checkpoint that cannot be read, or LR tokens that do not fit a model."""


def token_positions(n_blocks: int, start_block: int = 0) -> tuple[int, ...]:
    """The token positions that get a set of LR tokens (0: after patchification, i: input of block i)."""
    if not 0 <= start_block < n_blocks:
        raise LRTokensError(f"start block must be in 0..{n_blocks - 1} for a tower with {n_blocks} blocks, "
                            f"got {start_block}")
    return tuple(range(n_blocks + 1)) if start_block == 0 else tuple(range(start_block + 1, n_blocks + 1))


def lr_token_count(layout: VisionLayout, start_block: int = 0) -> int:
    """Trainable scalars: spatial tokens x width x sets (N + 1 sets for start block 0, section 5.1)."""
    return layout.spatial_tokens * layout.width * len(token_positions(len(layout.blocks), start_block))


class LRTokens(nn.Module):
    """One (spatial tokens x width) set of trainable LR tokens per token position; zero-initialised."""

    def __init__(self, n_blocks: int, grid: tuple[int, int], width: int, start_block: int = 0,
                 device: torch.device | str | None = None):
        super().__init__()
        self.n_blocks, self.grid, self.width, self.start_block = n_blocks, tuple(grid), width, start_block
        self.positions = token_positions(n_blocks, start_block)
        self._index = {position: i for i, position in enumerate(self.positions)}
        self.tokens = nn.Parameter(torch.zeros(len(self.positions), grid[0] * grid[1], width, device=device))

    @classmethod
    def for_model(cls, model: nn.Module, start_block: int = 0) -> "LRTokens":
        """Zero tokens shaped for ``model``'s image tower, on its device."""
        layout = vision_layout(model)
        device = next(layout.patch_embed.parameters()).device
        return cls(len(layout.blocks), layout.grid, layout.width, start_block, device)

    def at(self, position: int) -> torch.Tensor | None:
        """The tokens added at ``position``, None where this set has none."""
        index = self._index.get(position)
        return None if index is None else self.tokens[index]

    def check_fits(self, layout: VisionLayout, what: str = "this model") -> None:
        """Refuse a tower with another depth, patch grid or width."""
        mine = (self.n_blocks, self.grid, self.width)
        theirs = (len(layout.blocks), tuple(layout.grid), layout.width)
        if mine != theirs:
            raise LRTokensError(
                f"the LR tokens fit an image tower with {mine[0]} blocks, a {mine[1][0]}x{mine[1][1]} patch grid "
                f"and width {mine[2]}; {what} has {theirs[0]} blocks, a {theirs[1][0]}x{theirs[1][1]} grid "
                f"and width {theirs[2]}"
            )

    def digest(self) -> str:
        """A fingerprint of the placement and the token values, for caches."""
        h = hashlib.sha256(f"{self.start_block}|{self.n_blocks}|{self.grid}|{self.width}".encode())
        h.update(self.tokens.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
        return h.hexdigest()[:16]

    @contextlib.contextmanager
    def active(self, model: nn.Module):
        """Inside the block, forwards of ``model``'s image tower in this thread add these tokens."""
        visual = getattr(model, "visual", model)
        _install_dispatch(visual)
        reset = _ACTIVE.set((visual, self))
        try:
            yield
        finally:
            _ACTIVE.reset(reset)


# --------------------------------------------------------------- one dispatch hook set per tower

_ACTIVE: ContextVar[tuple[nn.Module, LRTokens] | None] = ContextVar("lr0fm_active_lr_tokens", default=None)
_DISPATCH: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # tower -> its hook handles
_DISPATCH_LOCK = threading.Lock()


def _install_dispatch(visual: nn.Module) -> None:
    """Hooks (once per tower) that add the tokens active in the current context for this tower."""
    with _DISPATCH_LOCK:
        if visual in _DISPATCH:
            return
        tower = weakref.ref(visual)

        def addition(position: int) -> torch.Tensor | None:
            active = _ACTIVE.get()
            if active is None or active[0] is not tower():
                return None
            return active[1].at(position)

        _DISPATCH[visual] = add_to_spatial_tokens(visual, addition)


# --------------------------------------------------------------- the model with tokens

class LRTokenCLIP(nn.Module):
    """An open_clip model whose image encoder adds LR tokens; text, logit scale and the rest are the model's."""

    def __init__(self, clip: nn.Module, lr_tokens: LRTokens):
        super().__init__()
        self.clip, self.lr_tokens = clip, lr_tokens

    def encode_image(self, image: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        with self.lr_tokens.active(self.clip):
            return self.clip.encode_image(image, normalize=normalize)

    def encode_text(self, text: torch.Tensor, normalize: bool = False) -> torch.Tensor:
        return self.clip.encode_text(text, normalize=normalize)

    def forward(self, *args, **kwargs):
        with self.lr_tokens.active(self.clip):
            return self.clip(*args, **kwargs)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.clip, name)  # visual, logit_scale, the text tower's parts, ...


@dataclass
class LRTokenModel(LoadedModel):
    """A loaded model with LR tokens: ``model`` is an :class:`LRTokenCLIP` around ``base.model``."""

    base: LoadedModel | None = field(default=None, repr=False)
    lr_tokens_source: str | None = None

    @property
    def lr_tokens(self) -> LRTokens:
        return self.model.lr_tokens

    @property
    def description(self) -> str:
        return f"{self.base.description} + LR tokens ({self.lr_tokens_source or 'in memory'})"


def with_lr_tokens(loaded: LoadedModel, tokens: LRTokens, source: str | None = None) -> LRTokenModel:
    """``loaded`` with ``tokens`` added in its image tower; freezes every pretrained weight of ``loaded.model``.

    The new ``weights_id`` fingerprints the token values now: wrap again after changing them (training).
    """
    if isinstance(loaded, LRTokenModel):
        raise LRTokensError(f"{loaded.description} already has LR tokens; apply tokens to the base model")
    tokens.check_fits(vision_layout(loaded.model), loaded.name)
    loaded.model.requires_grad_(False)
    _install_dispatch(getattr(loaded.model, "visual", loaded.model))  # now, not during some later forward
    shared = {f.name: getattr(loaded, f.name) for f in dataclasses.fields(LoadedModel) if f.name != "feature_cache"}
    shared |= {"model": LRTokenCLIP(loaded.model, tokens),
               "weights_id": f"{loaded.weights_id}|lr-tokens:{tokens.digest()}"}
    return LRTokenModel(**shared, base=loaded, lr_tokens_source=source)  # a feature cache of its own


def head_for_tokens(head: ZeroShotHead, tokened: LoadedModel) -> ZeroShotHead:
    """The zero-shot head for ``tokened``: a head of its base model serves as is (LR tokens leave text alone)."""
    if head.weights_id == tokened.weights_id:
        return head
    base = getattr(tokened, "base", None)
    if base is None or head.weights_id != base.weights_id:
        raise LRTokensError(f"the zero-shot head was built for {head.weights_id}, not for {tokened.weights_id} "
                            f"or its model without LR tokens")
    return dataclasses.replace(head, weights_id=tokened.weights_id)


# --------------------------------------------------------------- checkpoints

def save_lr_tokens(path: str | os.PathLike, tokens: LRTokens, loaded: LoadedModel, metadata: dict | None = None,
                   optimizer_state: dict[str, torch.Tensor] | None = None) -> Path:
    """Write the tokens (and optionally AdamW moments) with metadata as safetensors, atomically.

    The metadata always names the model, its weights, the placement and the grid; training adds
    buckets, steps, epochs and loss (values are stored as text).
    """
    path = Path(path)
    meta = {"format": FORMAT, "model": loaded.name, "pretrained": loaded.pretrained,
            "start_block": str(tokens.start_block), "n_blocks": str(tokens.n_blocks),
            "grid": f"{tokens.grid[0]}x{tokens.grid[1]}", "width": str(tokens.width)}
    meta |= {key: str(value) for key, value in (metadata or {}).items()}
    tensors = {TOKENS_KEY: tokens.tokens.detach().to("cpu", torch.float32).contiguous()}
    tensors |= {key: value.detach().to("cpu", torch.float32).contiguous() for key, value in (optimizer_state or {}).items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(save_safetensors(tensors, metadata=meta))
    temporary.replace(path)
    return path


@dataclass(frozen=True)
class LRTokenCheckpoint:
    """What an LR-token file holds: the tokens, their metadata, and AdamW moments when saved by training."""

    tokens: LRTokens
    metadata: dict[str, str]
    optimizer_state: dict[str, torch.Tensor]

    @property
    def model(self) -> str:
        return self.metadata["model"]

    @property
    def pretrained(self) -> str:
        return self.metadata["pretrained"]

    def check_model(self, loaded: LoadedModel) -> None:
        """Refuse a model of another architecture or other weights than the tokens were trained for."""
        if loaded.name != self.model:
            raise LRTokensError(f"the LR tokens were trained for {self.model} (pretrained={self.pretrained}), "
                                f"not for {loaded.name}; load {self.model} to use them")
        if "checkpoint" not in (loaded.pretrained, self.pretrained) and loaded.pretrained != self.pretrained:
            raise LRTokensError(f"the LR tokens were trained for {self.model} with pretrained={self.pretrained}, "
                                f"not pretrained={loaded.pretrained}; tokens only make sense on the weights they "
                                f"were trained on")
        self.tokens.check_fits(vision_layout(loaded.model), f"{loaded.name}")


def read_lr_tokens(source: str | os.PathLike | bytes, device: torch.device | str = "cpu") -> LRTokenCheckpoint:
    """Read an LR-token checkpoint (a safetensors file, or its bytes); no pickled code is ever run."""
    name = "uploaded LR tokens" if isinstance(source, (bytes, bytearray)) else f"LR-token file {source}"
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    else:
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise LRTokensError(f"cannot read {name}: {exc.strerror or exc}") from exc
    metadata = _safetensors_metadata(data, name)
    if metadata.get("format") != FORMAT:
        raise LRTokensError(f"{name} is a safetensors file but not LR tokens written by lr0fm "
                            f"(format {metadata.get('format')!r}, expected {FORMAT!r})")
    missing = [key for key in REQUIRED_METADATA if key not in metadata]
    if missing:
        raise LRTokensError(f"{name} lacks the metadata {', '.join(missing)}")
    try:
        n_blocks, start_block, width = (int(metadata[k]) for k in ("n_blocks", "start_block", "width"))
        grid = tuple(int(side) for side in metadata["grid"].split("x"))
    except ValueError as exc:
        raise LRTokensError(f"{name} has garbled metadata: {exc}") from exc
    tensors = load_safetensors(data)
    if TOKENS_KEY not in tensors:
        raise LRTokensError(f"{name} holds no {TOKENS_KEY!r} tensor")
    values = tensors[TOKENS_KEY]
    tokens = LRTokens(n_blocks, grid, width, start_block, device=device)
    if values.shape != tokens.tokens.shape:
        raise LRTokensError(f"{name}: its token tensor has shape {tuple(values.shape)}, but {len(tokens.positions)} "
                            f"sets on a {grid[0]}x{grid[1]} grid of width {width} need {tuple(tokens.tokens.shape)}")
    with torch.no_grad():
        tokens.tokens.copy_(values)
    moments = {key: tensors[key].to(device) for key in OPTIMIZER_KEYS if key in tensors}
    return LRTokenCheckpoint(tokens, metadata, moments)


def load_lr_tokens(loaded: LoadedModel, source: str | os.PathLike | bytes, name: str | None = None) -> LRTokenModel:
    """``loaded`` with the LR tokens of a checkpoint (path or bytes); refuses tokens of another model."""
    checkpoint = read_lr_tokens(source, loaded.device)
    checkpoint.check_model(loaded)
    return with_lr_tokens(loaded, checkpoint.tokens, name or (None if isinstance(source, (bytes, bytearray))
                                                              else str(source)))


def _safetensors_metadata(data: bytes, name: str) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file, read from its JSON header without loading tensors."""
    try:
        (length,) = struct.unpack("<Q", data[:8])
        if length > min(MAX_HEADER_BYTES, len(data) - 8):
            raise ValueError("header length out of range")
        header = json.loads(data[8:8 + length])
        return dict(header.get("__metadata__") or {})
    except (struct.error, ValueError, AttributeError) as exc:
        raise LRTokensError(f"{name} is not a safetensors file ({exc}); LR tokens are saved as .safetensors by "
                            f"`lr0fm train-lr-tokens`") from exc
