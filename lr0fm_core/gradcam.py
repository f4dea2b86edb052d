"""Grad-CAM for zero-shot CLIP (Selvaraju et al. 2017; the paper's Fig. 16 / Fig. 23).

The score is the CLIP logit of one class: the logit scale times the cosine similarity between the
image embedding and the class's text embedding (a zero-shot head row). At a chosen layer's spatial
tokens A (tokens x width, from :func:`lr0fm_core.models.vision_blocks.capture_layers`), each channel
is weighted by its gradient averaged over the tokens, alpha = mean_tokens(d score / d A); the map
is ReLU(A @ alpha), reshaped to the patch grid, then upsampled (bilinear) to the view. It works the
same for a model with LR tokens (:mod:`lr0fm_core.lr_tokens`): the block outputs are recorded
before the next position's tokens are added; the patch embedding is recorded with its set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .models.loading import LoadedModel
from .models.vision_blocks import PATCH_EMBED, capture_layers, vision_layout
from .pipeline import to_model_input
from .zeroshot.head import ZeroShotHead

LOGIT_SCALE_MAX = 100.0
JET = {  # (position, intensity) per channel: matplotlib's 'jet' segment data
    "red": ((0.0, 0.0), (0.35, 0.0), (0.66, 1.0), (0.89, 1.0), (1.0, 0.5)),
    "green": ((0.0, 0.0), (0.125, 0.0), (0.375, 1.0), (0.64, 1.0), (0.91, 0.0), (1.0, 0.0)),
    "blue": ((0.0, 0.5), (0.11, 1.0), (0.34, 1.0), (0.65, 0.0), (1.0, 0.0)),
}


class GradCAMError(ValueError):
    """A layer, class or view Grad-CAM cannot use."""


@dataclass(frozen=True, eq=False)
class GradCAM:
    """A class-activation map of one view for one class, with the model's probability for that class."""

    grid: np.ndarray  # (grid rows, grid columns), >= 0: ReLU(A @ alpha) per patch
    heatmap: np.ndarray  # (view height, view width) in [0, 1]: the grid upsampled, divided by its maximum
    class_index: int
    label: str
    probabilities: np.ndarray  # (classes,): the zero-shot softmax for this view
    layer: str

    @property
    def probability(self) -> float:
        """The probability of the mapped class."""
        return float(self.probabilities[self.class_index])

    @property
    def top1(self) -> int:
        return int(self.probabilities.argmax())


def gradcam_layers(model: torch.nn.Module) -> list[str]:
    """Layers whose spatial tokens reach the image embedding: all N + 1, less the last block when the
    tower pools its class token (that block's spatial outputs are then discarded)."""
    layout = vision_layout(model)
    return layout.layer_names[:-1] if layout.class_token_pooled else layout.layer_names


def default_layer(model: torch.nn.Module) -> str:
    """The deepest layer that reaches the embedding (the usual choice for ViT Grad-CAM)."""
    return gradcam_layers(model)[-1]


def grad_cam(loaded: LoadedModel, head: ZeroShotHead, view: Image.Image, class_index: int | None = None,
             layer: str | None = None) -> GradCAM:
    """Grad-CAM of ``view`` (an RGB model input, e.g. from :func:`lr0fm_core.pipeline.model_view`).

    ``class_index`` defaults to the top-1 class; ``layer`` to :func:`default_layer`.
    """
    if head.weights_id != loaded.weights_id:
        raise GradCAMError(f"the zero-shot head was built for {head.weights_id}, not for {loaded.weights_id}")
    if view.size != (loaded.resolution, loaded.resolution):
        raise GradCAMError(f"the view is {view.width}x{view.height} px; {loaded.name} takes "
                           f"{loaded.resolution}x{loaded.resolution} (make it with pipeline.model_view)")
    layers = gradcam_layers(loaded.model)
    layer = layer or layers[-1]
    if layer not in layers:
        raise GradCAMError(f"Grad-CAM layer {layer!r} is not one of {', '.join(layers)} for {loaded.name}")
    n_classes = len(head.classnames)
    if class_index is not None and not 0 <= class_index < n_classes:
        raise GradCAMError(f"class index {class_index} is outside 0..{n_classes - 1} ({head.label_set.name})")

    layout = vision_layout(loaded.model)
    pixels = to_model_input([view.convert("RGB")], loaded.mean, loaded.std).to(loaded.device).requires_grad_(True)
    with torch.enable_grad(), capture_layers(loaded.model, [layer]) as captured:
        embedding = loaded.model.encode_image(pixels).float()
    scale = loaded.model.logit_scale.detach().exp().clamp(max=LOGIT_SCALE_MAX).float()
    class_embeddings = head.weights.float().clone()  # a normal tensor: heads are made in inference mode
    logits = scale * F.normalize(embedding, dim=-1) @ class_embeddings.T  # (1, classes)
    index = int(logits[0].argmax()) if class_index is None else class_index
    activations = captured[layer]
    (gradients,) = torch.autograd.grad(logits[0, index], activations)

    start = 0 if layer == PATCH_EMBED else layout.prefix_tokens
    spatial = slice(start, start + layout.spatial_tokens)
    tokens, token_grads = activations[0, spatial].detach().float(), gradients[0, spatial].float()
    grid = F.relu(tokens @ token_grads.mean(dim=0)).reshape(layout.grid)
    upsampled = F.interpolate(grid[None, None], size=(view.height, view.width), mode="bilinear", align_corners=False)[0, 0]
    peak = upsampled.max()
    heatmap = upsampled / peak if peak > 0 else upsampled
    probabilities = logits.detach().softmax(dim=-1)[0].cpu().numpy()
    return GradCAM(grid.cpu().numpy(), heatmap.clamp(0, 1).cpu().numpy(), index, head.classnames[index],
                   probabilities, layer)


def jet(values: np.ndarray) -> np.ndarray:
    """The 'jet' colormap (dark blue -> cyan -> yellow -> dark red) of values in [0, 1], as uint8 RGB."""
    x = np.clip(values, 0, 1)
    rgb = np.stack([np.interp(x, *zip(*JET[channel])) for channel in ("red", "green", "blue")], axis=-1)
    return (rgb * 255).round().astype(np.uint8)


def overlay(view: Image.Image, heatmap: np.ndarray, alpha: float = 0.5) -> Image.Image:
    """The heatmap in :func:`jet` colours blended over the view (``alpha``: the heatmap's weight)."""
    if heatmap.shape != (view.height, view.width):
        raise GradCAMError(f"heatmap {heatmap.shape} does not match the {view.width}x{view.height} view")
    return Image.blend(view.convert("RGB"), Image.fromarray(jet(heatmap)), alpha)
