"""Bundled sample photos for trying the tool without photos of your own (credits: gallery_photos/ATTRIBUTION.md).

``gallery_photos/labels.csv`` is the registry: one row per photo with its title, its true label
where known (an ImageNet or CIFAR-10 class, as ``label_space``/``label_index``/``label_name``),
its source and its licence.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from importlib import resources

from PIL import Image

from .io import load_image

GALLERY_FOLDER = "gallery_photos"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
"""The label space of the CIFAR-10 samples (CIFAR-10's 10 classes in index order)."""


class UnknownPhotoError(ValueError):
    """A gallery file name that is not in the gallery."""


@dataclass(frozen=True)
class GalleryPhoto:
    """One bundled photo; ``label_name`` is its true class name, None when unknown."""

    file: str
    title: str
    label_space: str | None
    label_index: int | None
    label_name: str | None
    source: str
    license: str

    @property
    def caption(self) -> str:
        """One line for pickers, e.g. ``bald eagle · ImageNet``."""
        space = {"imagenet": "ImageNet", "cifar10": "CIFAR-10 (32 px)"}.get(self.label_space or "", "scikit-image")
        return f"{self.title} · {space}"

    def read_image(self) -> Image.Image:
        """The photo as an RGB image, through the same loader as user uploads."""
        return load_image(_folder().joinpath(self.file).read_bytes())


def _folder():
    return resources.files(__package__).joinpath(GALLERY_FOLDER)


@functools.cache
def gallery_photos() -> tuple[GalleryPhoto, ...]:
    """All bundled photos in ``labels.csv`` order."""
    with _folder().joinpath("labels.csv").open(newline="", encoding="utf-8") as f:
        return tuple(
            GalleryPhoto(
                file=row["file"], title=row["title"], label_space=row["label_space"] or None,
                label_index=int(row["label_index"]) if row["label_index"] else None,
                label_name=row["label_name"] or None, source=row["source"], license=row["license"],
            )
            for row in csv.DictReader(f)
        )


def get_photo(file: str) -> GalleryPhoto:
    """The gallery photo stored as ``file``."""
    for photo in gallery_photos():
        if photo.file == file:
            return photo
    raise UnknownPhotoError(f"no gallery photo {file!r}; the gallery has {', '.join(p.file for p in gallery_photos())}")
