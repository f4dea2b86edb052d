"""Predictions at several resolutions in one batched forward, equal to one-at-a-time evaluation."""

from __future__ import annotations

import pytest
import torch

from lr0fm_core.pipeline import Degradation, lr_transform
from lr0fm_core.predict import encode_resolutions, predict
from lr0fm_core.zeroshot.head import build_zero_shot_head
from lr0fm_core.zeroshot.labels import get_label_set

RESOLUTIONS = [8, 16, 32, 48, "hr"]


@pytest.fixture(scope="module")
def head(tiny_model):
    return build_zero_shot_head(tiny_model, get_label_set("eurosat"), use_cache=False)


def count_image_forwards(loaded):
    calls = []
    handle = loaded.model.visual.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    return calls, handle


def test_predict_returns_topk_per_resolution(tiny_model, head, photo):
    predictions = predict(tiny_model, head, photo, RESOLUTIONS, topk=5)
    assert [p.resolution for p in predictions] == RESOLUTIONS
    for p in predictions:
        assert len(p.labels) == 5 and set(p.labels) <= set(head.classnames)
        assert list(p.probs) == sorted(p.probs, reverse=True)
        assert 0 < sum(p.probs) <= 1 + 1e-6
        record = p.to_dict()
        assert record["resolution"] == p.resolution and record["topk"][0] == {"label": p.labels[0], "prob": p.probs[0]}


def test_one_batched_forward_equals_separate_evaluation(tiny_model, head, photo):
    tiny_model.feature_cache.clear()
    calls, handle = count_image_forwards(tiny_model)
    try:
        batched = encode_resolutions(tiny_model, photo, RESOLUTIONS)
    finally:
        handle.remove()
    assert calls == [len(RESOLUTIONS)]  # one forward, all resolutions
    with torch.inference_mode():
        for row, resolution in zip(batched, RESOLUTIONS):
            x = lr_transform(resolution, tiny_model.resolution, tiny_model.mean, tiny_model.std)(photo)
            single = torch.nn.functional.normalize(tiny_model.model.encode_image(x[None]), dim=-1)[0]
            torch.testing.assert_close(row, single, atol=1e-5, rtol=1e-5)


def test_repeated_call_reuses_features_and_new_resolutions_are_encoded_alone(tiny_model, head, photo):
    tiny_model.feature_cache.clear()
    first = predict(tiny_model, head, photo, RESOLUTIONS)
    calls, handle = count_image_forwards(tiny_model)
    try:
        assert predict(tiny_model, head, photo, RESOLUTIONS) == first
        assert calls == []
        predict(tiny_model, head, photo, [16, 24])
        assert calls == [1]  # only 24 px is new
        predict(tiny_model, head, photo, [16], degradation=Degradation(jpeg_quality=20))
        assert calls == [1, 1]  # another degradation is another view
    finally:
        handle.remove()


def test_a_different_photo_is_not_served_from_the_cache(tiny_model, head, photo):
    flipped = photo.transpose(0)
    a = encode_resolutions(tiny_model, photo, ["hr"])
    b = encode_resolutions(tiny_model, flipped, ["hr"])
    assert not torch.allclose(a, b)


def test_head_of_another_model_is_refused(head, photo):
    from lr0fm_core.models.loading import load_model

    other = load_model("lr0fm-tiny-ViT-bidir", "none")
    with pytest.raises(ValueError, match="head was built for"):
        predict(other, head, photo, [16])


def test_topk_bounds(tiny_model, head, photo):
    assert len(predict(tiny_model, head, photo, [16], topk=50)[0].labels) == len(head.classnames)
    with pytest.raises(ValueError, match="topk"):
        predict(tiny_model, head, photo, [16], topk=0)
