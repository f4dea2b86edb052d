"""LR tokens (LR-TK0, section 5.1): placement, zero-init identity, freezing, parameter count, checkpoints, caches."""

from __future__ import annotations

import json
import logging
import pickle
import threading

import open_clip
import pytest
import torch
from safetensors.torch import save_file

from lr0fm_core.lr_tokens import (LRTokenModel, LRTokens, LRTokensError, head_for_tokens, load_lr_tokens,
                                  lr_token_count, read_lr_tokens, save_lr_tokens, token_positions, with_lr_tokens)
from lr0fm_core.models.loading import load_model
from lr0fm_core.models.vision_blocks import UnsupportedArchitectureError, capture_layers, vision_layout
from lr0fm_core.predict import encode_resolutions, predict
from lr0fm_core.zeroshot.head import build_zero_shot_head
from lr0fm_core.zeroshot.labels import custom_label_set

TINY_EVA = {  # open_clip config: timm's EVA02-tiny tower (the EVA02-B-16 family) with a tiny text tower
    "embed_dim": 64, "custom_text": True,
    "vision_cfg": {"image_size": 224, "timm_model_name": "eva02_tiny_patch14_224", "timm_model_pretrained": False,
                   "timm_pool": "token", "timm_proj": "linear"},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 1},
}


@pytest.fixture
def model():
    """A fresh tiny model per test: wrapping freezes its weights."""
    return load_model("lr0fm-tiny-ViT", "none", device="cpu")


@pytest.fixture
def pixels():
    return torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))


def randomized(tokens: LRTokens, seed: int = 1) -> LRTokens:
    with torch.no_grad():
        tokens.tokens.copy_(torch.randn(tokens.tokens.shape, generator=torch.Generator().manual_seed(seed)))
    return tokens


def meta_model(name: str) -> torch.nn.Module:
    """The architecture without allocating weights (parameter shapes only)."""
    logging.disable(logging.WARNING)
    try:
        with torch.device("meta"):
            return open_clip.create_model(name, pretrained=None, device="meta")
    finally:
        logging.disable(logging.NOTSET)


# ---------------------------------------------------------------- placement and count

def test_positions_follow_table_14():
    # [0]: after patchification and before all 12 blocks (N + 1 sets); [i]: after blocks i..11, none at position 0
    assert token_positions(12, 0) == tuple(range(13))
    assert token_positions(12, 5) == (6, 7, 8, 9, 10, 11, 12)
    assert token_positions(12, 11) == (12,)
    with pytest.raises(LRTokensError, match="0..11"):
        token_positions(12, 12)


@pytest.mark.parametrize("name, base_m, total_m", [
    ("ViT-B-16", 149.6, 151.6),  # Table 2: Meta-B/16 and OC-B/16, 149.6 M -> 151.6 M
    ("EVA02-B-16", 149.7, None),  # Table 2's EVA-B/16 base; its +LR-TK0 row (155.2 M) does not follow the formula
])
def test_parameter_count_follows_the_formula(name, base_m, total_m):
    network = meta_model(name)
    base = sum(p.numel() for p in network.parameters())
    tokens = LRTokens.for_model(network)
    assert tokens.tokens.numel() == 196 * 13 * 768 == lr_token_count(vision_layout(network))  # 14x14 grid, 12 + 1 sets
    assert round(base / 1e6, 1) == base_m
    if total_m is not None:
        assert round((base + tokens.tokens.numel()) / 1e6, 1) == total_m
    assert LRTokens.for_model(network, start_block=5).tokens.numel() == 196 * 7 * 768
    assert LRTokens.for_model(network, start_block=11).tokens.numel() == 196 * 1 * 768


def test_a_resnet_tower_is_refused_by_name():
    with pytest.raises(UnsupportedArchitectureError, match="ModifiedResNet"):
        LRTokens.for_model(meta_model("RN50"))


def input_difference(module, model, tokened, pixels) -> torch.Tensor:
    """What the tokens change in ``module``'s input: recorded with a hook of the test's own."""
    inputs = []
    handle = module.register_forward_pre_hook(lambda m, args: inputs.append(args[0]))
    try:
        with torch.no_grad():
            model.model.encode_image(pixels)
            tokened.model.encode_image(pixels)
    finally:
        handle.remove()
    plain, with_tokens = inputs
    return with_tokens - plain


def test_tokens_are_added_to_spatial_tokens_only_at_their_positions(model, pixels):
    """Record each block's input with a hook of our own: the difference is the tokens, on spatial tokens only."""
    tokens = randomized(LRTokens.for_model(model.model, start_block=1))  # position 2: the input of block 2
    tokened = with_lr_tokens(model, tokens)
    difference = input_difference(model.model.visual.transformer.resblocks[1], model, tokened, pixels)
    assert torch.equal(difference[:, 0], torch.zeros_like(difference[:, 0]))  # the class token is untouched
    torch.testing.assert_close(difference[:, 1:], tokens.tokens[0].expand(3, -1, -1), atol=1e-6, rtol=0)


def test_set_zero_is_added_right_after_patchification(model, pixels):
    """ln_pre's input is [class, patches] + positional embedding: set 0 shows up on the patches, row by row."""
    tokens = randomized(LRTokens.for_model(model.model))
    tokened = with_lr_tokens(model, tokens)
    difference = input_difference(model.model.visual.ln_pre, model, tokened, pixels)
    assert torch.equal(difference[:, 0], torch.zeros_like(difference[:, 0]))
    # conv patch (row r, column c) is spatial token r * 4 + c: set 0 in that order
    torch.testing.assert_close(difference[:, 1:], tokens.tokens[0].expand(3, -1, -1), atol=1e-5, rtol=0)


# ---------------------------------------------------------------- identity, freezing, base untouched

@pytest.mark.parametrize("start_block", [0, 1])
def test_zero_tokens_give_the_frozen_models_features(model, pixels, start_block):
    with torch.no_grad():
        expected = model.model.encode_image(pixels)
    tokened = with_lr_tokens(model, LRTokens.for_model(model.model, start_block))
    with torch.no_grad():
        torch.testing.assert_close(tokened.model.encode_image(pixels), expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(tokened.model.encode_image(pixels).detach(), expected, atol=1e-6, rtol=0)  # with autograd


def test_zero_tokens_on_a_timm_eva_tower_give_its_features(tmp_path):
    (tmp_path / "lr0fm-test-eva02-tiny.json").write_text(json.dumps(TINY_EVA))
    open_clip.add_model_config(tmp_path)
    loaded = load_model("lr0fm-test-eva02-tiny", "none", device="cpu")
    assert vision_layout(loaded.model).kind == "timm"
    images = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = loaded.model.encode_image(images)
    tokens = LRTokens.for_model(loaded.model)
    assert tokens.tokens.shape == (13, 16 * 16, 192)  # patch 14 at 224 px: a 16x16 grid; 12 blocks; width 192
    tokened = with_lr_tokens(loaded, tokens)
    with torch.no_grad():
        torch.testing.assert_close(tokened.model.encode_image(images), expected, atol=1e-6, rtol=0)
        randomized(tokens)
        assert not torch.allclose(tokened.model.encode_image(images), expected, atol=1e-3)


def test_only_the_tokens_require_grad(model):
    tokened = with_lr_tokens(model, LRTokens.for_model(model.model))
    trainable = [name for name, p in tokened.model.named_parameters() if p.requires_grad]
    assert trainable == ["lr_tokens.tokens"]
    assert not model.model.logit_scale.requires_grad and not model.model.token_embedding.weight.requires_grad


def test_the_base_model_keeps_its_features_even_while_tokens_are_active_elsewhere(model, pixels):
    with torch.no_grad():
        expected = model.model.encode_image(pixels)
    tokens = randomized(LRTokens.for_model(model.model))
    tokened = with_lr_tokens(model, tokens)
    with torch.no_grad():
        assert not torch.allclose(tokened.model.encode_image(pixels), expected, atol=1e-3)
        torch.testing.assert_close(model.model.encode_image(pixels), expected, atol=0, rtol=0)
        other_thread = {}
        with tokens.active(model.model):  # switched on in this thread only
            worker = threading.Thread(target=lambda: other_thread.update(f=model.model.encode_image(pixels)))
            worker.start()
            worker.join()
        torch.testing.assert_close(other_thread["f"], expected, atol=0, rtol=0)


def test_tokens_of_another_grid_are_refused(model):
    with pytest.raises(LRTokensError, match="16x16 patch grid"):
        with_lr_tokens(model, LRTokens(2, (16, 16), 64))


# ---------------------------------------------------------------- checkpoints

def test_checkpoint_round_trip_from_path_and_bytes(model, pixels, tmp_path):
    tokens = randomized(LRTokens.for_model(model.model, start_block=1))
    in_memory = with_lr_tokens(model, tokens)
    path = save_lr_tokens(tmp_path / "tokens.safetensors", tokens, model, {"steps": 7, "buckets": "16-32"})
    for source in (path, path.read_bytes()):
        loaded = load_lr_tokens(model, source)
        assert isinstance(loaded, LRTokenModel)
        assert torch.equal(loaded.lr_tokens.tokens, tokens.tokens) and loaded.lr_tokens.positions == (2,)
        assert loaded.weights_id == in_memory.weights_id != model.weights_id
        with torch.no_grad():
            assert torch.equal(loaded.model.encode_image(pixels), in_memory.model.encode_image(pixels))
    checkpoint = read_lr_tokens(path)
    assert checkpoint.metadata["model"] == "lr0fm-tiny-ViT" and checkpoint.metadata["steps"] == "7"
    assert checkpoint.metadata["grid"] == "4x4" and checkpoint.metadata["start_block"] == "1"


def test_tokens_of_another_model_are_refused(model, tmp_path):
    path = save_lr_tokens(tmp_path / "tokens.safetensors", LRTokens.for_model(model.model), model)
    other = load_model("lr0fm-tiny-ViT-bidir", "none", device="cpu")  # same tower shape, other model
    with pytest.raises(LRTokensError, match="trained for lr0fm-tiny-ViT .*not for lr0fm-tiny-ViT-bidir"):
        load_lr_tokens(other, path)


def test_a_checkpoint_with_another_grid_is_refused(model, tmp_path):
    metadata = {"format": "lr0fm-lr-tokens/1", "model": "lr0fm-tiny-ViT", "pretrained": "none", "start_block": "0",
                "n_blocks": "2", "grid": "7x7", "width": "64"}
    save_file({"lr_tokens": torch.zeros(3, 49, 64)}, str(tmp_path / "t.safetensors"), metadata=metadata)
    with pytest.raises(LRTokensError, match="7x7 patch grid"):
        load_lr_tokens(model, tmp_path / "t.safetensors")
    save_file({"lr_tokens": torch.zeros(3, 16, 32)}, str(tmp_path / "u.safetensors"), metadata=metadata | {"grid": "4x4"})
    with pytest.raises(LRTokensError, match=r"shape \(3, 16, 32\)"):
        load_lr_tokens(model, tmp_path / "u.safetensors")


class _Payload:
    def __reduce__(self):
        import pathlib
        return (pathlib.Path.touch, (pathlib.Path(self.target),))


def test_a_pickle_is_refused_without_running_it(model, tmp_path):
    payload = _Payload()
    payload.target = str(tmp_path / "pwned")
    (tmp_path / "tokens.pt").write_bytes(pickle.dumps({"lr_tokens": payload}))
    with pytest.raises(LRTokensError, match="not a safetensors file"):
        load_lr_tokens(model, tmp_path / "tokens.pt")
    assert not (tmp_path / "pwned").exists()
    save_file({"weights": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(LRTokensError, match="not LR tokens"):
        load_lr_tokens(model, tmp_path / "other.safetensors")
    with pytest.raises(LRTokensError, match="cannot read"):
        load_lr_tokens(model, tmp_path / "missing.safetensors")


# ---------------------------------------------------------------- caches and the zero-shot head

def test_features_with_and_without_tokens_never_share_a_cache(model, photo):
    tokened = with_lr_tokens(model, randomized(LRTokens.for_model(model.model)))
    plain = encode_resolutions(model, photo, [16, "hr"])
    with_tokens = encode_resolutions(tokened, photo, [16, "hr"])
    assert not torch.allclose(plain, with_tokens, atol=1e-3)
    assert tokened.feature_cache is not model.feature_cache and len(model.feature_cache) == 2
    torch.testing.assert_close(encode_resolutions(model, photo, [16, "hr"]), plain, atol=0, rtol=0)
    assert tokened.weights_id.startswith(model.weights_id + "|lr-tokens:")


def test_the_base_head_is_the_tokened_models_head(model, photo):
    labels = custom_label_set(["cat", "dog", "truck"], templates=["a photo of a {c}."])
    tokened = with_lr_tokens(model, randomized(LRTokens.for_model(model.model)))
    base_head = build_zero_shot_head(model, labels, use_cache=False)
    own_head = build_zero_shot_head(tokened, labels, use_cache=False)  # encoded again through the tokened model
    reused = head_for_tokens(base_head, tokened)
    torch.testing.assert_close(reused.weights, own_head.weights, atol=0, rtol=0)
    assert reused.weights_id == tokened.weights_id
    assert [p.labels for p in predict(tokened, reused, photo, [16])] == [p.labels for p in predict(tokened, own_head, photo, [16])]
    other = load_model("lr0fm-tiny-ViT-bidir", "none", device="cpu")
    with pytest.raises(LRTokensError, match="was built for"):
        head_for_tokens(build_zero_shot_head(other, labels, use_cache=False), tokened)


def test_gradients_reach_the_captured_patch_embedding(model, pixels):
    """capture_layers hands back tokens on the path to the output, so Grad-CAM can differentiate at any layer."""
    with capture_layers(model.model, ["patch_embed"]) as captured:
        out = model.model.encode_image(pixels.requires_grad_(True)).sum()
    (gradient,) = torch.autograd.grad(out, captured["patch_embed"])
    assert gradient.shape == (3, 16, 64) and gradient.abs().sum() > 0


def test_sequence_first_blocks_get_the_tokens_on_their_spatial_rows(model, pixels):
    """Older open_clip towers run blocks on (tokens, batch, width); the tokens follow that layout."""
    model.model.visual.transformer.batch_first = False
    assert not vision_layout(model.model).batch_first
    with torch.no_grad():
        expected = model.model.encode_image(pixels)
    tokens = LRTokens.for_model(model.model, start_block=1)
    tokened = with_lr_tokens(model, tokens)
    with torch.no_grad():
        torch.testing.assert_close(tokened.model.encode_image(pixels), expected, atol=1e-6, rtol=0)
    randomized(tokens)
    difference = input_difference(model.model.visual.transformer.resblocks[1], model, tokened, pixels)
    # (1 + 16 tokens, batch 3, width 64)
    assert difference.shape == (17, 3, 64) and torch.equal(difference[0], torch.zeros_like(difference[0]))
    torch.testing.assert_close(difference[1:], tokens.tokens[0][:, None].expand(-1, 3, -1), atol=1e-6, rtol=0)
