"""The paper's low-resolution pipeline (Appendix E, Listing 1, 'Vanilla'): the one place that knows it.

    Resize(n, bicubic) -> Resize(model_res, bicubic) -> CenterCrop(model_res)
    -> convert RGB -> ToTensor -> Normalize(model mean, std)

``n`` resizes the *shorter* side to ``n`` pixels (aspect ratio kept), exactly as torchvision's
``transforms.Resize(int)``; ``n = "hr"`` skips the low-resolution step, which gives the model's
standard high-resolution preprocessing. Other degradations (:class:`Degradation`) are options,
never the default.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image, ImageFilter

from .resolution import HR, Resolution, parse_resolution

PAPER_RESOLUTIONS = (16, 32, 64, 128)

INTERPOLATIONS = {  # name -> PIL filter
    "nearest": Image.Resampling.NEAREST,
    "box": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
    "hamming": Image.Resampling.HAMMING,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}
_TENSOR_INTERPOLATIONS = {  # what torch can resize without antialiasing
    "nearest": TF.InterpolationMode.NEAREST,
    "bilinear": TF.InterpolationMode.BILINEAR,
    "bicubic": TF.InterpolationMode.BICUBIC,
}


@dataclass(frozen=True)
class Degradation:
    """How the low-resolution image is made. The defaults are the paper's pipeline.

    ``interpolation`` is used for the downsampling to ``n``; the upsampling to the model's
    resolution always uses bicubic, as the models' own preprocessing does. ``antialias=False``
    downsamples without a low-pass filter (aliasing, as a cheap camera or a naive resize does).
    ``blur_sigma`` blurs the full image before downsampling (optics); ``jpeg_quality`` compresses
    the low-resolution image (transmission).
    """

    interpolation: str = "bicubic"
    antialias: bool = True
    jpeg_quality: int | None = None
    blur_sigma: float | None = None

    def __post_init__(self):
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"unknown interpolation {self.interpolation!r}; choose from {', '.join(INTERPOLATIONS)}")
        if not self.antialias and self.interpolation not in _TENSOR_INTERPOLATIONS:
            raise ValueError(f"antialias off is available for {', '.join(_TENSOR_INTERPOLATIONS)} only")
        if self.jpeg_quality is not None and not 1 <= self.jpeg_quality <= 95:
            raise ValueError(f"JPEG quality must be in 1..95, got {self.jpeg_quality}")
        if self.blur_sigma is not None and self.blur_sigma <= 0:
            raise ValueError(f"blur sigma must be positive, got {self.blur_sigma}")

    @property
    def is_paper(self) -> bool:
        return self == PAPER

    def key(self) -> str:
        """A short stable text for caches and result tables."""
        return f"{self.interpolation}|aa={int(self.antialias)}|jpeg={self.jpeg_quality}|blur={self.blur_sigma}"


PAPER = Degradation()


def shorter_side_size(width: int, height: int, size: int) -> tuple[int, int]:
    """(width, height) with the shorter side at ``size``, as torchvision's ``Resize(int)`` computes it."""
    if width <= height:
        return size, int(size * height / width)
    return int(size * width / height), size


def resize_shorter(image: Image.Image, size: int, interpolation: str = "bicubic", antialias: bool = True) -> Image.Image:
    """Resize so the shorter side is ``size`` pixels."""
    target = shorter_side_size(*image.size, size)
    if target == image.size:
        return image
    if antialias:
        return image.resize(target, INTERPOLATIONS[interpolation])
    resized = TF.resize(TF.pil_to_tensor(image), [target[1], target[0]],
                        interpolation=_TENSOR_INTERPOLATIONS[interpolation], antialias=False)
    return TF.to_pil_image(resized)


def center_crop(image: Image.Image, size: int) -> Image.Image:
    """Square centre crop with torchvision's rounding (the image is at least ``size`` on each side)."""
    width, height = image.size
    left, top = int(round((width - size) / 2.0)), int(round((height - size) / 2.0))
    return image.crop((left, top, left + size, top + size))


def low_resolution_image(image: Image.Image, n: int, degradation: Degradation = PAPER) -> Image.Image:
    """The n-pixel image a low-resolution camera would deliver (shorter side ``n``)."""
    if degradation.blur_sigma:
        image = image.filter(ImageFilter.GaussianBlur(degradation.blur_sigma))
    low = resize_shorter(image, n, degradation.interpolation, degradation.antialias)
    if degradation.jpeg_quality is not None:
        buffer = io.BytesIO()
        low.convert("RGB").save(buffer, format="JPEG", quality=degradation.jpeg_quality)
        low = Image.open(buffer)
        low.load()
    return low


def model_view(image: Image.Image, resolution: Resolution, model_resolution: int,
               degradation: Degradation = PAPER) -> Image.Image:
    """The exact RGB image the model sees before ToTensor/Normalize, at ``resolution`` (int or "hr")."""
    resolution = parse_resolution(resolution)
    if resolution != HR:
        image = low_resolution_image(image, resolution, degradation)
    image = center_crop(resize_shorter(image, model_resolution, "bicubic"), model_resolution)
    return image.convert("RGB")


def to_model_input(views: Sequence[Image.Image], mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """ToTensor + Normalize for a batch of equally sized RGB images: a float tensor (B, 3, H, W)."""
    pixels = torch.from_numpy(np.stack([np.asarray(view, dtype=np.uint8) for view in views]))
    batch = pixels.permute(0, 3, 1, 2).contiguous().to(torch.float32).div(255)
    mean_t = torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    std_t = torch.as_tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return batch.sub_(mean_t).div_(std_t)


def lr_transform(resolution: Resolution, model_resolution: int, mean: Sequence[float], std: Sequence[float],
                 degradation: Degradation = PAPER) -> Callable[[Image.Image], torch.Tensor]:
    """Listing 1 as a per-image transform (PIL image -> normalized (3, H, W) tensor), for data loaders."""
    resolution = parse_resolution(resolution)

    def transform(image: Image.Image) -> torch.Tensor:
        return to_model_input([model_view(image, resolution, model_resolution, degradation)], mean, std)[0]

    return transform
