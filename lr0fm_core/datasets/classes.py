"""Matching a dataset's own class names (folders, meta files) to the engine's label sets.

A dataset on disk names its classes its own way (``apple_pie``, ``AnnualCrop``,
``ApplyEyeMakeup``); the label sets of :mod:`lr0fm_core.zeroshot.labels` hold CLIP's names
(``apple pie``, ``annual crop land``, ``Apply Eye Makeup``). Classes are matched by name,
never by position: names are compared in a compact form (lower case, letters and digits
only), and a dataset's alias table covers the names CLIP rewrote.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence

from ..zeroshot.labels import LabelSet


class DatasetError(ValueError):
    """A benchmark dataset that is missing, incomplete or malformed; the message says where."""


def compact_name(name: str) -> str:
    """``"Apply_Eye-Makeup "`` -> ``"applyeyemakeup"``: the form in which class names are compared."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


def class_index_map(native_names: Sequence[str], label_set: LabelSet, aliases: Mapping[str, str] | None = None,
                    where: str = "the dataset") -> list[int]:
    """The label-set index of every native class name, in the order of ``native_names``.

    ``aliases`` maps a native name to the label set's name where the two differ by more than
    case and punctuation (matched in compact form). Raises :class:`DatasetError` naming the
    native classes that match no class of the label set, or that match the same one.
    """
    aliases = {compact_name(k): v for k, v in (aliases or {}).items()}
    by_name: dict[str, list[int]] = {}
    for index, classname in enumerate(label_set.classnames):
        by_name.setdefault(compact_name(classname), []).append(index)
    indices, unknown, ambiguous = [], [], []
    for native in native_names:
        key = compact_name(native)
        matches = by_name.get(compact_name(aliases.get(key, native)), [])
        if len(matches) == 1:
            indices.append(matches[0])
        else:
            (unknown if not matches else ambiguous).append(native)
    if unknown or ambiguous:
        parts = []
        if unknown:
            parts.append(f"{len(unknown)} class(es) match no class of the label set {label_set.name!r}: "
                         f"{preview_names(unknown)}")
        if ambiguous:
            parts.append(f"class(es) {preview_names(ambiguous)} match several classes of {label_set.name!r}")
        raise DatasetError(f"{where}: " + "; ".join(parts))
    counts = Counter(indices)
    repeated = sorted(native for native, index in zip(native_names, indices) if counts[index] > 1)
    if repeated:
        raise DatasetError(f"{where}: classes {preview_names(repeated)} name the same class of {label_set.name!r}")
    return indices


def preview_names(names: Sequence[str], limit: int = 8) -> str:
    """The first ``limit`` names, quoted, and how many more there are (for error messages)."""
    shown = ", ".join(repr(n) for n in list(names)[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
