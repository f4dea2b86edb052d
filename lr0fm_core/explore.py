"""The resolution explorer's logic: one photo, zero-shot predictions at every resolution (paper Figs. 1-2).

A slider stop ``n`` is the paper's low-resolution pipeline (Appendix E, Listing 1): the photo's
shorter side is resized to ``n`` pixels (bicubic), then back up to the model's resolution and
centre-cropped. :func:`sweep` runs every stop through the model in one batched forward and keeps
the full class probabilities, so the app can show any stop, the top-5 labels, and how the
high-resolution top-1 label fares as the resolution drops (Fig. 2: correct at HR, wrong below).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import PurePath
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from PIL import Image

from .io import ImageLoadError, load_image
from .models.loading import LoadedModel
from .pipeline import PAPER, PAPER_RESOLUTIONS, Degradation, low_resolution_image
from .predict import class_probabilities, encode_resolutions, image_digest
from .resolution import HR, Resolution, parse_resolution
from .zeroshot.head import ZeroShotHead
from .zeroshot.labels import LabelSet, custom_label_set, get_label_set

MIN_STOP = 8
STOP_BASES = (8, 12)  # stops are 8 * 2^k and 12 * 2^k: half-octave steps that contain 16, 32, 64, 128
PAPER_MARK = "★"
CUSTOM_LABELS = "custom"
DEFAULT_TOPK = 5


def slider_stops(model_resolution: int) -> list[Resolution]:
    """Resolutions for the slider: half-octave steps from 8 px, the model's resolution, then HR.

    For a 224 px model: 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 224, "hr". The paper's
    resolutions (16, 32, 64, 128; Sec. 4) are all stops when the model is at least that large.
    """
    if isinstance(model_resolution, bool) or not isinstance(model_resolution, int) or model_resolution < MIN_STOP:
        raise ValueError(f"model resolution must be an integer of at least {MIN_STOP} px, got {model_resolution!r}")
    stops = {model_resolution}
    for base in STOP_BASES:
        size = base
        while size <= model_resolution:
            stops.add(size)
            size *= 2
    return [*sorted(stops), HR]


def stop_label(resolution: Resolution) -> str:
    """Slider text for a stop: ``"HR"``, ``"16 ★"`` for the paper's resolutions, else the number."""
    resolution = parse_resolution(resolution)
    if resolution == HR:
        return "HR"
    return f"{resolution} {PAPER_MARK}" if resolution in PAPER_RESOLUTIONS else str(resolution)


def _top_k(rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(class indices, probabilities rounded to 6 places) of each row's ``k`` most probable classes."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    order = np.argsort(-rows, axis=-1, kind="stable")[..., :k]
    return order, np.take_along_axis(rows, order, axis=-1).round(6)


@dataclass(frozen=True, eq=False)
class ResolutionSweep:
    """Class probabilities of one photo at several resolutions; HR must be one of them.

    ``probs[i, c]`` is the zero-shot probability of class ``c`` at ``resolutions[i]``.
    """

    resolutions: tuple[Resolution, ...]
    probs: np.ndarray
    classnames: tuple[str, ...]

    def __post_init__(self):
        resolutions = tuple(parse_resolution(r) for r in self.resolutions)
        probs = np.array(self.probs, dtype=np.float64)
        if probs.shape != (len(resolutions), len(self.classnames)):
            raise ValueError(f"probabilities have shape {probs.shape}, expected (resolutions, classes) = "
                             f"({len(resolutions)}, {len(self.classnames)})")
        if len(set(resolutions)) != len(resolutions):
            raise ValueError(f"resolutions repeat: {list(resolutions)}")
        if HR not in resolutions:
            raise ValueError(f"a sweep needs the HR row to compare against, got {list(resolutions)}")
        probs.flags.writeable = False
        object.__setattr__(self, "resolutions", resolutions)
        object.__setattr__(self, "probs", probs)
        object.__setattr__(self, "classnames", tuple(self.classnames))

    def _row(self, resolution: Resolution) -> np.ndarray:
        resolution = parse_resolution(resolution)
        if resolution not in self.resolutions:
            swept = ", ".join(map(str, self.resolutions))
            raise ValueError(f"resolution {resolution!r} is not in this sweep ({swept})")
        return self.probs[self.resolutions.index(resolution)]

    def top1(self, resolution: Resolution) -> int:
        """Index of the most probable class at ``resolution``."""
        return int(np.argmax(self._row(resolution)))

    def topk(self, resolution: Resolution, k: int = DEFAULT_TOPK) -> pd.DataFrame:
        """The ``k`` most probable labels at ``resolution``: columns rank (1 = top), label, prob."""
        order, probs = _top_k(self._row(resolution), k)
        return pd.DataFrame({"rank": np.arange(1, len(order) + 1), "label": [self.classnames[i] for i in order],
                             "prob": probs})

    def label_trace(self, class_index: int) -> pd.DataFrame:
        """Probability and rank (1 + number of classes more probable) of one class at every resolution."""
        if not 0 <= class_index < len(self.classnames):
            raise ValueError(f"class index {class_index} is outside 0..{len(self.classnames) - 1}")
        probs = self.probs[:, class_index]
        ranks = 1 + (self.probs > probs[:, None]).sum(axis=1)
        return pd.DataFrame({"resolution": pd.Series(self.resolutions, dtype=object), "prob": probs.round(6),
                             "rank": ranks})

    def hr_label_trace(self) -> pd.DataFrame:
        """:meth:`label_trace` of the HR top-1 label."""
        return self.label_trace(self.top1(HR))

    def first_change(self) -> Resolution | None:
        """Going down from HR, the first resolution whose top-1 label is not HR's; None if it never changes."""
        hr_top1 = self.top1(HR)
        lower = sorted((r for r in self.resolutions if r != HR), reverse=True)
        return next((r for r in lower if self.top1(r) != hr_top1), None)

    def to_frame(self, k: int = DEFAULT_TOPK) -> pd.DataFrame:
        """Top-``k`` of every resolution as one long table: resolution, rank, label, prob."""
        order, probs = _top_k(self.probs, k)
        per_row = order.shape[1]
        return pd.DataFrame({
            "resolution": pd.Series(np.repeat(np.array(self.resolutions, dtype=object), per_row), dtype=object),
            "rank": np.tile(np.arange(1, per_row + 1), len(self.resolutions)),
            "label": [self.classnames[i] for i in order.ravel()],
            "prob": probs.ravel(),
        })

    def to_csv(self, k: int = DEFAULT_TOPK, warning: str | None = None) -> str:
        """:meth:`to_frame` as CSV text; a ``warning`` (e.g. untrained weights) becomes a column."""
        table = self.to_frame(k)
        return (table if warning is None else table.assign(warning=warning)).to_csv(index=False)

    def to_json(self, k: int = DEFAULT_TOPK, warning: str | None = None) -> str:
        """``[{resolution, topk: [{label, prob}]}]`` (plus ``warning``), the records of ``lr0fm predict --json``."""
        order, probs = _top_k(self.probs, k)
        records = [{"resolution": resolution,
                    "topk": [{"label": self.classnames[i], "prob": float(p)} for i, p in zip(indices, values)]}
                   | ({"warning": warning} if warning is not None else {})
                   for resolution, indices, values in zip(self.resolutions, order, probs)]
        return json.dumps(records, indent=2)


def sweep(loaded: LoadedModel, head: ZeroShotHead, image: Image.Image, resolutions: Sequence[Resolution],
          degradation: Degradation = PAPER) -> ResolutionSweep:
    """Class probabilities of ``image`` at every resolution, from one batched forward."""
    probs = class_probabilities(loaded, head, encode_resolutions(loaded, image, resolutions, degradation))
    return ResolutionSweep(tuple(resolutions), probs.cpu().numpy(), head.classnames)


def enlarge_nearest(image: Image.Image, size: int) -> Image.Image:
    """Enlarge by the largest whole factor that keeps the longer side within ``size`` (at least 1x).

    Nearest-neighbour with a whole factor turns every pixel into an identical square block, so
    a 16 px image shows its 16 px instead of a smooth blur.
    """
    factor = max(1, size // max(image.size))
    return image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)


def camera_preview(image: Image.Image, resolution: Resolution, size: int,
                   degradation: Degradation = PAPER) -> Image.Image:
    """What an n-pixel camera delivers (shorter side n), enlarged with :func:`enlarge_nearest` to show
    its pixels; at HR the photo itself, shrunk to fit ``size`` when larger."""
    resolution = parse_resolution(resolution)
    if resolution != HR:
        return enlarge_nearest(low_resolution_image(image, resolution, degradation).convert("RGB"), size)
    preview = image.copy()
    preview.thumbnail((size, size), Image.Resampling.LANCZOS)
    return preview


@dataclass(frozen=True, eq=False)
class Photo:
    """A loaded photo with its pixel digest (for caches) and its true label when known."""

    name: str
    image: Image.Image
    digest: str
    true_label: str | None = None

    @classmethod
    def of(cls, name: str, image: Image.Image, true_label: str | None = None) -> "Photo":
        return cls(name, image, image_digest(image), true_label)


def load_uploads(files: Iterable) -> tuple[list[Photo], list[str]]:
    """Photos from uploaded file objects (each with a ``.name``), and one error message per unreadable file."""
    photos, errors = [], []
    for file in files:
        if callable(getattr(file, "seek", None)):
            file.seek(0)
        try:
            photos.append(Photo.of(file.name, load_image(file)))
        except ImageLoadError as exc:
            errors.append(str(exc))
    return photos, errors


def label_set_for(choice: str, custom_text: str = "") -> LabelSet:
    """A benchmark dataset's label set, or for ``choice == "custom"`` the user's list with the default templates."""
    if choice == CUSTOM_LABELS:
        return custom_label_set(custom_text, name=CUSTOM_LABELS)
    return get_label_set(choice)


def true_label_index(photo: Photo, classnames: Sequence[str]) -> int | None:
    """Index of the photo's true label among ``classnames`` (first match), None when absent or unknown."""
    if photo.true_label is None or photo.true_label not in classnames:
        return None
    return list(classnames).index(photo.true_label)


def export_name(photo_name: str, model_name: str, suffix: str) -> str:
    """A download file name such as ``lr0fm_bald_eagle_ViT-B-32.csv``."""
    parts = ("lr0fm", PurePath(photo_name).stem, model_name)
    parts = (re.sub(r"[^0-9A-Za-z.-]+", "_", part).strip("_.") for part in parts)
    return "_".join(part for part in parts if part) + f".{suffix}"
