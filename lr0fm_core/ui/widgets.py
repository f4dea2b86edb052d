"""Input widgets that several pages share: the label-set picker, a gallery photo and photo uploads."""

from __future__ import annotations

import streamlit as st

from .. import explore, gallery
from ..explore import Photo
from ..io import SUPPORTED_EXTENSIONS
from ..zeroshot.labels import DATASET_IDS, LabelSet, dataset_info
from . import session, shown_errors


def label_set_picker(key_prefix: str) -> LabelSet:
    """ImageNet-1k, one of the 15 benchmark datasets, or the user's own list (keys ``<prefix>_labels/_custom``)."""
    choice = st.selectbox("Labels", [*DATASET_IDS, explore.CUSTOM_LABELS], key=f"{key_prefix}_labels",
                          format_func=lambda d: "Your own labels" if d == explore.CUSTOM_LABELS
                          else f"{dataset_info(d).name} ({dataset_info(d).num_classes} classes)")
    custom = ""
    if choice == explore.CUSTOM_LABELS:
        custom = st.text_area("Your labels: one per line, or comma separated", ", ".join(gallery.CIFAR10_CLASSES),
                              key=f"{key_prefix}_custom", help="Prompted with CLIP's 80 ImageNet templates.")
    with shown_errors("Labels"):
        return explore.label_set_for(choice, custom)


def sample_photo(key: str, index: int = 0, help: str | None = None) -> Photo:
    """A photo picked from the bundled gallery, with its source and licence shown."""
    file = st.selectbox("Sample photo", [p.file for p in gallery.gallery_photos()], index=index, key=key,
                        format_func=lambda f: gallery.get_photo(f).caption, help=help)
    entry = gallery.get_photo(file)
    st.caption(f"Source: {entry.source}; licence: {entry.license}")
    return session.gallery_photo(file)


def uploaded_photos(key: str, multiple: bool = False) -> list[Photo]:
    """Uploaded photos (one, or several with ``multiple``); each bad file shows an error, and
    without a readable photo the page stops with a hint."""
    uploads = st.file_uploader("Photos" if multiple else "Photo", type=list(SUPPORTED_EXTENSIONS),
                               accept_multiple_files=multiple, key=key)
    files = (uploads or []) if multiple else ([uploads] if uploads else [])
    photos, errors = session.uploaded_photos(files)
    for message in errors:
        st.error(message)
    if not photos:
        st.info(f"Upload {'one or more photos' if multiple else 'a photo'} (JPEG, PNG, WebP, BMP, TIFF or GIF).")
        st.stop()
    return photos


def uploaded_photo(key: str) -> Photo:
    """One uploaded photo (see :func:`uploaded_photos`)."""
    return uploaded_photos(key)[0]
