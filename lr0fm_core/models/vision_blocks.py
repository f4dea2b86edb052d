"""Where a vision transformer's layers are, and hooks that read them: the one place that knows.

open_clip builds CLIP/OpenCLIP/MetaCLIP/CLIPA/DFN image towers as its own ``VisionTransformer``
(``conv1`` patchifies, ``transformer.resblocks`` are the blocks) and EVA / SigLIP towers as timm
trunks (``trunk.patch_embed``, ``trunk.blocks``). :func:`vision_layout` finds those parts;
:func:`capture_layers` records, during one forward, the patch-embedding output and every block's
output as batch-first token tensors ``(B, tokens, width)``: the N + 1 layers of the paper's
layer-wise analysis (Fig. 7 right) and the activations Grad-CAM reads (Fig. 16).
:func:`add_to_spatial_tokens` adds tensors to the spatial tokens after patchification and at every
block's input: where LR-TK0's LR tokens go (Fig. 10 left).
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

PATCH_EMBED = "patch_embed"


class UnsupportedArchitectureError(ValueError):
    """The image tower is not a vision transformer this tool can look inside."""


@dataclass(frozen=True)
class VisionLayout:
    """The parts of an image tower's transformer, in forward order."""

    kind: str  # "open_clip" or "timm"
    patch_embed: nn.Module  # its output holds one token per image patch
    blocks: tuple[nn.Module, ...]
    prefix_tokens: int  # class / register tokens in front of the spatial ones in a block's input
    grid: tuple[int, int]  # patches per column and row at the model's native resolution
    width: int
    batch_first: bool = True  # open_clip towers may run blocks sequence-first
    class_token_pooled: bool = False  # the embedding is the class token's alone: the last block's spatial outputs never reach it

    @property
    def layer_names(self) -> list[str]:
        """``patch_embed`` then ``block_1`` ... ``block_N`` (N + 1 layers)."""
        return [PATCH_EMBED] + [f"block_{i}" for i in range(1, len(self.blocks) + 1)]

    @property
    def spatial_tokens(self) -> int:
        return self.grid[0] * self.grid[1]


def vision_layout(model: nn.Module) -> VisionLayout:
    """The layout of ``model``'s image tower (``model`` is an open_clip model or its ``.visual``)."""
    visual = getattr(model, "visual", model)
    if hasattr(visual, "conv1") and hasattr(getattr(visual, "transformer", None), "resblocks"):
        return VisionLayout(
            kind="open_clip",
            patch_embed=visual.conv1,
            blocks=tuple(visual.transformer.resblocks),
            prefix_tokens=0 if getattr(visual, "class_embedding", None) is None else 1,
            grid=tuple(visual.grid_size),
            width=int(visual.conv1.out_channels),
            batch_first=bool(getattr(visual.transformer, "batch_first", True)),
            class_token_pooled=getattr(visual, "attn_pool", None) is None and getattr(visual, "pool_type", None) == "tok",
        )
    trunk = getattr(visual, "trunk", None)
    if trunk is not None and hasattr(trunk, "patch_embed") and hasattr(trunk, "blocks"):
        return VisionLayout(
            kind="timm",
            patch_embed=trunk.patch_embed,
            blocks=tuple(trunk.blocks),
            prefix_tokens=int(getattr(trunk, "num_prefix_tokens", 0)),
            grid=tuple(trunk.patch_embed.grid_size),
            width=int(trunk.embed_dim),
            class_token_pooled=getattr(trunk, "global_pool", None) == "token",
        )
    inner = type(getattr(visual, "trunk", visual)).__name__
    raise UnsupportedArchitectureError(
        f"the image tower {inner} is not a vision transformer (ResNet towers have no tokens); "
        f"choose a ViT-based model"
    )


def _as_tokens(output: torch.Tensor, layout: VisionLayout, is_patch_embed: bool) -> torch.Tensor:
    """A layer's output as (B, tokens, width)."""
    if is_patch_embed and output.dim() == 4:
        if output.shape[1] == layout.width:  # conv output (B, width, h, w)
            return output.flatten(2).transpose(1, 2)
        return output.flatten(1, 2)  # channels-last (B, h, w, width)
    if not layout.batch_first and not is_patch_embed:
        return output.transpose(0, 1)
    return output


def _from_tokens(tokens: torch.Tensor, like: torch.Tensor, layout: VisionLayout, is_patch_embed: bool) -> torch.Tensor:
    """Inverse of :func:`_as_tokens`: (b, tokens, width) in the layout of ``like`` (b is like's batch or 1)."""
    if is_patch_embed and like.dim() == 4:
        if like.shape[1] == layout.width:
            return tokens.transpose(1, 2).reshape(tokens.shape[0], *like.shape[1:])
        return tokens.reshape(tokens.shape[0], *like.shape[1:])
    if not layout.batch_first and not is_patch_embed:
        return tokens.transpose(0, 1)
    return tokens


@contextlib.contextmanager
def capture_layers(model: nn.Module, layers: list[str] | None = None):
    """Record the named layers' outputs (default: all N + 1) during forwards inside the block.

    Yields a dict ``{layer name: (B, tokens, width) tensor}`` filled by the forward. The tensors
    stay attached to the autograd graph and lie on the path to the model's output (a layer whose
    output is not batch-first tokens passes on its recorded tokens, reshaped back), so gradients
    with respect to them can be taken (Grad-CAM). The patch embedding is recorded with anything
    :func:`add_to_spatial_tokens` adds to it. Only forwards in the caller's thread (context) are
    recorded: other threads (app sessions) may run the same model meanwhile, unaffected.
    """
    layout = vision_layout(model)
    wanted = layout.layer_names if layers is None else layers
    unknown = [name for name in wanted if name not in layout.layer_names]
    if unknown:
        raise ValueError(f"unknown layers {unknown}; this model has {layout.layer_names[0]}..{layout.layer_names[-1]}")
    _install_capture_hooks(layout)
    captured: dict[str, torch.Tensor] = {}
    reset = _CAPTURE.set(_Capture(layout.patch_embed, frozenset(wanted), captured))
    try:
        yield captured
    finally:
        _CAPTURE.reset(reset)


@dataclass(frozen=True)
class _Capture:
    """What the capture hooks record in the current context: which tower, which layers, and where."""

    tower: nn.Module  # its patch embedding: one per image tower
    layers: frozenset[str]
    captured: dict[str, torch.Tensor]


_CAPTURE: ContextVar[_Capture | None] = ContextVar("lr0fm_capture_layers", default=None)
_CAPTURE_HOOKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # patch embedding -> hook handles
_CAPTURE_LOCK = threading.Lock()


def _install_capture_hooks(layout: VisionLayout) -> None:
    """Forward hooks (once per tower, never removed) that record for the capture active in the
    forward's own context: hooks added and removed per call would race other threads' forwards."""
    with _CAPTURE_LOCK:
        if layout.patch_embed in _CAPTURE_HOOKS:
            return
        tower = weakref.ref(layout.patch_embed)

        def hook_for(name: str):
            is_patch_embed = name == PATCH_EMBED

            def hook(module, args, output):
                active = _CAPTURE.get()
                if active is None or active.tower is not tower() or name not in active.layers:
                    return None
                tensor = output[0] if isinstance(output, tuple) else output
                tokens = active.captured[name] = _as_tokens(tensor, layout, is_patch_embed)
                if tokens is tensor:
                    return None
                rebuilt = _from_tokens(tokens, tensor, layout, is_patch_embed)  # same values, computed from `tokens`
                return (rebuilt, *output[1:]) if isinstance(output, tuple) else rebuilt
            return hook

        modules = zip(layout.layer_names, (layout.patch_embed, *layout.blocks))
        _CAPTURE_HOOKS[layout.patch_embed] = [module.register_forward_hook(hook_for(name)) for name, module in modules]


TokenAddition = Callable[[int], "torch.Tensor | None"]
"""position -> a (spatial tokens, width) tensor to add there, or None to leave that position alone."""


class TokenGridError(ValueError):
    """Tokens to add do not fit the tokens the tower actually produced (another input size or grid)."""


def add_to_spatial_tokens(model: nn.Module, addition: TokenAddition) -> list[RemovableHandle]:
    """Hooks that add ``addition(position)`` to the spatial tokens at the tower's N + 1 token positions.

    Position 0 is the patch embedding's output, right after patchification (before the class token,
    the positional embedding and any pre-norm are applied); position i (1..N) is the input of block
    i. Prefix (class / register) tokens are never touched. ``addition`` is called on every forward,
    so what is added can depend on state (e.g. which LR tokens are switched on); its tensor is cast
    to the activations' dtype. The position-0 hook runs before any other forward hook of the patch
    embedding. Remove the hooks with ``handle.remove()``.
    """
    layout = vision_layout(model)

    def patch_embed_hook(module, args, output):
        tokens = addition(0)
        if tokens is None:
            return None
        _check_grid(tokens, _as_tokens(output, layout, is_patch_embed=True).shape[1], layout)
        return output + _from_tokens(tokens[None].to(output.dtype), output, layout, is_patch_embed=True)

    def block_hook_for(position: int):
        def hook(module, args):
            tokens = addition(position)
            if tokens is None:
                return None
            x, prefix = args[0], layout.prefix_tokens
            sequence = 1 if layout.batch_first else 0
            _check_grid(tokens, x.shape[sequence] - prefix, layout)
            spatial = x.narrow(sequence, prefix, layout.spatial_tokens)
            spatial = spatial + _from_tokens(tokens[None].to(x.dtype), x, layout, is_patch_embed=False)
            return (torch.cat([x.narrow(sequence, 0, prefix), spatial], sequence) if prefix else spatial, *args[1:])
        return hook

    handles = [layout.patch_embed.register_forward_hook(patch_embed_hook, prepend=True)]
    handles += [block.register_forward_pre_hook(block_hook_for(i)) for i, block in enumerate(layout.blocks, 1)]
    return handles


def _check_grid(tokens: torch.Tensor, spatial: int, layout: VisionLayout) -> None:
    """Refuse tokens that are not (spatial tokens x width) of the layout, or an input giving another token count."""
    if tokens.shape != (layout.spatial_tokens, layout.width) or spatial != layout.spatial_tokens:
        grid = "x".join(map(str, layout.grid))
        raise TokenGridError(
            f"this image tower has a {grid} patch grid ({layout.spatial_tokens} spatial tokens of width "
            f"{layout.width}); tokens of shape {tuple(tokens.shape)} cannot be added to the {spatial} spatial "
            f"tokens of this input (feed images at the model's own resolution)"
        )
