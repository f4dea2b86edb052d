"""Labeled image sets for the feature t-SNE (Fig. 8): the user's own data, or the bundled sample set.

Users' data is read by :mod:`lr0fm_core.datasets` (the benchmark's loader), named as there:
``imagefolder:PATH`` (one subfolder per class, the subfolder's name is the label) or ``csv:PATH``
(columns ``path,label``; relative paths are relative to the CSV's folder). ``sample`` is
:data:`SAMPLE_SET`, the bundled gallery photos (``lr0fm_core/gallery_photos``) in three coarse
classes (animal, vehicle, other): enough to show the mechanics out of the box.

Only paths are listed here; pixels are read batch by batch when features are extracted.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path

from ..datasets import DatasetError, build_dataset

SAMPLE_SET = Path(__file__).with_name("sample_set.csv")
SAMPLE = "sample"
SOURCES = ("imagefolder", "csv")


@dataclass(frozen=True)
class LabeledImageSet:
    """Image paths with their class labels."""

    name: str
    paths: tuple[Path, ...]
    labels: tuple[str, ...]

    def __post_init__(self):
        if len(self.paths) != len(self.labels):
            raise DatasetError(f"{self.name}: {len(self.paths)} paths but {len(self.labels)} labels")
        if not self.paths:
            raise DatasetError(f"{self.name}: no images")

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def class_counts(self) -> dict[str, int]:
        """Images per class, in order of first appearance."""
        return dict(Counter(self.labels))

    def fingerprint(self) -> str:
        """Changes when a file, its size or modification time, or a label changes (for caches)."""
        digest = hashlib.blake2b(digest_size=16)
        for path, label in zip(self.paths, self.labels):
            stat = path.stat() if path.exists() else None
            digest.update(f"{path}|{stat and stat.st_size}|{stat and stat.st_mtime_ns}|{label}\n".encode())
        return digest.hexdigest()

    def balanced_subset(self, count: int) -> "LabeledImageSet":
        """At most ``count`` images, taken class by class in turn so every class is represented."""
        if count < 1:
            raise DatasetError(f"a subset needs at least one image, got {count}")
        if count >= len(self):
            return self
        by_class: dict[str, list[int]] = {}
        for index, label in enumerate(self.labels):
            by_class.setdefault(label, []).append(index)
        chosen = sorted([i for turn in zip_longest(*by_class.values()) for i in turn if i is not None][:count])
        return LabeledImageSet(f"{self.name} ({count} of {len(self)})", tuple(self.paths[i] for i in chosen),
                               tuple(self.labels[i] for i in chosen))


def open_image_set(spec: str | os.PathLike) -> LabeledImageSet:
    """``sample``, ``imagefolder:PATH`` or ``csv:PATH`` as a labeled image set."""
    spec = str(spec).strip()
    if spec == SAMPLE:
        return LabeledImageSet("sample photos", *_paths_and_labels(f"csv:{SAMPLE_SET}"))
    kind, separator, path = spec.partition(":")
    if not separator or kind not in SOURCES or not path.strip():
        raise DatasetError(f"image set {spec!r}: expected '{SAMPLE}', imagefolder:PATH or csv:PATH")
    return LabeledImageSet(Path(path).name, *_paths_and_labels(spec))


def sample_image_set() -> LabeledImageSet:
    """The bundled gallery photos in three coarse classes (animal, vehicle, other)."""
    return open_image_set(SAMPLE)


def _paths_and_labels(spec: str) -> tuple[tuple[Path, ...], tuple[str, ...]]:
    images = build_dataset(spec)
    classnames = images.label_set.classnames
    return tuple(Path(p).resolve() for p in images.paths), tuple(classnames[t] for t in images.targets)
