"""Labeled image collections for the benchmark: item ``i`` is ``(RGB PIL image, target)``.

``target`` indexes the classes of the collection's :class:`~lr0fm_core.zeroshot.labels.LabelSet`.
Collections know nothing of resolutions or models; :mod:`lr0fm_core.bench.runner` turns
them into the paper's views.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from PIL import Image
from torch.utils.data import Dataset

from ..io import SUPPORTED_EXTENSIONS, load_image
from ..zeroshot.labels import LabelSet

IMAGE_SUFFIXES = frozenset(f".{ext}" for ext in SUPPORTED_EXTENSIONS)


class LabeledImages(Dataset):
    """A benchmark dataset: ``name`` (as stored in results), its label set, where it was found."""

    def __init__(self, name: str, label_set: LabelSet, location: Path):
        self.name, self.label_set, self.location = name, label_set, Path(location)

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {len(self)} images, {len(self.label_set.classnames)} classes, {self.location})"


class FileImages(LabeledImages):
    """Images read from files (or videos) one by one with ``read`` (default: :func:`lr0fm_core.io.load_image`)."""

    def __init__(self, name: str, label_set: LabelSet, location: Path, paths: Sequence[Path],
                 targets: Sequence[int], read: Callable[[Path], Image.Image] = load_image):
        super().__init__(name, label_set, location)
        if len(paths) != len(targets):
            raise ValueError(f"{len(paths)} paths but {len(targets)} targets")
        self.paths, self.targets, self.read = list(paths), list(targets), read

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        return self.read(self.paths[index]), self.targets[index]


def image_files(folder: Path) -> list[Path]:
    """Image files under ``folder`` by suffix (recursively, hidden entries skipped), in sorted order."""
    found = []
    for directory, subdirectories, filenames in os.walk(folder, followlinks=True):
        subdirectories[:] = sorted(d for d in subdirectories if not d.startswith("."))
        found.extend(Path(directory, f) for f in sorted(filenames)
                     if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_SUFFIXES)
    return found


def class_folders(folder: Path) -> list[Path]:
    """The sub-folders of ``folder`` (hidden ones skipped), sorted by name."""
    return sorted((p for p in Path(folder).iterdir() if p.is_dir() and not p.name.startswith(".")),
                  key=lambda p: p.name)
