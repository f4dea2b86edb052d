"""Regenerate the derived columns of ``lr0fm_core/models/registry.csv`` from open_clip.

The hand-curated columns (key, names, family, pre-training data, notes) are kept as
they are; these columns are recomputed for every row:

* ``params_m`` / ``image_params_m``: parameters of the whole model / of ``model.visual``,
  in millions, counted on a weightless instantiation on the ``meta`` device (no memory
  is allocated, so even EVA02-E/14+ with 5B parameters is counted in well under a second);
* ``resolution``: the ``image_size`` of the open_clip model config;
* ``text_tower``: ``causal`` unless the text config disables the causal mask
  (``no_causal_mask``, e.g. SigLIP, CLIPA) or uses a Hugging Face encoder (``hf_model_name``).

Each row is also checked: its (open_clip_name, pretrained_tag) pair must be in
``open_clip.list_pretrained()`` and the config's QuickGELU flag must match the weights'.

Usage (from the repository root)::

    python tools/build_model_registry.py           # rewrite the CSV in place
    python tools/build_model_registry.py --check   # exit 1 if the CSV is out of date
"""
import argparse
import csv
import logging
import sys
from pathlib import Path

import open_clip
import torch

REGISTRY_CSV = Path(__file__).resolve().parents[1] / "lr0fm_core" / "models" / "registry.csv"


class RegistryRowError(ValueError):
    """A registry row names something open_clip cannot load as written."""


def text_tower_kind(text_cfg: dict) -> str:
    """``bidirectional`` when the text config drops the causal mask or is a HF encoder, else ``causal``."""
    if text_cfg.get("hf_model_name") or text_cfg.get("no_causal_mask", False):
        return "bidirectional"
    return "causal"


def count_parameters_on_meta(open_clip_name: str) -> tuple[int, int]:
    """(total, image tower) parameter counts of ``open_clip_name``, built without weights on ``meta``."""
    with torch.device("meta"):
        model = open_clip.create_model(open_clip_name, pretrained=None, device="meta")
    tensors = [*model.parameters(), *model.buffers()]
    if not all(t.is_meta for t in tensors):
        raise RuntimeError(f"{open_clip_name}: some tensors were materialised outside the meta device")
    total = sum(p.numel() for p in model.parameters())
    image = sum(p.numel() for p in model.visual.parameters())
    return total, image


def derived_columns(open_clip_name: str, pretrained_tag: str) -> dict[str, str]:
    """The computed CSV cells of one (open_clip_name, pretrained_tag) row."""
    if (open_clip_name, pretrained_tag) not in open_clip.list_pretrained():
        raise RegistryRowError(
            f"open_clip {open_clip.__version__} has no pretrained weights "
            f"({open_clip_name!r}, {pretrained_tag!r})")
    config = open_clip.get_model_config(open_clip_name)
    weights_quick_gelu = open_clip.get_pretrained_cfg(open_clip_name, pretrained_tag).get("quick_gelu", False)
    if config.get("quick_gelu", False) != weights_quick_gelu:
        fix = "use the '-quickgelu' variant of the name" if weights_quick_gelu else "drop the '-quickgelu' suffix"
        raise RegistryRowError(
            f"{open_clip_name!r} builds quick_gelu={not weights_quick_gelu} but the {pretrained_tag!r} "
            f"weights were trained with quick_gelu={weights_quick_gelu}; {fix}")
    image_size = config["vision_cfg"]["image_size"]
    if not isinstance(image_size, int):
        raise RegistryRowError(f"{open_clip_name!r}: non-square image_size {image_size!r}")
    total, image = count_parameters_on_meta(open_clip_name)
    return {
        "params_m": f"{total / 1e6:.3f}",
        "image_params_m": f"{image / 1e6:.3f}",
        "resolution": str(image_size),
        "text_tower": text_tower_kind(config["text_cfg"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=REGISTRY_CSV, help="registry CSV to update")
    parser.add_argument("--check", action="store_true", help="only report rows that are out of date")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # silence open_clip's "initialized randomly" warnings

    with args.csv.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns, rows = reader.fieldnames, list(reader)
    stale = []
    for row in rows:
        try:
            computed = derived_columns(row["open_clip_name"], row["pretrained_tag"])
        except RegistryRowError as error:
            raise RegistryRowError(f"registry row {row['key']!r}: {error}") from None
        if any(row[column] != value for column, value in computed.items()):
            stale.append(row["key"])
        row.update(computed)

    if args.check:
        for key in stale:
            print(f"out of date: {key}")
        return 1 if stale else 0
    with args.csv.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} rows to {args.csv} ({len(stale)} updated)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
