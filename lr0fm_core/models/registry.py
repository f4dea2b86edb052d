"""Registry of the paper's benchmark backbones that open_clip can load (LR0.FM Table 1).

The paper benchmarks 66 backbones of 10 foundation-model families (Table 1). This registry
holds every one of them that open_clip ships pretrained weights for, in 7 families:
CLIP (the 4 ViTs and 5 ResNets of Table 10), OpenCLIP (LAION-2B, DataComp-1B and DFN-5B
ViTs; the paper counts 8 without naming them, open_clip offers the 11 listed here),
MetaCLIP (3 on 400M + 5 on 2.5B = Table 1's 8), CLIPA (Table 1's 7), SigLIP (Table 1's 8;
the multilingual, 378px and SigLIP 2 weights are left out), CoCa (both sizes, each with and
without the COCO fine-tune; Table 1 counts 3) and EVA-CLIP (7 of Table 1's 8: EVA-CLIP-18B
is not in open_clip).
The other three families of Table 1, M2-Encoder, ALBEF and BLIP, need their own code
bases (cross-attention text-image fusion) and are not registered.

The data lives in ``registry.csv`` next to this module, one row per backbone. Its numeric
columns are computed by ``tools/build_model_registry.py`` from open_clip itself; the other
columns are curated by hand.
"""
import csv
import difflib
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from importlib.resources import files

import pandas as pd

FAMILIES = ("CLIP", "OpenCLIP", "MetaCLIP", "CLIPA", "SigLIP", "CoCa", "EVA-CLIP")
TEXT_TOWERS = ("causal", "bidirectional")
DEFAULT_MODEL_KEY = "clip-vit-b-32"
RANDOM_INIT = "none"  # the pretrained tag of random-init weights (no download)
UNTRAINED_WARNING = "untrained: predictions are meaningless (random-init weights)"


class UnknownModelError(ValueError):
    """A model key that is not in the registry."""


class UnknownFamilyError(ValueError):
    """A model family that is not one of ``FAMILIES``."""


@dataclass(frozen=True)
class ModelSpec:
    """One registered backbone: an open_clip (model name, pretrained tag) pair and its facts.

    ``pretraining_size`` is the number of image-text pairs in millions, as Table 1 states it
    (400 for WIT-400M, 2000 for LAION-2B, 10000 for WebLI). ``params_m`` counts every
    parameter of the open_clip model (image + text towers, and CoCa's multimodal decoder),
    ``image_params_m`` those of the image tower, both in millions. ``resolution`` is the
    native (square) input size in pixels. ``text_tower`` is ``causal`` or ``bidirectional``.
    """

    key: str
    display_name: str
    family: str
    architecture: str
    open_clip_name: str
    pretrained_tag: str
    pretraining_data: str
    pretraining_size: int
    params_m: float
    image_params_m: float
    resolution: int
    text_tower: str
    notes: str

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"model {self.key!r}: family {self.family!r} is not one of {FAMILIES}")
        if self.text_tower not in TEXT_TOWERS:
            raise ValueError(f"model {self.key!r}: text_tower {self.text_tower!r} is not one of {TEXT_TOWERS}")

    @property
    def label(self) -> str:
        """One line for UI pickers, e.g. ``CLIP ViT-B/32 · WIT-400M · 151M · 224px``."""
        size = f"{self.params_m:.0f}M" if self.params_m < 1000 else f"{self.params_m / 1000:.1f}B"
        return f"{self.display_name} · {self.pretraining_data} · {size} · {self.resolution}px"


@lru_cache(maxsize=1)
def _registry() -> dict[str, ModelSpec]:
    """All registered specs by key, read once from ``registry.csv``."""
    field_types = {f.name: f.type for f in fields(ModelSpec)}
    with files(__package__).joinpath("registry.csv").open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if set(reader.fieldnames) != set(field_types):
            raise ValueError(f"registry.csv columns {reader.fieldnames} do not match ModelSpec fields "
                             f"{list(field_types)}")
        specs = [ModelSpec(**{name: field_types[name](value) for name, value in row.items()}) for row in reader]
    by_key = {spec.key: spec for spec in specs}
    if len(by_key) != len(specs):
        raise ValueError("registry.csv has duplicate keys")
    return by_key


def list_models(family: str | None = None) -> list[ModelSpec]:
    """Registered backbones in registry order, optionally only those of one family (any case)."""
    specs = list(_registry().values())
    if family is None:
        return specs
    matches = [name for name in FAMILIES if name.lower() == family.lower()]
    if not matches:
        raise UnknownFamilyError(f"unknown model family {family!r}; choose one of {', '.join(FAMILIES)}")
    return [spec for spec in specs if spec.family == matches[0]]


def get_model_spec(key_or_name: str, pretrained: str | None = None) -> ModelSpec | None:
    """Spec by registry key (case-insensitive), or by open_clip (model name, ``pretrained`` tag).

    A key that is not registered raises ``UnknownModelError`` with the closest keys; an
    open_clip pair that is not registered returns ``None`` (open_clip may still load it).
    """
    registry = _registry()
    if pretrained is not None:
        return next((spec for spec in registry.values()
                     if (spec.open_clip_name, spec.pretrained_tag) == (key_or_name, pretrained)), None)
    key = key_or_name.strip().lower()
    if key in registry:
        return registry[key]
    hint = [spec.key for spec in registry.values() if spec.open_clip_name == key_or_name]
    if hint:
        message = (f"{key_or_name!r} is an open_clip model name, not a registry key: pass its "
                   f"pretrained tag, or use one of the keys {', '.join(hint)}")
    else:
        close = difflib.get_close_matches(key, registry, n=3, cutoff=0.6)
        suggestion = f"; did you mean {' or '.join(repr(k) for k in close)}?" if close else ""
        message = f"unknown model key {key_or_name!r}{suggestion} (see `lr0fm models` for all keys)"
    raise UnknownModelError(message)


def models_table() -> pd.DataFrame:
    """All registered backbones as a DataFrame, one row per spec, columns = fields + ``label``."""
    return pd.DataFrame([{**asdict(spec), "label": spec.label} for spec in list_models()])
