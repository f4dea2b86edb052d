"""The fast zero-shot head equals open_clip's own classifier builder, and is cached on disk."""

from __future__ import annotations

import pytest
import torch
import open_clip
from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES, OPENAI_IMAGENET_TEMPLATES

from lr0fm_core.config import cache_dir
from lr0fm_core.models.loading import load_model
from lr0fm_core.zeroshot.head import _cuts_padding, build_zero_shot_head, class_embeddings
from lr0fm_core.zeroshot.labels import LabelSet


def imagenet_subset(n_classes: int, n_templates: int) -> LabelSet:
    templates = tuple(t("{c}") for t in OPENAI_IMAGENET_TEMPLATES[:n_templates])
    return LabelSet("imagenet-subset", tuple(IMAGENET_CLASSNAMES[:n_classes]), templates)


def naive_head(loaded, label_set) -> torch.Tensor:
    """open_clip's reference: one class at a time, full 77-token context."""
    templates = [lambda c, t=t: t.format(c=c) for t in label_set.templates]
    with torch.inference_mode():
        weights = open_clip.build_zero_shot_classifier(
            loaded.model, loaded.tokenizer, label_set.classnames, templates,
            num_classes_per_batch=1, device=loaded.device, use_tqdm=False)
    return weights.T


@pytest.mark.parametrize("name, causal", [("lr0fm-tiny-ViT", True), ("lr0fm-tiny-ViT-bidir", False)])
def test_fast_head_equals_open_clip_reference(name, causal):
    loaded = load_model(name, "none")
    label_set = imagenet_subset(30, 12)
    assert _cuts_padding(loaded.model) is causal
    fast = class_embeddings(loaded, label_set, batch_size=64)
    assert fast.shape == (30, 64)
    torch.testing.assert_close(fast, naive_head(loaded, label_set), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fast.norm(dim=-1), torch.ones(30))


def test_fast_head_equals_reference_on_full_vit_b_32():
    loaded = load_model("ViT-B-32", "none")
    label_set = imagenet_subset(4, 5)
    torch.testing.assert_close(class_embeddings(loaded, label_set), naive_head(loaded, label_set),
                               atol=1e-5, rtol=1e-5)


def test_head_is_cached_on_disk_and_keyed_by_labels_and_templates(tiny_model):
    label_set = imagenet_subset(5, 3)
    first = build_zero_shot_head(tiny_model, label_set)
    files = sorted((cache_dir() / "heads").glob("*.safetensors"))
    assert files, "the head was not written to the cache folder"
    calls = []
    handle = tiny_model.model.token_embedding.register_forward_hook(lambda *a: calls.append(1))
    try:
        again = build_zero_shot_head(tiny_model, label_set)
        assert calls == [] and torch.equal(again.weights, first.weights)
        other = build_zero_shot_head(tiny_model, LabelSet("x", label_set.classnames, label_set.templates[:2]))
        assert calls and not torch.equal(other.weights, first.weights)
    finally:
        handle.remove()
    assert len(list((cache_dir() / "heads").glob("*.safetensors"))) == len(files) + 1


def test_corrupt_cache_file_is_rebuilt(tiny_model):
    label_set = imagenet_subset(3, 2)
    expected = build_zero_shot_head(tiny_model, label_set).weights
    for path in (cache_dir() / "heads").glob("*.safetensors"):
        path.write_bytes(b"garbage")
    torch.testing.assert_close(build_zero_shot_head(tiny_model, label_set).weights, expected)


def test_progress_reports_every_prompt(tiny_model):
    seen = []
    build_zero_shot_head(tiny_model, imagenet_subset(7, 3), batch_size=8, use_cache=False,
                         progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (21, 21) and [d for d, _ in seen] == sorted(d for d, _ in seen)
