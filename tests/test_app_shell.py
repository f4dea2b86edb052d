"""The app shell: app.py's pages and sidebar (AppTest, tiny random-init model), and the shell's pure helpers."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lr0fm_core.models.loading import UNTRAINED_WARNING
from lr0fm_core.models.registry import DEFAULT_MODEL_KEY, list_models
from lr0fm_core.ui import PAGES, available_pages
from lr0fm_core.ui.session import RANDOM_INIT_KEY, env_flag, model_choice, model_picker

APP = Path(__file__).resolve().parents[1] / "app.py"
# AppTest runs an app that has a pages/ folder as a legacy multipage app (page files without app.py).
# Starting app.py from a script outside that folder keeps st.navigation in charge, as `streamlit run app.py` does.
ENTRY = f"import runpy; runpy.run_path({str(APP)!r}, run_name='__main__')"
TIMEOUT = 60  # the first run imports torch and builds the model


@pytest.fixture
def tiny_app(monkeypatch):
    monkeypatch.setenv("LR0FM_RANDOM_INIT", "1")
    monkeypatch.setenv("LR0FM_APP_MODEL", "lr0fm-tiny-ViT")
    return AppTest.from_string(ENTRY, default_timeout=TIMEOUT)


@pytest.fixture
def offline_app(monkeypatch):
    """The default registry model with no cached weights and no network."""
    monkeypatch.delenv("LR0FM_RANDOM_INIT", raising=False)
    monkeypatch.delenv("LR0FM_APP_MODEL", raising=False)
    monkeypatch.setenv("LR0FM_OFFLINE", "1")
    return AppTest.from_string(ENTRY, default_timeout=TIMEOUT)


def test_home_renders_with_the_sidebar_and_the_untrained_warning(tiny_app):
    tiny_app.run()
    assert not tiny_app.exception
    assert tiny_app.title[0].value == "LR0.FM Explorer"
    assert tiny_app.sidebar.selectbox[0].value == "lr0fm-tiny-ViT"
    assert tiny_app.sidebar.toggle[0].value is True
    assert any(UNTRAINED_WARNING in w.value for w in tiny_app.sidebar.warning)
    assert any("Device: `cpu`" in c.value for c in tiny_app.sidebar.caption)
    assert not tiny_app.sidebar.error


def test_home_links_every_existing_page(tiny_app):
    tiny_app.run()
    pages = available_pages(APP.parent)
    assert "pages/1_Resolution_explorer.py" in [page.file for page in pages]
    assert [link.proto.label for link in tiny_app.get("page_link")] == [page.title for page in pages]


def test_offline_weights_show_the_engines_message_and_pages_still_render(offline_app):
    offline_app.run()
    assert not offline_app.exception
    (error,) = offline_app.sidebar.error
    assert "could not be fetched" in error.value and "--checkpoint" in error.value
    offline_app.switch_page(str(APP.parent / "pages/1_Resolution_explorer.py")).run()
    assert not offline_app.exception
    assert "could not be fetched" in offline_app.sidebar.error[0].value  # the sidebar is on every page
    assert any("No model is loaded" in i.value for i in offline_app.info)
    assert not offline_app.get("plotly_chart")


def test_the_random_init_toggle_loads_an_untrained_model(offline_app):
    offline_app.run()
    offline_app.toggle(key=RANDOM_INIT_KEY).set_value(True).run()
    assert not offline_app.exception
    assert not offline_app.sidebar.error
    assert any(UNTRAINED_WARNING in w.value for w in offline_app.sidebar.warning)


def test_shown_errors_reports_and_then_stops_or_goes_on():
    def script():
        import streamlit as st

        from lr0fm_core.ui import shown_errors

        with shown_errors("Labels", stop=False):
            raise ValueError("need two labels")
        st.write("went on")
        with shown_errors("Checkpoint"):
            raise OSError("disk unreadable")
        st.write("never shown")

    app = AppTest.from_function(script)
    app.run()
    assert not app.exception
    assert [e.value for e in app.error] == ["Labels: need two labels", "Checkpoint: disk unreadable"]
    assert [m.value for m in app.markdown] == ["went on"]


def test_model_picker_lists_the_registry_and_adds_an_unregistered_app_model():
    registry = [spec.key for spec in list_models()]
    options, default = model_picker(None)
    assert list(options) == registry and default == DEFAULT_MODEL_KEY
    assert options[DEFAULT_MODEL_KEY] == list_models()[registry.index(DEFAULT_MODEL_KEY)].label
    options, default = model_picker("lr0fm-tiny-ViT")
    assert list(options) == ["lr0fm-tiny-ViT", *registry] and default == "lr0fm-tiny-ViT"
    options, default = model_picker(" CLIP-ViT-B-32 ")  # a registry key in another case is not added again
    assert list(options) == registry and default == "clip-vit-b-32"


def test_model_choice_random_init_ignores_tag_and_checkpoint():
    assert model_choice("m", True, "openai", "/w.safetensors", "cpu").pretrained == "none"
    assert model_choice("m", True, "openai", "/w.safetensors", "cpu").checkpoint is None
    choice = model_choice("m", False, "  ", " /w.safetensors ", "cpu")
    assert (choice.pretrained, choice.checkpoint) == (None, "/w.safetensors")
    assert model_choice("m", False, "laion2b", "", "cpu").pretrained == "laion2b"


def test_available_pages_lists_only_scripts_that_exist(tmp_path):
    (tmp_path / "pages").mkdir()
    (tmp_path / PAGES[0].file).write_text("")
    assert available_pages(tmp_path) == [PAGES[0]]
    assert available_pages(tmp_path / "nowhere") == []


@pytest.mark.parametrize("value, expected", [("1", True), (" Yes ", True), ("on", True), ("0", False), ("", False),
                                             ("no", False)])
def test_env_flag(monkeypatch, value, expected):
    monkeypatch.setenv("LR0FM_RANDOM_INIT", value)
    assert env_flag("LR0FM_RANDOM_INIT") is expected
