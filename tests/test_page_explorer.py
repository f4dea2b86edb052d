"""The resolution explorer page through app.py (AppTest, tiny random-init model, the CIFAR-10 label list).

The tiny model is untrained: these tests check what the page shows and computes, never prediction quality.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from lr0fm_core import explore, gallery
from lr0fm_core.models.loading import UNTRAINED_WARNING
from lr0fm_core.ui import session

APP = Path(__file__).resolve().parents[1] / "app.py"
# AppTest runs an app that has a pages/ folder as a legacy multipage app (page files without app.py).
# Starting app.py from a script outside that folder keeps st.navigation in charge, as `streamlit run app.py` does.
ENTRY = f"import runpy; runpy.run_path({str(APP)!r}, run_name='__main__')"
PAGE = str(APP.parent / "pages" / "1_Resolution_explorer.py")
STOPS = explore.slider_stops(64)  # lr0fm-tiny-ViT's input is 64 px


@pytest.fixture
def open_explorer(monkeypatch):
    """Start the app on the explorer, with the custom label list (its default: CIFAR-10's classes)."""
    monkeypatch.setenv("LR0FM_RANDOM_INIT", "1")
    monkeypatch.setenv("LR0FM_APP_MODEL", "lr0fm-tiny-ViT")

    def start() -> AppTest:
        app = AppTest.from_string(ENTRY, default_timeout=60)
        app.session_state["explore_labels"] = explore.CUSTOM_LABELS
        app.run()
        app.switch_page(PAGE).run()
        assert not app.exception
        return app

    return start


def predictions_table(app: AppTest):
    (table,) = app.dataframe
    return table.value


def png_bytes(color) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (48, 40), color).save(buffer, format="PNG")
    return buffer.getvalue()


def test_gallery_photo_shows_the_top5_of_every_stop_as_predict_computes_them(open_explorer, tiny_model):
    from lr0fm_core.predict import predict
    from lr0fm_core.zeroshot.head import build_zero_shot_head
    from lr0fm_core.zeroshot.labels import custom_label_set

    app = open_explorer()
    assert any(UNTRAINED_WARNING in w.value for w in app.main.warning)
    assert any(UNTRAINED_WARNING in w.value for w in app.sidebar.warning)
    assert app.sidebar.selectbox(key=session.MODEL_KEY).value == "lr0fm-tiny-ViT"
    assert app.select_slider(key="explore_resolution").options == [explore.stop_label(s) for s in STOPS]

    table = predictions_table(app)
    assert list(table["resolution"].unique()) == [str(s) for s in STOPS]
    head = build_zero_shot_head(tiny_model, custom_label_set(gallery.CIFAR10_CLASSES))
    photo = gallery.gallery_photos()[0].read_image()  # the page's default photo
    for expected in predict(tiny_model, head, photo, STOPS, topk=5):
        rows = table[table["resolution"] == str(expected.resolution)]
        assert list(rows["rank"]) == [1, 2, 3, 4, 5]
        assert tuple(rows["label"]) == expected.labels
        np.testing.assert_allclose(rows["prob"], expected.probs, atol=2e-6)


def test_a_true_label_in_the_label_set_is_shown(open_explorer):
    app = open_explorer()
    first = gallery.gallery_photos()[0]
    assert first.label_name in gallery.CIFAR10_CLASSES
    assert any(f"True label: **{first.label_name}**" in i.value for i in app.info)
    app.selectbox(key="explore_gallery").set_value("skimage_chelsea.jpg").run()  # no true label
    assert not app.exception and not any("True label" in i.value for i in app.info)


def test_moving_the_slider_redraws_without_recomputing_the_sweep(open_explorer, monkeypatch):
    calls = []
    real_sweep = explore.sweep
    monkeypatch.setattr(explore, "sweep", lambda *args, **kwargs: calls.append(args[3]) or real_sweep(*args, **kwargs))
    session._sweep.clear()
    app = open_explorer()
    assert calls == [tuple(STOPS)]  # one batched pass over all stops
    for value in (32, 8, "hr"):
        app.select_slider(key="explore_resolution").set_value(value).run()
        assert not app.exception
        assert f"**Top-5 at {explore.stop_label(value)}**" in [m.value for m in app.markdown]
    assert len(calls) == 1
    app.text_area(key="explore_custom").set_value("cat, dog, ship").run()  # a new label set is a new sweep
    assert len(calls) == 2
    assert set(predictions_table(app)["label"]) == {"cat", "dog", "ship"}


def test_a_bad_upload_is_reported_and_the_good_one_is_explored(open_explorer):
    app = open_explorer()
    app.radio(key="explore_source").set_value("Your photos").run()
    assert any("Upload one or more photos" in i.value for i in app.info)
    app.file_uploader(key="explore_uploads").set_value([
        ("broken.jpg", b"\xff\xd8 this is not a jpeg", "image/jpeg"),
        ("red.png", png_bytes((220, 20, 20)), "image/png"),
    ]).run()
    assert not app.exception
    (error,) = app.error
    assert "broken.jpg" in error.value
    table = predictions_table(app)
    assert len(table) == 5 * len(STOPS)


def test_several_uploads_can_be_chosen_from(open_explorer):
    app = open_explorer()
    app.radio(key="explore_source").set_value("Your photos").run()
    app.file_uploader(key="explore_uploads").set_value([
        ("red.png", png_bytes((220, 20, 20)), "image/png"), ("blue.png", png_bytes((20, 20, 220)), "image/png"),
    ]).run()
    picker = app.selectbox(key="explore_photo")
    assert picker.options == ["red.png", "blue.png"]
    picker.set_value(1).run()
    assert not app.exception and not app.error


def test_a_label_list_of_one_label_is_an_error_not_a_crash(open_explorer):
    app = open_explorer()
    app.text_area(key="explore_custom").set_value("cat").run()
    assert not app.exception
    assert any(e.value.startswith("Labels:") and "at least 2" in e.value for e in app.error)
    assert not app.dataframe
