"""The app's shared state: the sidebar's model choice and the caches of models, heads, photos and sweeps.

``app.py`` draws :func:`sidebar` before every page; pages call :func:`require_model`. Environment:
``LR0FM_RANDOM_INIT=1`` turns the random-init toggle on by default (try the app without weights),
``LR0FM_APP_MODEL`` picks the default model (a registry key or any open_clip name, e.g.
``lr0fm-tiny-ViT``). Everything slow is cached with ``st.cache_resource`` and keyed by what
identifies it (model weights, label set fingerprint, image pixels).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Sequence

import streamlit as st
from PIL import Image

from .. import config, explore, gallery
from ..explore import Photo, ResolutionSweep
from ..models.loading import UNTRAINED_WARNING, LoadedModel, load_model
from ..models.registry import DEFAULT_MODEL_KEY, list_models
from ..pipeline import model_view
from ..resolution import Resolution
from ..zeroshot.head import ZeroShotHead, build_zero_shot_head
from ..zeroshot.labels import LabelSet

ENV_RANDOM_INIT = "LR0FM_RANDOM_INIT"
ENV_APP_MODEL = "LR0FM_APP_MODEL"
STATUS_KEY = "lr0fm_model_status"
MODEL_KEY, RANDOM_INIT_KEY = "lr0fm_model", "lr0fm_random_init"  # sidebar widget keys
TAG_KEY, CHECKPOINT_KEY = "lr0fm_tag", "lr0fm_checkpoint"
HEAD_CACHE_SIZE = 8
PREVIEW_SIZE = 448  # px, longer side of the enlarged low-resolution preview


def env_flag(name: str) -> bool:
    """True when the environment variable is 1/true/yes/on (any case)."""
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def model_picker(extra: str | None = None) -> tuple[dict[str, str], str]:
    """(option -> label for the model picker, the default option).

    Options are the registry keys; ``extra`` (from ``LR0FM_APP_MODEL``) is the default and, when
    it is not a registry key, an extra first option (any open_clip model name).
    """
    options = {spec.key: spec.label for spec in list_models()}
    extra = (extra or "").strip()
    if not extra:
        return options, DEFAULT_MODEL_KEY
    if extra.lower() in options:
        return options, extra.lower()
    return {extra: f"{extra} · open_clip model, not in the paper's registry", **options}, extra


@dataclass(frozen=True)
class ModelChoice:
    """What :func:`~lr0fm_core.models.loading.load_model` is asked for; also the model cache key."""

    model: str
    pretrained: str | None
    checkpoint: str | None
    device: str


def model_choice(model: str, random_init: bool, tag: str = "", checkpoint: str = "",
                 device: str | None = None) -> ModelChoice:
    """The sidebar's widgets as a load request: random init ignores the tag and the checkpoint."""
    device = device or str(config.default_device())
    if random_init:
        return ModelChoice(model, "none", None, device)
    return ModelChoice(model, tag.strip() or None, checkpoint.strip() or None, device)


@dataclass(frozen=True)
class ModelStatus:
    """A loaded model, or why it could not be loaded (the engine's message)."""

    choice: ModelChoice
    loaded: LoadedModel | None
    error: str | None


@st.cache_resource(show_spinner="Loading the model (the first use of a pretrained tag downloads its weights)…",
                   max_entries=2)
def _load(model: str, pretrained: str | None, checkpoint: str | None, device: str) -> ModelStatus:
    """Failures are cached too, so an offline machine does not probe the network on every rerun."""
    choice = ModelChoice(model, pretrained, checkpoint, device)
    try:
        return ModelStatus(choice, load_model(model, pretrained, checkpoint, device), None)
    except (ValueError, OSError) as exc:
        return ModelStatus(choice, None, str(exc))


def load(choice: ModelChoice) -> ModelStatus:
    """The cached model for ``choice`` (keyed by model, tag, checkpoint and device)."""
    return _load(choice.model, choice.pretrained, choice.checkpoint, choice.device)


def sidebar() -> ModelStatus:
    """Draw the model picker, weights options, device and weights status; remember the status for pages."""
    options, default = model_picker(os.environ.get(ENV_APP_MODEL))
    specs = {spec.key: spec for spec in list_models()}
    with st.sidebar:
        st.subheader("Model")
        keys = list(options)
        model = st.selectbox("Backbone", keys, index=keys.index(default), format_func=options.__getitem__,
                             key=MODEL_KEY, help="The paper's backbones that open_clip can load (Table 1).")
        spec = specs.get(model)
        if spec is not None:
            st.caption(f"{spec.family} · {spec.architecture} · {spec.params_m:,.0f} M params · "
                       f"{spec.pretraining_data} · {spec.resolution} px input")
        random_init = st.toggle("Random-init weights (no download)", value=env_flag(ENV_RANDOM_INIT),
                                key=RANDOM_INIT_KEY, help="Try the app without weights; predictions are meaningless.")
        with st.expander("Weights source"):
            tag = st.text_input("Pretrained tag", key=TAG_KEY, disabled=random_init,
                                placeholder=spec.pretrained_tag if spec else "open_clip tag, e.g. openai")
            checkpoint = st.text_input("Local checkpoint", key=CHECKPOINT_KEY, disabled=random_init,
                                       placeholder="/path/to/open_clip_model.safetensors or its folder")
        choice = model_choice(model, random_init, tag, checkpoint)
        st.caption(f"Device: `{choice.device}` (set `{config.ENV_DEVICE}` to change)")
        status = load(choice)
        _draw_status(status)
    st.session_state[STATUS_KEY] = status
    return status


def _draw_status(status: ModelStatus) -> None:
    loaded = status.loaded
    if loaded is None:
        st.error(f"Weights unavailable: {status.error}")
        st.caption("In the app: give the file under *Weights source → Local checkpoint*, "
                   "or turn on *Random-init weights* to try the tool.")
        if st.button("Retry", key="lr0fm_retry_load"):
            _load.clear()
            st.rerun()
    elif loaded.untrained:
        st.warning(f"**{UNTRAINED_WARNING}**", icon=":material/warning:")
        st.caption(f"Loaded {loaded.description}")
    else:
        st.success(f"Weights loaded: {loaded.description}", icon=":material/check_circle:")


def require_model() -> LoadedModel:
    """The sidebar's loaded model for a page that shows model output; stops the page when there is none.

    An untrained model gets the prominent :data:`UNTRAINED_WARNING` at the top of the page.
    """
    status = st.session_state.get(STATUS_KEY)
    if status is None:  # app.py's sidebar has not run in this session
        st.info("Open this page from the app's navigation (`streamlit run app.py`, then Home): "
                "the model is chosen in its sidebar.")
        st.stop()
    if status.loaded is None:
        st.info("No model is loaded: the sidebar says why and how to supply weights.")
        st.stop()
    if status.loaded.untrained:
        st.warning(f"**{UNTRAINED_WARNING}**. Choose pretrained weights in the sidebar for real predictions.",
                   icon=":material/warning:")
    return status.loaded


@st.cache_resource
def _head_store() -> tuple[OrderedDict, threading.Lock]:
    return OrderedDict(), threading.Lock()  # shared by all sessions


def zero_shot_head(loaded: LoadedModel, label_set: LabelSet) -> ZeroShotHead:
    """The zero-shot head, cached by model weights and label-set fingerprint; a progress bar while it builds."""
    store, lock = _head_store()
    key = (loaded.weights_id, label_set.fingerprint())
    with lock:
        head = store.get(key)
        if head is not None:
            store.move_to_end(key)
            return head
    prompts = len(label_set.classnames) * len(label_set.templates)
    text = f"Encoding {prompts:,} class prompts of {label_set.name} (once per model and label set)…"
    bar = st.progress(0.0, text=text)
    head = build_zero_shot_head(loaded, label_set, progress=lambda done, total: bar.progress(done / total, text=text))
    bar.empty()
    with lock:
        store[key] = head
        while len(store) > HEAD_CACHE_SIZE:
            store.popitem(last=False)
    return head


@st.cache_resource(show_spinner="Running the photo through the model at every resolution…", max_entries=32)
def _sweep(digest: str, weights_id: str, fingerprint: str, stops: tuple, _loaded: LoadedModel,
           _head: ZeroShotHead, _image: Image.Image) -> ResolutionSweep:
    return explore.sweep(_loaded, _head, _image, stops)


def resolution_sweep(loaded: LoadedModel, head: ZeroShotHead, photo: Photo,
                     stops: Sequence[Resolution]) -> ResolutionSweep:
    """:func:`lr0fm_core.explore.sweep`, cached by image digest, model weights, label set and stops."""
    return _sweep(photo.digest, loaded.weights_id, head.label_set.fingerprint(), tuple(stops), loaded, head,
                  photo.image)


@st.cache_resource(show_spinner=False, max_entries=128)
def _previews(digest: str, resolution: Resolution, model_resolution: int,
              _image: Image.Image) -> tuple[Image.Image, Image.Image]:
    return (explore.camera_preview(_image, resolution, PREVIEW_SIZE),
            model_view(_image, resolution, model_resolution))


def previews(photo: Photo, resolution: Resolution, model_resolution: int) -> tuple[Image.Image, Image.Image]:
    """(the low-resolution image enlarged with visible pixels, the exact model input) at ``resolution``."""
    return _previews(photo.digest, resolution, model_resolution, photo.image)


@st.cache_resource(show_spinner=False, max_entries=64)
def gallery_photo(file: str) -> Photo:
    """A bundled sample photo with its true label (:mod:`lr0fm_core.gallery`)."""
    entry = gallery.get_photo(file)
    return Photo.of(entry.title, entry.read_image(), entry.label_name)


@st.cache_resource(show_spinner=False, max_entries=16)
def _uploads(file_ids: tuple[str, ...], _files: tuple) -> tuple[list[Photo], list[str]]:
    return explore.load_uploads(_files)


def uploaded_photos(files: Sequence) -> tuple[list[Photo], list[str]]:
    """:func:`lr0fm_core.explore.load_uploads` for Streamlit uploads, decoded once per upload."""
    return _uploads(tuple(f.file_id for f in files), tuple(files))
