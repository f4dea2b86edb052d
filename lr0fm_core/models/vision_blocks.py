"""Where a vision transformer's layers are, and hooks that read them: the one place that knows.

open_clip builds CLIP/OpenCLIP/MetaCLIP/CLIPA/DFN image towers as its own ``VisionTransformer``
(``conv1`` patchifies, ``transformer.resblocks`` are the blocks) and EVA / SigLIP towers as timm
trunks (``trunk.patch_embed``, ``trunk.blocks``). :func:`vision_layout` finds those parts;
:func:`capture_layers` records, during one forward, the patch-embedding output and every block's
output as batch-first token tensors ``(B, tokens, width)``: the N + 1 layers of the paper's
layer-wise analysis (Fig. 7 right) and the activations Grad-CAM reads (Fig. 16).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn

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


@contextlib.contextmanager
def capture_layers(model: nn.Module, layers: list[str] | None = None):
    """Record the named layers' outputs (default: all N + 1) during forwards inside the block.

    Yields a dict ``{layer name: (B, tokens, width) tensor}`` filled by the forward. The tensors
    stay attached to the autograd graph, so gradients with respect to them can be taken.
    """
    layout = vision_layout(model)
    modules = dict(zip(layout.layer_names, (layout.patch_embed, *layout.blocks)))
    wanted = layout.layer_names if layers is None else layers
    unknown = [name for name in wanted if name not in modules]
    if unknown:
        raise ValueError(f"unknown layers {unknown}; this model has {layout.layer_names[0]}..{layout.layer_names[-1]}")
    captured: dict[str, torch.Tensor] = {}

    def hook_for(name: str):
        def hook(module, args, output):
            tensor = output[0] if isinstance(output, tuple) else output
            captured[name] = _as_tokens(tensor, layout, name == PATCH_EMBED)
        return hook

    handles = [modules[name].register_forward_hook(hook_for(name)) for name in wanted]
    try:
        yield captured
    finally:
        for handle in handles:
            handle.remove()
