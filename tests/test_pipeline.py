"""The low-resolution pipeline equals the paper's Listing 1 ('Vanilla'), written with torchvision."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms
from torchvision.transforms import InterpolationMode

from lr0fm_core.pipeline import (
    HR, PAPER, Degradation, lr_transform, model_view, parse_resolution, resize_shorter, to_model_input,
)

MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


def listing1(low_res, org_res, mean=MEAN, std=STD, to_tensor=True):
    """Appendix E, Listing 1, Pipeline-1: Vanilla (the paper's code, verbatim in torchvision)."""
    steps = [] if low_res == HR else [transforms.Resize(low_res, interpolation=InterpolationMode.BICUBIC)]
    steps += [
        transforms.Resize(org_res, interpolation=InterpolationMode.BICUBIC),
        transforms.CenterCrop(size=(org_res, org_res)),
        lambda image: image.convert("RGB"),
    ]
    if to_tensor:
        steps += [transforms.ToTensor(), transforms.Normalize(mean, std)]
    return transforms.Compose(steps)


def crops(photo):
    """The photo as landscape, portrait, odd-sized and tiny images (the shared photos are square)."""
    return [
        photo,
        photo.crop((0, 0, 512, 301)),
        photo.crop((37, 5, 210, 394)),
        photo.crop((0, 0, 97, 61)).convert("L"),
        photo.resize((20, 28)),
    ]


@pytest.mark.parametrize("org_res", [224, 336, 64])
@pytest.mark.parametrize("low_res", [8, 16, 32, 64, 128, HR])
def test_model_view_equals_listing1_pixel_for_pixel(photo, low_res, org_res):
    reference = listing1(low_res, org_res, to_tensor=False)
    for image in crops(photo):
        ours = model_view(image, low_res, org_res)
        theirs = reference(image)
        assert ours.size == theirs.size == (org_res, org_res)
        assert ours.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))


@pytest.mark.parametrize("low_res", [16, 32, HR])
def test_model_input_tensors_equal_listing1_exactly(photo, low_res):
    reference = listing1(low_res, 224)
    images = crops(photo)
    batch = to_model_input([model_view(image, low_res, 224) for image in images], MEAN, STD)
    expected = torch.stack([reference(image) for image in images])
    assert batch.dtype == torch.float32 and batch.shape == (len(images), 3, 224, 224)
    assert torch.equal(batch, expected)
    transform = lr_transform(low_res, 224, MEAN, STD)
    assert all(torch.equal(transform(image), reference(image)) for image in images)


def test_resize_keeps_aspect_ratio_like_torchvision(photo):
    image = photo.crop((0, 0, 300, 131))
    assert resize_shorter(image, 16).size == transforms.Resize(16)(image).size == (36, 16)


def test_paper_pipeline_is_the_default():
    assert Degradation() == PAPER and PAPER.is_paper
    assert PAPER.interpolation == "bicubic" and PAPER.antialias
    assert PAPER.jpeg_quality is None and PAPER.blur_sigma is None


@pytest.mark.parametrize("option", [
    Degradation(interpolation="nearest"),
    Degradation(antialias=False),
    Degradation(jpeg_quality=10),
    Degradation(blur_sigma=4.0),
])
def test_each_degradation_option_changes_what_the_model_sees(photo, option):
    paper = np.asarray(model_view(photo, 32, 224), dtype=np.int16)
    other = np.asarray(model_view(photo, 32, 224, option), dtype=np.int16)
    assert not option.is_paper
    assert np.abs(paper - other).mean() > 0.5


def test_antialias_off_matches_torch_resize_without_antialias(photo):
    low = resize_shorter(photo, 16, "bilinear", antialias=False)
    tensor = torch.from_numpy(np.asarray(photo).copy()).permute(2, 0, 1)[None].float()
    expected = torch.nn.functional.interpolate(tensor, size=(16, 16), mode="bilinear", antialias=False,
                                               align_corners=False)
    expected = expected.round().clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0).numpy()
    assert np.abs(np.asarray(low, dtype=np.int16) - expected).max() <= 1


def test_nearest_downsampling_only_picks_original_pixels(photo):
    from lr0fm_core.pipeline import low_resolution_image

    original = {tuple(p) for p in np.asarray(photo).reshape(-1, 3)}
    def picked(image):
        return {tuple(p) for p in np.asarray(image).reshape(-1, 3)} <= original
    assert picked(low_resolution_image(photo, 8, Degradation(interpolation="nearest")))
    assert not picked(low_resolution_image(photo, 8))  # bicubic averages, inventing colours


@pytest.mark.parametrize("kwargs, message", [
    ({"interpolation": "cubic"}, "unknown interpolation"),
    ({"interpolation": "lanczos", "antialias": False}, "antialias off"),
    ({"jpeg_quality": 0}, "JPEG quality"),
    ({"blur_sigma": -1.0}, "blur sigma"),
])
def test_invalid_degradations_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Degradation(**kwargs)


@pytest.mark.parametrize("text, value", [("16", 16), (" HR ", HR), (32, 32), (np.int64(7), 7)])
def test_parse_resolution(text, value):
    assert parse_resolution(text) == value


@pytest.mark.parametrize("bad", ["0", "-3", "16px", "", 0, 2.5, True, None])
def test_parse_resolution_rejects_nonsense(bad):
    with pytest.raises(ValueError, match="resolution"):
        parse_resolution(bad)


def test_low_resolution_image_really_has_n_pixels(photo):
    from lr0fm_core.pipeline import low_resolution_image

    assert low_resolution_image(photo.crop((0, 0, 400, 200)), 16).size == (32, 16)
    assert isinstance(model_view(photo, 16, 224), Image.Image)
