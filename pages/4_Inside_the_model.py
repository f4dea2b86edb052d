"""Inside the model: layer-wise similarity across resolutions (Fig. 7 right), feature t-SNE (Fig. 8) and the
dataset t-SNE of robustness vectors (Fig. 7 middle)."""

import json
from collections import OrderedDict
from pathlib import PurePath

import numpy as np
import pandas as pd
import streamlit as st

from lr0fm_core import explore, gallery
from lr0fm_core.inside import (MEASURES, dataset_embedding, dataset_robustness_vectors, diagonal_frame,
                               early_deep_summary, effective_perplexity, matrix_frame, open_image_set, resolution_maps,
                               similarity_grid)
from lr0fm_core.inside.embedding import DEFAULT_SEED
from lr0fm_core.inside.features import TOKEN_MODES, extract_features
from lr0fm_core.lr_tokens import load_lr_tokens
from lr0fm_core.metrics import read_results_table
from lr0fm_core.models.vision_blocks import vision_layout
from lr0fm_core.pipeline import PAPER_RESOLUTIONS
from lr0fm_core.resolution import HR
from lr0fm_core.ui import ensure_app_shell, inside_charts, session, shown_errors, widgets

ensure_app_shell()

FEATURE_CACHE_BYTES = 2 * 2**30  # features kept per (model, image set, resolution, tokens), oldest dropped first
MAX_TOKEN_IMAGES = 16  # all-token features of an image set: images used (memory grows with tokens × layers)
VIEWS = ("Layer similarity (Fig. 7 right)", "Feature t-SNE (Fig. 8)", "Dataset t-SNE (Fig. 7 middle)")
SET_SOURCES = {"Sample photos": "sample", "Class folders": "imagefolder", "CSV list": "csv"}
WITH_TOKENS = "with LR tokens"

st.title("Inside the model")
st.caption("Where low resolution hurts inside the image tower, and how classes collapse (LR0.FM, Sec. 4 "
           "'Inside Model'). Every image goes through the paper's pipeline: shorter side to *n* px (bicubic), "
           "back up to the model's input.")


def label(resolution) -> str:
    return f"HR ({loaded.resolution}px)" if resolution == HR else f"{resolution}×{resolution}"


@st.cache_resource
def _feature_store() -> OrderedDict:
    return OrderedDict()


def features(model, images_key: str, images, resolutions, tokens: str | None) -> dict:
    """Features per resolution, cached per (model, image set, resolution, tokens); a progress bar for the new ones."""
    store = _feature_store()
    keys = {r: (model.weights_id, str(model.device), images_key, r, tokens) for r in resolutions}
    missing = [r for r in resolutions if keys[r] not in store]
    if missing:
        bar = st.progress(0.0)
        for step, resolution in enumerate(missing):
            text = f"Features at {label(resolution)} ({step + 1}/{len(missing)}, {len(images)} images)…"
            bar.progress(step / len(missing), text=text)
            store[keys[resolution]] = extract_features(
                model, images, resolution, tokens,
                progress=lambda done, total: bar.progress((step + done / total) / len(missing), text=text))
        bar.empty()
    result = {r: store[keys[r]] for r in resolutions}
    for key in keys.values():
        store.move_to_end(key)
    while len(store) > 1 and sum(f.nbytes for f in store.values()) > FEATURE_CACHE_BYTES:
        store.popitem(last=False)
    return result


@st.cache_resource(max_entries=4, show_spinner=False)
def _tokened(weights_id: str, file_id: str, _loaded, _data: bytes, name: str):
    return load_lr_tokens(_loaded, _data, name)


@st.cache_resource(max_entries=16, show_spinner="Running t-SNE…")
def _maps(weights_id: str, set_key: str, resolutions: tuple, perplexity: float, _embeddings: dict, _labels: tuple):
    return resolution_maps(_embeddings, _labels, seed=DEFAULT_SEED, perplexity=perplexity)


def image_set_picker(key: str):
    kind = st.radio("Labeled images", list(SET_SOURCES), horizontal=True, key=f"{key}_set_kind")
    with shown_errors("Labeled images"):
        if SET_SOURCES[kind] == "sample":
            chosen = open_image_set("sample")
            st.caption("The bundled gallery photos in three coarse classes: enough to show the mechanics; "
                       "use your own labeled images for conclusions.")
        else:
            prompt = ("Folder with one subfolder per class (`<folder>/<class>/<image>`)" if kind == "Class folders"
                      else "CSV file with columns `path,label` (paths relative to the CSV)")
            path = st.text_input(prompt, key=f"{key}_set_path", placeholder="/path/on/this/machine")
            if not path.strip():
                st.info("Give a path on the machine running the app.")
                st.stop()
            chosen = open_image_set(f"{SET_SOURCES[kind]}:{path.strip()}")
    counts = ", ".join(f"{name} ({count})" for name, count in chosen.class_counts.items())
    st.caption(f"{chosen.name}: {len(chosen)} images · {counts}")
    return chosen


def downloads(key: str, what: str, source: str, csv_text: str, payload: dict, figure) -> None:
    """CSV and JSON of a panel's numbers, and PNG of its figure where plotly can export images (kaleido)."""
    columns = st.columns(3)
    columns[0].download_button("CSV", csv_text, file_name=explore.export_name(what, source, "csv"), mime="text/csv",
                               on_click="ignore", key=f"{key}_csv")
    columns[1].download_button("JSON", json.dumps(payload, indent=1, default=str), mime="application/json",
                               file_name=explore.export_name(what, source, "json"), on_click="ignore",
                               key=f"{key}_json")
    if inside_charts.png_export_available():
        columns[2].download_button("PNG", lambda: figure.to_image(format="png", scale=2), mime="image/png",
                                   file_name=explore.export_name(what, source, "png"), on_click="ignore",
                                   key=f"{key}_png")


def provenance(**extra) -> dict:
    return {"model": loaded.name, "weights": loaded.weights_id, "untrained": loaded.untrained, **extra}


view = st.radio("View", VIEWS, horizontal=True, key="inside_view")
if view != VIEWS[2]:  # the dataset t-SNE needs no model
    loaded = session.require_model()
    below_hr = [s for s in explore.slider_stops(loaded.resolution) if s != HR and s < loaded.resolution]
    paper_below_hr = [s for s in PAPER_RESOLUTIONS if s in below_hr]

if view == VIEWS[0]:
    with shown_errors("This model"):
        layout = vision_layout(loaded.model)
    st.markdown("The same images at *n*×*n* and at the model's own resolution; every layer of the *n*×*n* model "
                "(patch embedding, then each block) against every layer of the HR model. Bright = similar. The paper "
                "finds the diagonal brighter for deep layers than for early ones: early layers suffer more.")
    source_column, settings_column = st.columns(2)
    with source_column:
        source = st.radio("Images", ["Sample photo", "Your photo", "Labeled image set"], horizontal=True,
                          key="inside_layers_source")
        if source == "Labeled image set":
            image_set = image_set_picker("inside_layers")
            images_key, images, single = image_set.fingerprint(), list(image_set.paths), False
        else:
            if source == "Sample photo":
                full_size = next(i for i, p in enumerate(gallery.gallery_photos()) if p.label_space != "cifar10")
                photo = widgets.sample_photo("inside_gallery", index=full_size, help="CIFAR-10 photos are 32 px "
                                             "originals: at 32 px and above nothing changes.")
            else:
                photo = widgets.uploaded_photo("inside_upload")
            images_key, images, single = photo.digest, [photo.image], True
    with settings_column:
        measure = st.radio("Similarity", list(MEASURES), format_func=lambda m: MEASURES[m].label, horizontal=True,
                           key="inside_measure")
        tokens = st.radio("Features", ["all"] if single else list(TOKEN_MODES), format_func=TOKEN_MODES.get,
                          key="inside_tokens",
                          help="One photo: its tokens are the examples compared (the class token alone is one vector).")
        resolutions = sorted(st.multiselect("Input resolutions (n)", below_hr, default=paper_below_hr or below_hr[:1],
                                            key="inside_resolutions"))
        token_file = st.file_uploader("LR tokens (optional): an LR-TK0 checkpoint of this model", type=["safetensors"],
                                      key="inside_lr_tokens",
                                      help="Written by `lr0fm train-lr-tokens`; its n×n heatmaps appear beside those "
                                           "without tokens, both against the HR features of the model without tokens.")
    st.caption(f"**{MEASURES[measure].label}**: {MEASURES[measure].formula}.")
    if layout.prefix_tokens == 0 and tokens == "class":
        st.caption("This tower has no class token: each layer's mean token stands in for it.")
    if not resolutions:
        st.info("Choose at least one input resolution below the model's.")
        st.stop()
    if not single and tokens == "all" and len(images) > MAX_TOKEN_IMAGES:
        image_set = image_set.balanced_subset(MAX_TOKEN_IMAGES)
        images_key, images = image_set.fingerprint(), list(image_set.paths)
        st.caption(f"All-token features use {MAX_TOKEN_IMAGES} of the images (every class in turn); the class-token "
                   f"features use all of them.")

    variants = {"without tokens": loaded}
    if token_file is not None:
        with shown_errors("LR tokens"):
            variants[WITH_TOKENS] = _tokened(loaded.weights_id, token_file.file_id, loaded, token_file.getvalue(),
                                             token_file.name)
    with shown_errors("Layer features"):
        hr_layers = features(loaded, images_key, images, [HR], tokens)[HR].layers
        grids = {}
        for variant, model in variants.items():
            low = features(model, images_key, images, resolutions, tokens)
            grids[variant] = similarity_grid({**{r: f.layers for r, f in low.items()}, HR: hr_layers}, HR, measure)
    layer_names = list(layout.layer_names)
    values = np.concatenate([m.ravel() for grid in grids.values() for m in grid.values()])
    finite = values[np.isfinite(values)]
    zrange = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    panels = [(variant, r) for r in resolutions for variant in grids]  # with tokens: side by side per resolution
    per_row = 4 if len(grids) == 1 else 2 * len(grids)
    for row_start in range(0, len(panels), per_row):
        row = panels[row_start:row_start + per_row]
        for column, (variant, resolution) in zip(st.columns(len(row)), row):
            with column:
                suffix = " + LR tokens" if variant == WITH_TOKENS else ""
                key = f"inside_heatmap_{resolution}{'_tokens' if suffix else ''}"
                matrix = grids[variant][resolution]
                figure = inside_charts.heatmap_figure(matrix, layer_names, f"{label(resolution)}{suffix} vs HR "
                                                                           f"({loaded.resolution}px)", zrange)
                st.plotly_chart(figure, key=key)
                downloads(key, f"layers-{measure}-{resolution}{suffix.replace(' + ', '-')}", loaded.name,
                          matrix_frame(matrix, layer_names).to_csv(),
                          provenance(measure=measure, formula=MEASURES[measure].formula, tokens=tokens,
                                     lr_tokens=variants[variant].weights_id if suffix else None, resolution=resolution,
                                     images=len(images), layers=layer_names, matrix=matrix.tolist()), figure)

    diagonal = pd.concat([diagonal_frame(grid, layer_names).assign(variant=v) for v, grid in grids.items()],
                         ignore_index=True)
    summary = pd.concat([early_deep_summary(diagonal_frame(grid, layer_names)).assign(variant=v)
                         for v, grid in grids.items()], ignore_index=True)
    figure = inside_charts.diagonal_figure(diagonal, MEASURES[measure].label)
    st.plotly_chart(figure, key="inside_diagonal")
    for variant, part in summary.groupby("variant", sort=False):
        verdicts = "; ".join(f"{label(r.resolution)}: early {r.early:.3f}, deep {r.deep:.3f}"
                             for r in part.itertuples())
        heading = f"{variant[0].upper()}{variant[1:]}: mean" if len(grids) > 1 else "Mean"
        st.markdown(f"{heading} diagonal similarity of the first and last third of the layers: {verdicts}. "
                    f"Early layers suffer more at **{(part['deep_minus_early'] > 0).sum()} of {len(part)}** "
                    f"resolutions.")
    downloads("inside_diagonal", f"layers-{measure}-diagonal", loaded.name, diagonal.to_csv(index=False),
              provenance(measure=measure, tokens=tokens, diagonal=diagonal.to_dict("records"),
                         summary=summary.to_dict("records")), figure)

elif view == VIEWS[1]:
    st.markdown("Image embeddings of a labeled set at several resolutions, each mapped to 2-D with t-SNE (PCA to 50 "
                "dimensions first, fixed seed) and coloured by class. The paper finds classes overlapping at 16 and 32 "
                "px; the **silhouette** of the classes on the embeddings (cosine) puts that in a number: about 0 = "
                "overlapping, towards 1 = separate.")
    set_column, settings_column = st.columns(2)
    with set_column:
        image_set = image_set_picker("inside_tsne")
        max_images = st.number_input("Images used at most (every class in turn)", 10, 20_000, 1_000, step=100,
                                     key="inside_tsne_max")
        image_set = image_set.balanced_subset(int(max_images))
    with settings_column:
        stops = [*below_hr, HR]
        resolutions = sorted(st.multiselect("Resolutions", stops, default=[*paper_below_hr, HR], format_func=label,
                                            key="inside_tsne_resolutions"), key=stops.index)
        perplexity = st.slider("Perplexity", 2, 50, 30, key="inside_perplexity")
    if len(image_set.class_counts) < 2:
        st.info("The set needs at least two classes to colour and score.")
        st.stop()
    if effective_perplexity(len(image_set), perplexity) < perplexity:
        st.caption(f"{len(image_set)} images: perplexity capped at "
                   f"{effective_perplexity(len(image_set), perplexity):.1f}.")
    if not resolutions:
        st.info("Choose at least one resolution.")
        st.stop()
    with shown_errors("Feature t-SNE"):
        by_resolution = features(loaded, image_set.fingerprint(), list(image_set.paths), resolutions, None)
        points, scores = _maps(loaded.weights_id, image_set.fingerprint(), tuple(resolutions), perplexity,
                               {r: f.embeddings for r, f in by_resolution.items()}, image_set.labels)
    points["path"] = [str(image_set.paths[i]) for i in points["image"]]
    silhouettes = dict(zip(scores["resolution"], scores["silhouette"]))
    for row_start in range(0, len(resolutions), 3):
        row = resolutions[row_start:row_start + 3]
        for column, resolution in zip(st.columns(len(row)), row):
            with column:
                panel = points[points["resolution"] == resolution]
                figure = inside_charts.tsne_figure(panel, f"{label(resolution)} · silhouette "
                                                          f"{silhouettes[resolution]:.3f}")
                st.plotly_chart(figure, key=f"inside_tsne_{resolution}")
                downloads(f"inside_tsne_{resolution}", f"tsne-{resolution}", loaded.name, panel.to_csv(index=False),
                          provenance(resolution=resolution, seed=DEFAULT_SEED, perplexity=perplexity,
                                     silhouette=silhouettes[resolution], points=panel.to_dict("records")), figure)
    st.dataframe(scores.assign(resolution=scores["resolution"].map(label)), hide_index=True, key="inside_scores")

else:
    st.markdown("Each dataset as its vector of Γ (Eq. 1) over models at one resolution, mapped to 2-D with t-SNE. "
                "The paper (66 models, Γ at 16 px) finds three clusters: robust (e.g. Caltech101), weakly robust "
                "(e.g. ImageNet), least robust (e.g. ImageNet-A).")
    upload = st.file_uploader("Per-dataset results table (CSV: model, dataset, resolution, top1, n_classes)",
                              type=["csv"], key="inside_results")
    if upload is None:
        st.info("Upload a results table, e.g. the per-dataset CSV written by `lr0fm bench`: one row per (model, "
                "dataset, resolution) with top-1 accuracy as a fraction, and an `hr` row for every (model, dataset).")
        st.stop()
    with shown_errors("Results table"):
        table = read_results_table(upload)
    low = sorted(r for r in set(table["resolution"]) if r != HR)
    left, right = st.columns(2)
    resolution = left.selectbox("Resolution", low, index=low.index(16) if 16 in low else 0, key="inside_ds_resolution")
    perplexity = right.slider("Perplexity", 2, 50, 30, key="inside_ds_perplexity")
    with shown_errors("Dataset t-SNE"):
        vectors = dataset_robustness_vectors(table, resolution)
        embedding = dataset_embedding(vectors, perplexity=perplexity)
    dropped = table["model"].nunique() - vectors.shape[1]
    if dropped:
        st.caption(f"{dropped} model(s) without results on every dataset are left out.")
    figure = inside_charts.dataset_map_figure(embedding, resolution)
    st.plotly_chart(figure, key="inside_dataset_map")
    downloads("inside_dataset_map", f"dataset-tsne-{resolution}", PurePath(upload.name).stem,
              embedding.to_csv(index=False),
              {"table": upload.name, "resolution": resolution, "seed": DEFAULT_SEED, "perplexity": perplexity,
               "points": embedding.to_dict("records"), "Gamma": vectors.to_dict()}, figure)

st.caption("Each chart's toolbar (camera icon) also saves it as PNG.")
