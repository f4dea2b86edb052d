"""Grad-CAM: where the model looks at high and low resolution, with and without LR tokens (paper Fig. 16 / 23)."""

import hashlib
from pathlib import Path

import streamlit as st

from lr0fm_core import explore, gradcam
from lr0fm_core.lr_tokens import head_for_tokens, load_lr_tokens
from lr0fm_core.pipeline import model_view
from lr0fm_core.resolution import HR
from lr0fm_core.ui import ensure_app_shell, session, shown_errors, widgets

ensure_app_shell()

TOP1 = -1  # class choice: each panel's own top-1 label


@st.cache_resource(show_spinner="Adding the LR tokens…", max_entries=4)
def tokened_model(weights_id: str, source_key: str, _loaded, _source):
    """The sidebar model with LR tokens from a path or uploaded bytes (refused when they belong to another model)."""
    return load_lr_tokens(_loaded, _source, name=source_key.split("|")[0])


@st.cache_resource(show_spinner="Computing Grad-CAM…", max_entries=64)
def class_activation(digest: str, weights_id: str, fingerprint: str, resolution, layer: str, class_index: int,
                     _loaded, _head, _image):
    view = model_view(_image, resolution, _loaded.resolution)
    cam = gradcam.grad_cam(_loaded, _head, view, None if class_index == TOP1 else class_index, layer)
    return view, cam


st.title("Grad-CAM")
st.caption("Which image regions drive the CLIP similarity between the photo and a class's text embedding "
           "(Grad-CAM at a block's spatial tokens), at high resolution, at low resolution, and at low resolution "
           "with LR tokens (LR-TK0, the paper's Fig. 16: attention scatters at 16 px; LR tokens bring it back "
           "to the object).")
loaded = session.require_model()

photo_column, label_column = st.columns(2)
with photo_column:
    if st.radio("Photo", ["Sample gallery", "Your photo"], horizontal=True, key="cam_source") == "Sample gallery":
        photo = widgets.sample_photo("cam_gallery")
    else:
        photo = widgets.uploaded_photo("cam_upload")
with label_column:
    label_set = widgets.label_set_picker("cam")
head = session.zero_shot_head(loaded, label_set)

with st.expander("LR tokens (from `lr0fm train-lr-tokens`)", expanded=True):
    path_column, upload_column = st.columns(2)
    token_path = path_column.text_input("Token checkpoint path", key="cam_tokens_path",
                                        placeholder="/path/to/lr_tokens.safetensors").strip()
    token_upload = upload_column.file_uploader("…or upload one", type=["safetensors"], key="cam_tokens_upload")
    tokened = None
    with shown_errors("LR tokens", stop=False):
        if token_upload is not None:
            data = token_upload.getvalue()
            key = f"{token_upload.name}|{hashlib.sha256(data).hexdigest()}"
            tokened = tokened_model(loaded.weights_id, key, loaded, data)
        elif token_path:
            path = Path(token_path).expanduser()
            key = f"{path}|{path.stat().st_mtime_ns}" if path.is_file() else str(path)
            tokened = tokened_model(loaded.weights_id, key, loaded, path)
    if tokened is not None:
        st.caption(f"Loaded {tokened.lr_tokens.tokens.numel():,} LR-token parameters "
                   f"({len(tokened.lr_tokens.positions)} sets, start block {tokened.lr_tokens.start_block}).")

stops = [stop for stop in explore.slider_stops(loaded.resolution) if stop != HR]
settings = st.columns(3)
resolution = settings[0].select_slider("Low resolution (shorter side, px)", stops, value=16 if 16 in stops else stops[0],
                                       format_func=explore.stop_label, key="cam_resolution")
layers = gradcam.gradcam_layers(loaded.model)
layer = settings[1].selectbox("Block", layers, index=len(layers) - 1, key="cam_layer",
                              help="Grad-CAM is taken at this layer's spatial tokens (patch_embed: after "
                                   "patchification; block_i: block i's output).")
class_index = settings[2].selectbox("Class", [TOP1, *range(len(head.classnames))], key="cam_class",
                                    format_func=lambda i: "Top-1 of each panel" if i == TOP1 else head.classnames[i])

panels = [(f"HR ({loaded.resolution} px), no LR tokens", loaded, head, HR),
          (f"{resolution} px, no LR tokens", loaded, head, resolution)]
if tokened is not None:
    panels.append((f"{resolution} px, with LR tokens", tokened, head_for_tokens(head, tokened), resolution))
for column, (title, model, model_head, stop) in zip(st.columns(3), panels):
    with column, shown_errors(title):
        view, cam = class_activation(photo.digest, model.weights_id, label_set.fingerprint(), stop, layer,
                                     class_index, model, model_head, photo.image)
        st.image(gradcam.overlay(view, cam.heatmap), caption=title, output_format="PNG")
        st.markdown(f"**{cam.label}** · {cam.probability:.1%}")
        if cam.top1 != cam.class_index:
            st.caption(f"top-1: {head.classnames[cam.top1]} ({cam.probabilities[cam.top1]:.1%})")
if tokened is None:
    st.info("Give an LR-token checkpoint above to add the third panel: the low-resolution photo with LR tokens.")
if photo.true_label is not None:
    st.caption(f"True label of this photo: {photo.true_label}.")
