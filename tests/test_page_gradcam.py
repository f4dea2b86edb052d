"""The Grad-CAM page (AppTest, tiny random-init model): two panels without tokens, three with a token checkpoint.

The tiny model is untrained: these tests check what the page shows, never what it means.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from lr0fm_core import explore, gallery
from lr0fm_core.gradcam import grad_cam
from lr0fm_core.lr_tokens import LRTokens, save_lr_tokens
from lr0fm_core.pipeline import model_view
from lr0fm_core.zeroshot.head import build_zero_shot_head
from lr0fm_core.zeroshot.labels import custom_label_set

PAGE = Path(__file__).resolve().parents[1] / "pages" / "3_Grad-CAM.py"
# the sidebar (as app.py draws it before every page), then the page itself
ENTRY = f"import runpy\nfrom lr0fm_core.ui import session\nsession.sidebar()\nrunpy.run_path({str(PAGE)!r})"


@pytest.fixture
def open_page(monkeypatch):
    monkeypatch.setenv("LR0FM_RANDOM_INIT", "1")
    monkeypatch.setenv("LR0FM_APP_MODEL", "lr0fm-tiny-ViT")
    app = AppTest.from_string(ENTRY, default_timeout=90)
    app.session_state["cam_labels"] = explore.CUSTOM_LABELS  # CIFAR-10's classes: quick to encode
    app.run()
    assert not app.exception
    return app


@pytest.fixture
def token_file(tiny_model, tmp_path):
    tokens = LRTokens.for_model(tiny_model.model)
    with torch.no_grad():
        tokens.tokens.normal_(generator=torch.Generator().manual_seed(0))
    return save_lr_tokens(tmp_path / "tokens.safetensors", tokens, tiny_model)


def panel_lines(app: AppTest) -> list[str]:
    return [m.value for m in app.markdown if m.value.startswith("**")]


def test_without_tokens_it_shows_hr_and_lr_with_their_labels(open_page, tiny_model):
    labels = custom_label_set(gallery.CIFAR10_CLASSES)
    head = build_zero_shot_head(tiny_model, labels)
    image = gallery.gallery_photos()[0].read_image()
    expected = [grad_cam(tiny_model, head, model_view(image, n, 64)) for n in ("hr", 16)]
    assert panel_lines(open_page) == [f"**{cam.label}** · {cam.probability:.1%}" for cam in expected]
    assert any("third panel" in info.value for info in open_page.info)


def test_a_token_checkpoint_adds_the_third_panel_and_a_class_can_be_picked(open_page, token_file):
    open_page.text_input(key="cam_tokens_path").input(str(token_file)).run()
    assert not open_page.exception and not open_page.error
    assert len(panel_lines(open_page)) == 3
    assert any("3,072 LR-token parameters" in c.value for c in open_page.caption)  # 16 tokens x 3 sets x 64
    open_page.selectbox(key="cam_class").select(3).run()  # "cat"
    assert [line.split(" · ")[0] for line in panel_lines(open_page)] == ["**cat**"] * 3
    open_page.selectbox(key="cam_layer").select("patch_embed").run()
    assert not open_page.exception and len(panel_lines(open_page)) == 3


def test_tokens_of_another_model_are_refused_on_the_page(open_page, tmp_path):
    from lr0fm_core.models.loading import load_model

    other = load_model("lr0fm-tiny-ViT-bidir", "none", device="cpu")
    path = save_lr_tokens(tmp_path / "other.safetensors", LRTokens.for_model(other.model), other)
    open_page.text_input(key="cam_tokens_path").input(str(path)).run()
    assert not open_page.exception
    assert any("trained for lr0fm-tiny-ViT-bidir" in e.value for e in open_page.error)
    assert len(panel_lines(open_page)) == 2
