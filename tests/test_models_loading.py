"""Loading models: random init, local checkpoints (safely), and a fast, clear offline failure."""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from lr0fm_core.models.loading import (
    UNTRAINED_WARNING, CheckpointError, ModelLoadError, WeightsUnavailableError, load_model,
)
from lr0fm_core.pipeline import to_model_input, model_view


def perturbed_state(model: torch.nn.Module, seed: int = 1) -> dict[str, torch.Tensor]:
    """Weights that differ from the seeded random init, so loading them is observable."""
    generator = torch.Generator().manual_seed(seed)
    return {k: (v + 0.01 * torch.randn(v.shape, generator=generator) if v.is_floating_point() else v).contiguous()
            for k, v in model.state_dict().items()}


def image_features(loaded, photo) -> torch.Tensor:
    batch = to_model_input([model_view(photo, r, loaded.resolution) for r in (16, "hr")], loaded.mean, loaded.std)
    with torch.inference_mode():
        return loaded.model.encode_image(batch)


def test_random_init_is_seeded_and_flagged(tiny_model, photo):
    again = load_model("lr0fm-tiny-ViT", "none")
    assert again.untrained and tiny_model.untrained
    assert UNTRAINED_WARNING in again.description
    assert "meaningless" in UNTRAINED_WARNING
    assert torch.equal(image_features(again, photo), image_features(tiny_model, photo))
    assert again.resolution == 64 and again.device == torch.device("cpu")


@pytest.mark.parametrize("suffix", [".safetensors", ".pt", "folder"])
def test_checkpoint_round_trip_gives_identical_outputs(tmp_path, tiny_model, photo, suffix):
    state = perturbed_state(tiny_model.model)
    if suffix == "folder":
        save_file(state, str(tmp_path / "open_clip_model.safetensors"))
        target = tmp_path
    else:
        target = tmp_path / f"weights{suffix}"
        save_file(state, str(target)) if suffix == ".safetensors" else torch.save({"state_dict": state}, target)
    loaded = load_model("lr0fm-tiny-ViT", checkpoint=target)
    reference = load_model("lr0fm-tiny-ViT", "none")
    reference.model.load_state_dict(state)
    assert not loaded.untrained and loaded.pretrained == "checkpoint"
    assert torch.equal(image_features(loaded, photo), image_features(reference, photo))
    assert not torch.equal(image_features(loaded, photo), image_features(tiny_model, photo))
    assert loaded.weights_id != tiny_model.weights_id


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    other = load_model("lr0fm-tiny-ViT-bidir", "none")
    path = tmp_path / "bidir.safetensors"
    save_file(perturbed_state(other.model), str(path))
    with pytest.raises(CheckpointError, match="does not fit open_clip model lr0fm-tiny-ViT"):
        load_model("lr0fm-tiny-ViT", checkpoint=path)


class _Exploit:
    marker: Path

    def __reduce__(self):
        return (os.makedirs, (str(self.marker),))


def test_pickled_code_in_a_checkpoint_is_never_executed(tmp_path):
    exploit = _Exploit()
    exploit.marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"state_dict": exploit}))
    with pytest.raises(CheckpointError, match="pickled code is never executed"):
        load_model("lr0fm-tiny-ViT", checkpoint=path)
    assert not exploit.marker.exists()


@pytest.mark.parametrize("content, name", [(b"", "empty.safetensors"), (b"not a tensor file", "junk.bin")])
def test_unreadable_checkpoints_give_a_clear_error(tmp_path, content, name):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_model("lr0fm-tiny-ViT", checkpoint=path)


def test_missing_checkpoint_and_empty_folder(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_model("lr0fm-tiny-ViT", checkpoint=tmp_path / "nope.safetensors")
    with pytest.raises(CheckpointError, match="no checkpoint in folder"):
        load_model("lr0fm-tiny-ViT", checkpoint=tmp_path)


def test_pretrained_tag_offline_fails_fast_with_guidance(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", "https://127.0.0.1:9")  # nothing listens: refused at once
    start = time.monotonic()
    with pytest.raises(WeightsUnavailableError) as info:
        load_model("ViT-B-32", "openai")
    assert time.monotonic() - start < 10
    message = str(info.value)
    assert "could not be fetched" in message and "--checkpoint PATH" in message and "--pretrained none" in message


def test_offline_setting_never_touches_the_network(monkeypatch):
    monkeypatch.setenv("LR0FM_OFFLINE", "1")
    with pytest.raises(WeightsUnavailableError, match="offline mode"):
        load_model("ViT-B-32", "laion2b_s34b_b79k")


@pytest.mark.parametrize("name, tag, message", [
    ("ViT-B-33", "none", "Did you mean ViT-B-32"),
    ("ViT-B-32", "imagenet-21k", "no pretrained tag 'imagenet-21k'. Available tags: openai"),
])
def test_unknown_models_and_tags(name, tag, message):
    with pytest.raises(ModelLoadError, match=message):
        load_model(name, tag)


def test_tag_settings_apply_to_a_checkpoint(tmp_path):
    """A checkpoint of the openai ViT-B-32 gets the tag's QuickGELU and normalisation."""
    plain = load_model("ViT-B-32", "none")
    path = tmp_path / "b32.safetensors"
    save_file({k: v.contiguous() for k, v in plain.model.state_dict().items()}, str(path))
    as_openai = load_model("ViT-B-32", "openai", checkpoint=path)
    activation = type(as_openai.model.visual.transformer.resblocks[0].mlp.gelu).__name__
    assert activation == "QuickGELU"
    assert type(plain.model.visual.transformer.resblocks[0].mlp.gelu).__name__ == "GELU"
    assert as_openai.mean == pytest.approx((0.48145466, 0.4578275, 0.40821073))


@pytest.mark.skipif(not os.environ.get("LR0FM_TEST_CHECKPOINT"),
                    reason="set LR0FM_TEST_CHECKPOINT=MODEL:TAG:PATH to test real weights (none can be downloaded here)")
def test_real_checkpoint_predicts_the_labeled_photos(labeled_photos):
    from lr0fm_core.predict import predict
    from lr0fm_core.zeroshot.head import build_zero_shot_head
    from lr0fm_core.zeroshot.labels import get_label_set
    import csv

    name, tag, path = os.environ["LR0FM_TEST_CHECKPOINT"].split(":", 2)
    loaded = load_model(name, tag, checkpoint=path)
    head = build_zero_shot_head(loaded, get_label_set("imagenet"))
    rows = list(csv.DictReader(open(labeled_photos[0].parents[1] / "labels.csv")))
    from PIL import Image

    hits = 0
    imagenet_rows = [r for r in rows if r["label_space"] == "imagenet"]
    for row in imagenet_rows:
        image = Image.open(labeled_photos[0].parents[1] / row["path"]).convert("RGB")
        top5 = predict(loaded, head, image, ["hr"], topk=5)[0].labels
        hits += head.classnames[int(row["label_index"])] in top5
    assert hits / len(imagenet_rows) > 0.7  # a real CLIP gets most of these right at HR


def test_hugging_face_tokenizer_offline_fails_fast(monkeypatch):
    """SigLIP's tokenizer lives on the hub: without network and cache, say so within seconds."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", "https://127.0.0.1:9")
    start = time.monotonic()
    with pytest.raises(WeightsUnavailableError, match="tokenizer of ViT-B-16-SigLIP"):
        load_model("ViT-B-16-SigLIP", "none")
    assert time.monotonic() - start < 10
