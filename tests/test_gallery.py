"""The bundled sample photos (lr0fm_core.gallery): every photo loads, true labels agree with the label spaces."""

from __future__ import annotations

from pathlib import Path

import pytest

from lr0fm_core import gallery
from lr0fm_core.zeroshot.labels import get_label_set

FOLDER = Path(gallery.__file__).with_name(gallery.GALLERY_FOLDER)
PAPERWORK = {"labels.csv", "ATTRIBUTION.md", "LICENSE.foolbox"}


def test_every_file_in_the_folder_is_a_listed_photo_or_its_paperwork():
    listed = {photo.file for photo in gallery.gallery_photos()}
    assert {p.name for p in FOLDER.iterdir()} == listed | PAPERWORK


def test_the_gallery_stays_small():
    assert sum(p.stat().st_size for p in FOLDER.iterdir()) < 3 * 2**20


@pytest.mark.parametrize("photo", gallery.gallery_photos(), ids=lambda p: p.file)
def test_every_photo_loads_as_rgb(photo):
    image = photo.read_image()
    assert image.mode == "RGB" and min(image.size) >= 32


def test_imagenet_labels_are_the_clip_class_names_at_their_index():
    imagenet = get_label_set("imagenet").classnames
    photos = [p for p in gallery.gallery_photos() if p.label_space == "imagenet"]
    assert len(photos) >= 10
    for photo in photos:
        assert imagenet[photo.label_index] == photo.label_name


def test_cifar10_labels_are_cifar10_classes_at_their_index():
    photos = [p for p in gallery.gallery_photos() if p.label_space == "cifar10"]
    assert len(photos) >= 5
    for photo in photos:
        assert gallery.CIFAR10_CLASSES[photo.label_index] == photo.label_name
        assert photo.read_image().size == (32, 32)


def test_every_photo_has_a_source_and_licence_and_unlabelled_ones_are_credited():
    attribution = (FOLDER / "ATTRIBUTION.md").read_text(encoding="utf-8")
    for photo in gallery.gallery_photos():
        assert photo.source and photo.license
        if photo.label_name is None:
            assert photo.file in attribution
    assert "MIT License" in (FOLDER / "LICENSE.foolbox").read_text(encoding="utf-8")


def test_get_photo_names_the_unknown_file():
    assert gallery.get_photo("imagenet_bald_eagle.jpg").label_name == "bald eagle"
    with pytest.raises(gallery.UnknownPhotoError, match="no gallery photo 'eagle.jpg'"):
        gallery.get_photo("eagle.jpg")
