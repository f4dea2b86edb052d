"""Class names and prompt templates for zero-shot classification (LR0.FM, Tables 7-8).

Each of the paper's 15 benchmark datasets ships as ``data/<id>.json``: CLIP's class names and the
dataset's prompt templates, where ``{c}`` marks the class name (as in CLIP_benchmark). A class's text
embedding is the mean over its prompts (Appendix A). ``data/datasets.json`` holds Table 7 (year, test
size, number of classes, focus) and the alias registry. User label lists (text or JSON files) become a
:class:`LabelSet` too; :func:`resolve_label_set` is what ``--labels imagenet|DATASET|FILE`` calls.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Iterable, Sequence

__all__ = [
    "DATASET_IDS",
    "MIN_LABELS",
    "PLACEHOLDER",
    "DatasetInfo",
    "LabelSet",
    "LabelSetError",
    "canonical_dataset_id",
    "class_wnids",
    "custom_label_set",
    "dataset_info",
    "default_templates",
    "get_label_set",
    "load_label_file",
    "parse_label_list",
    "resolve_label_set",
    "subset_indices",
]

PLACEHOLDER = "{c}"
MIN_LABELS = 2
DEFAULT_TEMPLATES_FROM = "imagenet"


class LabelSetError(ValueError):
    """A dataset name, label list, template or label file that cannot be used for zero-shot classification."""


def _check_template(template: object) -> None:
    if not isinstance(template, str):
        raise LabelSetError(f"prompt template {template!r} is not a string")
    found = template.count(PLACEHOLDER)
    if found != 1:
        hint = " (CLIP-style '{}' templates: write '{c}' instead)" if found == 0 and "{}" in template else ""
        raise LabelSetError(
            f"prompt template {template!r} must contain the class placeholder {PLACEHOLDER!r} exactly once, "
            f"found it {found} times{hint}"
        )


@dataclass(frozen=True)
class LabelSet:
    """Class names plus the prompt templates whose text embeddings are averaged per class (Table 8).

    Class names need not be unique: CLIP's ImageNet names, kept verbatim, repeat 'missile' and 'sunglasses'.
    """

    name: str
    classnames: tuple[str, ...]
    templates: tuple[str, ...]

    def __post_init__(self) -> None:
        for field in ("classnames", "templates"):
            if isinstance(getattr(self, field), str):
                raise LabelSetError(f"label set {self.name!r}: {field} must be a sequence of strings, not one string")
        object.__setattr__(self, "classnames", tuple(self.classnames))
        object.__setattr__(self, "templates", tuple(self.templates))
        if not self.classnames:
            raise LabelSetError(f"label set {self.name!r} has no class names")
        for index, classname in enumerate(self.classnames):
            if not isinstance(classname, str) or not classname.strip():
                raise LabelSetError(
                    f"label set {self.name!r}: class name #{index} ({classname!r}) is empty or not a string"
                )
        if not self.templates:
            raise LabelSetError(f"label set {self.name!r} has no prompt templates")
        for template in self.templates:
            _check_template(template)

    def prompts(self, classname: str) -> list[str]:
        """The prompts for one class: every template with ``{c}`` replaced by ``classname``."""
        return [template.replace(PLACEHOLDER, classname) for template in self.templates]

    def fingerprint(self) -> str:
        """sha256 hex digest of the class names and templates (not the name): a key for on-disk embedding caches."""
        payload = json.dumps([list(self.classnames), list(self.templates)], ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class DatasetInfo:
    """One row of the paper's Table 7, with the dataset's display and short names (Sec. 4)."""

    id: str
    name: str
    short_name: str
    year: int
    test_size: int
    num_classes: int
    focus: tuple[str, ...]


def _read_json(filename: str) -> object:
    return json.loads(resources.files(__package__).joinpath("data", filename).read_text(encoding="utf-8"))


def _normalize(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")


@functools.cache
def _registry() -> tuple[dict[str, DatasetInfo], dict[str, str]]:
    """(id -> DatasetInfo, normalized alias -> id) from data/datasets.json."""
    infos: dict[str, DatasetInfo] = {}
    aliases: dict[str, str] = {}
    for row in _read_json("datasets.json")["datasets"]:
        info = DatasetInfo(
            id=row["id"], name=row["name"], short_name=row["short_name"], year=row["year"],
            test_size=row["test_size"], num_classes=row["num_classes"], focus=tuple(row["focus"]),
        )
        infos[info.id] = info
        for alias in (info.id, info.name, info.short_name, *row["aliases"]):
            owner = aliases.setdefault(_normalize(alias), info.id)
            if owner != info.id:
                raise LabelSetError(f"datasets.json: alias {alias!r} names both {owner!r} and {info.id!r}")
    return infos, aliases


DATASET_IDS: tuple[str, ...] = tuple(_registry()[0])


def canonical_dataset_id(name: str) -> str:
    """The canonical id for a dataset id, display name or alias (case, spaces, '-' and '_' do not matter)."""
    dataset_id = _registry()[1].get(_normalize(name)) if isinstance(name, str) else None
    if dataset_id is None:
        raise LabelSetError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASET_IDS)}")
    return dataset_id


def dataset_info(name: str) -> DatasetInfo:
    """Table 7 statistics of a dataset given by id or alias."""
    return _registry()[0][canonical_dataset_id(name)]


@functools.cache
def _dataset_record(dataset_id: str) -> dict:
    """data/<id>.json with its ``<key>_from`` references and subset wnids resolved (internal, do not mutate)."""
    record = _read_json(f"{dataset_id}.json")
    for key in ("classnames", "templates", "wnids"):
        source_id = record.get(f"{key}_from")
        if source_id is not None:
            record[key] = _dataset_record(source_id)[key]
    if "subset_of" in record and "wnids" not in record:
        parent_wnids = _dataset_record(record["subset_of"])["wnids"]
        record["wnids"] = [parent_wnids[index] for index in record["subset_indices"]]
    return record


@functools.cache
def _dataset_label_set(dataset_id: str) -> LabelSet:
    record = _dataset_record(dataset_id)
    return LabelSet(dataset_id, record["classnames"], record["templates"])


def get_label_set(name: str) -> LabelSet:
    """The paper's label set (CLIP class names and Table 8 templates) for a dataset id or alias; cached."""
    return _dataset_label_set(canonical_dataset_id(name))


def class_wnids(name: str) -> tuple[str, ...]:
    """WordNet ids of the classes in class order, for ImageNet and its four variants."""
    dataset_id = canonical_dataset_id(name)
    wnids = _dataset_record(dataset_id).get("wnids")
    if wnids is None:
        with_wnids = [d for d in DATASET_IDS if "wnids" in _dataset_record(d)]
        raise LabelSetError(f"dataset {dataset_id!r} has no WordNet ids; only {', '.join(with_wnids)} do")
    return tuple(wnids)


def subset_indices(name: str) -> tuple[int, ...] | None:
    """Indices of the classes among ImageNet's 1000 for ImageNet-A/-R (200 each); None for other datasets."""
    indices = _dataset_record(canonical_dataset_id(name)).get("subset_indices")
    return None if indices is None else tuple(indices)


def default_templates() -> tuple[str, ...]:
    """Templates for user label lists: CLIP's 80 ImageNet templates, which the paper uses for generic objects."""
    return get_label_set(DEFAULT_TEMPLATES_FROM).templates


def _clean_label(text: str) -> str:
    return " ".join(text.split())


def parse_label_list(text: str) -> list[str]:
    """Class labels from text: one per line, or comma separated when there is a single line.

    Everything after '#' on a line is a comment; whitespace runs collapse to one space; blanks and
    repeated labels are dropped (first occurrence kept). Fewer than two labels is an error.
    """
    if not isinstance(text, str):
        raise LabelSetError(f"label list must be text, got {type(text).__name__}")
    lines = [_clean_label(line.split("#", 1)[0]) for line in text.splitlines()]
    lines = [line for line in lines if line]
    items = [_clean_label(part) for part in lines[0].split(",")] if len(lines) == 1 else lines
    labels = list(dict.fromkeys(item for item in items if item))
    if len(labels) < MIN_LABELS:
        raise LabelSetError(
            f"zero-shot classification needs at least {MIN_LABELS} distinct class labels, got {len(labels)}: {labels}"
        )
    return labels


def custom_label_set(
    labels: Iterable[str] | str, templates: Sequence[str] | None = None, name: str = "custom"
) -> LabelSet:
    """A label set from user labels (a sequence, or text for :func:`parse_label_list`).

    ``templates`` default to :func:`default_templates` (CLIP's 80 ImageNet templates); pass e.g.
    ``["a photo of a {c}."]`` for a single prompt. Empty or repeated labels are errors here.
    """
    if isinstance(labels, str):
        labels = parse_label_list(labels)
    try:
        items = list(labels)
    except TypeError:
        raise LabelSetError(f"labels must be a list of strings or text, got {type(labels).__name__}") from None
    cleaned = []
    for index, label in enumerate(items):
        if not isinstance(label, str) or not label.strip():
            raise LabelSetError(f"label #{index} ({label!r}) is empty or not a string")
        cleaned.append(_clean_label(label))
    repeated = [label for label, count in Counter(cleaned).items() if count > 1]
    if repeated:
        raise LabelSetError(f"repeated class labels: {repeated}")
    if len(cleaned) < MIN_LABELS:
        raise LabelSetError(f"zero-shot classification needs at least {MIN_LABELS} class labels, got {cleaned}")
    if templates is None:
        templates = default_templates()
    elif isinstance(templates, str):
        templates = [templates]
    return LabelSet(name, tuple(cleaned), tuple(templates))


def _labels_from_json(text: str) -> tuple[list, Sequence[str] | None]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise LabelSetError(f"invalid JSON at line {err.lineno} column {err.colno}: {err.msg}") from None
    if isinstance(data, list):
        return data, None
    if isinstance(data, dict) and isinstance(data.get("classnames"), list):
        templates = data.get("templates")
        if templates is not None and not isinstance(templates, list):
            raise LabelSetError(f"'templates' must be a list of strings, got {type(templates).__name__}")
        return data["classnames"], templates
    raise LabelSetError("expected a JSON list of class names or an object with a 'classnames' list")


def load_label_file(path: str | os.PathLike, templates: Sequence[str] | None = None) -> LabelSet:
    """A label set from a file: ``.json`` (a list of names, or {"classnames": [...], "templates": [...]})
    or any other suffix as text for :func:`parse_label_list`. Templates in the file win over ``templates``.
    The label set is named after the file stem.
    """
    path = Path(path)
    if not path.is_file():
        raise LabelSetError(f"label file {str(path)!r} does not exist or is not a file")
    try:
        text = path.read_text(encoding="utf-8-sig")
        if path.suffix.lower() == ".json":
            labels, file_templates = _labels_from_json(text)
            return custom_label_set(labels, file_templates if file_templates is not None else templates, path.stem)
        return custom_label_set(parse_label_list(text), templates, path.stem)
    except UnicodeDecodeError as err:
        raise LabelSetError(f"label file {str(path)!r} is not UTF-8 text ({err.reason} at byte {err.start})") from None
    except LabelSetError as err:
        raise LabelSetError(f"label file {str(path)!r}: {err}") from None


def resolve_label_set(spec: str | os.PathLike) -> LabelSet:
    """A dataset id/alias or a label file. A string with a path separator is always a path; otherwise a
    dataset name wins over a same-named file in the working directory (write './name' for the file).
    """
    if not isinstance(spec, (str, os.PathLike)):
        raise LabelSetError(f"label spec must be a dataset name or a file path, got {type(spec).__name__}")
    if isinstance(spec, str) and not any(sep and sep in spec for sep in (os.sep, os.altsep, "/")):
        dataset_id = _registry()[1].get(_normalize(spec))
        if dataset_id is not None:
            return _dataset_label_set(dataset_id)
    if Path(spec).is_file():
        return load_label_file(spec)
    raise LabelSetError(
        f"{str(spec)!r} is neither a known dataset ({', '.join(DATASET_IDS)}) nor an existing label file"
    )
