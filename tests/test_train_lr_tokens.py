"""LR-TK0 training (sections 5.1-5.2): the loss, the multi-scale views, frozen weights, resuming, the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from lr0fm_core.cli import main
from lr0fm_core.lr_tokens import LRTokensError, read_lr_tokens
from lr0fm_core.models.loading import load_model
from lr0fm_core.pipeline import model_view, to_model_input
from lr0fm_core.train_lr_tokens import (DEFAULT_BUCKETS, MultiScaleViews, TrainingConfig, TrainingError, cosine_lr,
                                        distillation_loss, find_images, parse_buckets, train_lr_tokens)


@pytest.fixture
def model():
    return load_model("lr0fm-tiny-ViT", "none", device="cpu")


@pytest.fixture
def image_folder(tmp_path):
    """Eight smooth random colour fields (96x128, some in a subfolder)."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "images"
    (folder / "more").mkdir(parents=True)
    for i in range(8):
        coarse = rng.integers(0, 256, (3, 4, 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize((128, 96), Image.Resampling.BICUBIC)
        image.save(folder / ("more" if i % 2 else ".") / f"img{i}.{'png' if i % 3 else 'jpg'}")
    (folder / "notes.txt").write_text("not an image")
    return folder


def naive_info_nce(student: torch.Tensor, teacher: torch.Tensor, scale: float) -> torch.Tensor:
    """Radford et al.'s symmetric loss, written out per view and per row."""
    total = 0.0
    for view in student:
        s = view / view.norm(dim=-1, keepdim=True)
        t = teacher / teacher.norm(dim=-1, keepdim=True)
        logits = scale * s @ t.T
        rows = -sum(logits[i, i] - torch.logsumexp(logits[i], 0) for i in range(len(t))) / len(t)
        columns = -sum(logits[i, i] - torch.logsumexp(logits[:, i], 0) for i in range(len(t))) / len(t)
        total = total + (rows + columns) / 2
    return total / len(student)


def test_distillation_loss_is_clip_info_nce_averaged_over_views():
    generator = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(4, 5, 8, generator=generator), torch.randn(5, 8, generator=generator)
    torch.testing.assert_close(distillation_loss(student, teacher, 14.3), naive_info_nce(student, teacher, 14.3))
    # a student equal to the teacher is already far better than chance (log B) at a CLIP temperature
    assert distillation_loss(teacher[None], teacher, 100.0) < 0.01 < math.log(5)


def test_cosine_schedule():
    assert cosine_lr(0, 100, 1e-3) == pytest.approx(1e-3)
    assert cosine_lr(50, 100, 1e-3) == pytest.approx(5e-4)
    assert cosine_lr(100, 100, 1e-3) == pytest.approx(0.0, abs=1e-12)


def test_buckets_parse_and_bad_ones_are_named():
    assert parse_buckets("16-32,32-64,64-128") == DEFAULT_BUCKETS
    assert parse_buckets(" 16 , 24-24") == ((16, 16), (24, 24))
    for bad in ("32-16", "a-b", "16-32-64", ""):
        with pytest.raises(TrainingError, match="bad bucket"):
            parse_buckets(bad)
    with pytest.raises(TrainingError, match="at least 2 images per batch"):
        TrainingConfig(batch_size=1)


def test_images_are_found_recursively(image_folder, tmp_path):
    assert len(find_images(image_folder)) == 8
    (tmp_path / "empty").mkdir()
    with pytest.raises(TrainingError, match="holds 0 image"):
        find_images(tmp_path / "empty")
    with pytest.raises(TrainingError, match="not found"):
        find_images(tmp_path / "nowhere")


def test_views_are_hr_plus_one_paper_pipeline_view_per_bucket(model, image_folder):
    images = find_images(image_folder)
    dataset = MultiScaleViews(images, model, DEFAULT_BUCKETS, seed=3)
    sizes = [dataset.sizes(i) for i in range(len(images))]
    for row in sizes:
        assert all(low <= size <= high for size, (low, high) in zip(row, DEFAULT_BUCKETS))
    assert sizes == [dataset.sizes(i) for i in range(len(images))]  # fixed by seed, epoch and image
    dataset.epoch = 1
    assert sizes != [dataset.sizes(i) for i in range(len(images))]
    with Image.open(images[2]) as image:
        image = image.convert("RGB")
    expected = to_model_input([model_view(image, n, 64) for n in ("hr", *dataset.sizes(2))], model.mean, model.std)
    torch.testing.assert_close(dataset[2], expected, atol=0, rtol=0)


def test_only_the_tokens_train_and_the_backbone_stays_bitwise_the_same(model, image_folder, tmp_path):
    before = {name: tensor.clone() for name, tensor in model.model.state_dict().items()}
    result = train_lr_tokens(model, find_images(image_folder), tmp_path / "t.safetensors",
                             TrainingConfig(epochs=2, batch_size=4, lr=1e-2))
    assert result.steps == 4 and len(result.losses) == 4
    after = model.model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[name], after[name]) for name in before)
    assert not any(p.requires_grad for p in model.model.parameters())
    assert result.tokens.tokens.abs().sum() > 0


def test_loss_decreases_with_a_fixed_seed(model, image_folder, tmp_path):
    # one fixed LR size and the whole set as one batch: every step sees the same views
    config = TrainingConfig(epochs=8, batch_size=8, lr=1e-2, buckets=((16, 16),), seed=0)
    losses = train_lr_tokens(model, find_images(image_folder), tmp_path / "t.safetensors", config).losses
    assert losses[-1] < losses[0] - 0.01
    assert all(b < a for a, b in zip(losses, losses[1:]))


def test_resuming_ends_where_an_uninterrupted_run_ends(image_folder, tmp_path):
    images = find_images(image_folder)
    config = TrainingConfig(epochs=2, batch_size=4, lr=1e-2)
    straight = train_lr_tokens(load_model("lr0fm-tiny-ViT", "none", device="cpu"), images,
                               tmp_path / "straight.safetensors", config)

    def interrupt_in_epoch_2(state):
        if state.epoch == 2:
            raise KeyboardInterrupt

    interrupted = tmp_path / "interrupted.safetensors"
    with pytest.raises(KeyboardInterrupt):
        train_lr_tokens(load_model("lr0fm-tiny-ViT", "none", device="cpu"), images, interrupted, config,
                        on_step=interrupt_in_epoch_2)
    assert read_lr_tokens(interrupted).metadata["epochs_done"] == "1"
    resumed = train_lr_tokens(load_model("lr0fm-tiny-ViT", "none", device="cpu"), images,
                              tmp_path / "resumed.safetensors", config, resume=interrupted)
    assert resumed.steps == straight.steps == 4
    torch.testing.assert_close(resumed.tokens.tokens, straight.tokens.tokens, atol=1e-7, rtol=0)
    assert resumed.losses == pytest.approx(straight.losses[2:], abs=1e-6)


def test_checkpoint_metadata_and_resume_refusals(model, image_folder, tmp_path):
    images = find_images(image_folder)
    out = tmp_path / "t.safetensors"
    result = train_lr_tokens(model, images, out, TrainingConfig(epochs=1, batch_size=4, start_block=1))
    saved = read_lr_tokens(out)
    assert {k: saved.metadata[k] for k in ("model", "pretrained", "start_block", "buckets", "steps", "epochs_done",
                                           "grid", "width", "images")} == {
        "model": "lr0fm-tiny-ViT", "pretrained": "none", "start_block": "1", "buckets": "16-32,32-64,64-128",
        "steps": "2", "epochs_done": "1", "grid": "4x4", "width": "64", "images": "8"}
    assert float(saved.metadata["loss"]) == pytest.approx(result.losses[-1], abs=1e-6)
    assert set(saved.optimizer_state) == {"optimizer.exp_avg", "optimizer.exp_avg_sq"}
    with pytest.raises(TrainingError, match="already been trained for 1 epochs"):
        train_lr_tokens(model, images, tmp_path / "again.safetensors",
                        TrainingConfig(epochs=1, batch_size=4, start_block=1), resume=out)
    with pytest.raises(LRTokensError, match="start block 1, not 0"):
        train_lr_tokens(model, images, tmp_path / "again.safetensors", TrainingConfig(epochs=2, batch_size=4), resume=out)
    other = load_model("lr0fm-tiny-ViT-bidir", "none", device="cpu")
    with pytest.raises(LRTokensError, match="not for lr0fm-tiny-ViT-bidir"):
        train_lr_tokens(other, images, tmp_path / "again.safetensors",
                        TrainingConfig(epochs=2, batch_size=4, start_block=1), resume=out)


def test_cli_trains_then_predicts_with_the_tokens(image_folder, tmp_path, capsys):
    out = tmp_path / "tokens.safetensors"
    assert main(["train-lr-tokens", "--model", "lr0fm-tiny-ViT", "--pretrained", "none", "--images",
                 str(image_folder), "--out", str(out), "--epochs", "1", "--batch-size", "4", "--buckets", "16-24"]) == 0
    assert "wrote" in capsys.readouterr().out and read_lr_tokens(out).metadata["buckets"] == "16-24"
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\ntruck\n")
    image = str(find_images(image_folder)[0])
    common = ["predict", image, "--model", "lr0fm-tiny-ViT", "--pretrained", "none", "--labels", str(labels),
              "--resolutions", "16", "hr", "--json"]
    assert main(common) == 0
    plain = json.loads(capsys.readouterr().out)
    assert main([*common, "--lr-tokens", str(out)]) == 0
    tokened = json.loads(capsys.readouterr().out)
    assert [r["resolution"] for r in tokened] == [16, "hr"] and len(tokened[0]["topk"]) == 3
    assert tokened != plain  # trained tokens move the probabilities
    assert main(["predict", image, "--model", "lr0fm-tiny-ViT-bidir", "--pretrained", "none", "--labels",
                 str(labels), "--lr-tokens", str(out)]) == 2
    assert "trained for lr0fm-tiny-ViT" in capsys.readouterr().err
    assert main(["train-lr-tokens", "--model", "lr0fm-tiny-ViT", "--pretrained", "none", "--images",
                 str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    assert "image folder not found" in capsys.readouterr().err
