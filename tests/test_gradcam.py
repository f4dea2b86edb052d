"""Grad-CAM for zero-shot CLIP (Fig. 16): shape and sign, against a hand-split forward, with and without LR tokens."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from lr0fm_core.gradcam import GradCAMError, grad_cam, gradcam_layers, jet, overlay
from lr0fm_core.lr_tokens import LRTokens, head_for_tokens, with_lr_tokens
from lr0fm_core.models.loading import load_model
from lr0fm_core.models.vision_blocks import capture_layers
from lr0fm_core.pipeline import model_view
from lr0fm_core.predict import class_probabilities, encode_resolutions
from lr0fm_core.zeroshot.head import build_zero_shot_head
from lr0fm_core.zeroshot.labels import custom_label_set

LABELS = custom_label_set(["cat", "dog", "truck", "tree", "boat"], templates=["a photo of a {c}."])


@pytest.fixture
def model():
    return load_model("lr0fm-tiny-ViT", "none", device="cpu")


@pytest.fixture
def head(model):
    return build_zero_shot_head(model, LABELS, use_cache=False)


@pytest.fixture
def view(photo):
    return model_view(photo, "hr", 64)


def reference_cam(model, head, view, class_index) -> np.ndarray:
    """Grad-CAM at block 1's output by running open_clip's ViT by hand, split there (no hooks)."""
    visual = model.model.visual
    pixels = torch.from_numpy(np.asarray(view, dtype=np.float32) / 255).permute(2, 0, 1)[None]
    pixels = (pixels - torch.tensor(model.mean).view(1, 3, 1, 1)) / torch.tensor(model.std).view(1, 3, 1, 1)
    with torch.no_grad():
        after_block_1 = visual.transformer.resblocks[0](visual._embeds(pixels))
    activation = after_block_1.clone().requires_grad_(True)
    pooled, _ = visual._pool(visual.transformer.resblocks[1](activation))
    embedding = pooled @ visual.proj
    logit = model.model.logit_scale.exp() * F.normalize(embedding, dim=-1) @ head.weights.clone()[class_index]
    (gradient,) = torch.autograd.grad(logit.sum(), activation)
    spatial, spatial_grad = activation[0, 1:].detach(), gradient[0, 1:]
    return F.relu(spatial @ spatial_grad.mean(dim=0)).reshape(4, 4).numpy()


def test_maps_are_finite_non_negative_patch_grids(model, head, view):
    for layer in gradcam_layers(model.model):
        cam = grad_cam(model, head, view, layer=layer)
        assert cam.grid.shape == (4, 4) and cam.heatmap.shape == (64, 64)
        assert np.isfinite(cam.grid).all() and (cam.grid >= 0).all()
        assert (cam.heatmap >= 0).all() and cam.heatmap.max() <= 1


def test_the_map_matches_a_hand_split_forward(model, head, view):
    for class_index in (0, 3):
        cam = grad_cam(model, head, view, class_index, layer="block_1")
        np.testing.assert_allclose(cam.grid, reference_cam(model, head, view, class_index), rtol=1e-4, atol=1e-7)


def test_two_classes_give_different_maps(model, head, view):
    first, second = (grad_cam(model, head, view, c, "block_1") for c in (0, 1))
    assert (first.label, second.label) == ("cat", "dog")
    assert not np.allclose(first.grid, second.grid)


def test_probabilities_are_the_zero_shot_probabilities_and_top1_is_the_default(model, head, view, photo):
    expected = class_probabilities(model, head, encode_resolutions(model, photo, ["hr"]))[0].numpy()
    cam = grad_cam(model, head, view)
    np.testing.assert_allclose(cam.probabilities, expected, atol=1e-5)
    assert cam.class_index == cam.top1 == int(expected.argmax()) and cam.probability == pytest.approx(expected.max())


def test_the_last_block_is_left_out_because_it_cannot_reach_the_class_token(model, head, view, photo):
    assert gradcam_layers(model.model) == ["patch_embed", "block_1"]
    pixels = torch.randn(1, 3, 64, 64, requires_grad=True)
    with capture_layers(model.model, ["block_2"]) as captured:
        embedding = model.model.encode_image(pixels)
    (gradient,) = torch.autograd.grad(embedding.sum(), captured["block_2"])
    assert gradient[0, 1:].abs().max() == 0 and gradient[0, 0].abs().max() > 0
    with pytest.raises(GradCAMError, match="patch_embed, block_1"):
        grad_cam(model, head, view, layer="block_2")


def test_lr_tokens_change_the_map_only_when_they_are_not_zero(model, head, photo):
    low = model_view(photo, 16, 64)
    plain = grad_cam(model, head, low, 0)
    tokens = LRTokens.for_model(model.model)
    tokened = with_lr_tokens(model, tokens)
    zero = grad_cam(tokened, head_for_tokens(head, tokened), low, 0)
    np.testing.assert_allclose(zero.grid, plain.grid, rtol=1e-4, atol=1e-7)
    with torch.no_grad():
        tokens.tokens.normal_(generator=torch.Generator().manual_seed(0))
    moved = with_lr_tokens(model, tokens)
    assert not np.allclose(grad_cam(moved, head_for_tokens(head, moved), low, 0).grid, plain.grid)


def test_bad_requests_are_named(model, head, view):
    with pytest.raises(GradCAMError, match="outside 0..4"):
        grad_cam(model, head, view, 5)
    with pytest.raises(GradCAMError, match="takes 64x64"):
        grad_cam(model, head, view.resize((32, 32)))
    other = load_model("lr0fm-tiny-ViT-bidir", "none", device="cpu")
    with pytest.raises(GradCAMError, match="was built for"):
        grad_cam(other, head, view)


def test_jet_matches_matplotlib_and_overlay_blends():
    colormaps = pytest.importorskip("matplotlib").colormaps
    lut = colormaps["jet"].resampled(256)(np.arange(256))[:, :3] * 255  # its table, at positions i / 255
    np.testing.assert_allclose(jet(np.arange(256) / 255), lut, atol=0.51)
    view = Image.new("RGB", (8, 6), (10, 200, 30))
    heat = np.zeros((6, 8))
    assert overlay(view, heat, alpha=0).tobytes() == view.tobytes()
    assert np.asarray(overlay(view, heat + 1, alpha=1))[0, 0].tolist() == jet(np.ones(1))[0].tolist()
    with pytest.raises(GradCAMError, match="does not match"):
        overlay(view, np.zeros((8, 6)))


def test_a_capture_records_only_its_own_threads_forwards(model, head, view):
    """App sessions share one model: another thread's forward during a capture must neither be
    recorded nor change what the capture records; hooks do not pile up over captures."""
    mine, theirs = torch.randn(1, 3, 64, 64), torch.randn(2, 3, 64, 64)
    with torch.no_grad(), capture_layers(model.model) as alone:
        model.model.encode_image(mine)
    entered, other_done = threading.Event(), threading.Event()
    seen = {}

    def capture_in_this_thread():
        with torch.no_grad(), capture_layers(model.model) as captured:
            entered.set()
            other_done.wait(timeout=60)
            seen["before"] = dict(captured)
            model.model.encode_image(mine)
            seen["after"] = dict(captured)

    def forward_in_another_thread():
        entered.wait(timeout=60)
        with torch.no_grad():
            seen["other"] = model.model.encode_image(theirs)
        other_done.set()

    threads = [threading.Thread(target=capture_in_this_thread), threading.Thread(target=forward_in_another_thread)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert seen["before"] == {}
    assert seen["after"].keys() == alone.keys()
    for name, tokens in alone.items():
        assert torch.equal(seen["after"][name], tokens), name
    with torch.no_grad():
        assert torch.equal(seen["other"], model.model.encode_image(theirs))

    hooks = len(model.model.visual.conv1._forward_hooks)
    for _ in range(3):
        grad_cam(model, head, view, 0)
    assert len(model.model.visual.conv1._forward_hooks) == hooks
