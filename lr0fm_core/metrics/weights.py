"""Dataset weights w_d for WAR (Sec. 3): presets and loading from JSON / CSV files."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from numbers import Real
from os import PathLike
from pathlib import Path

import pandas as pd

# Table 11 (appendix E): optimized WAR-16 weights, exactly as printed, keyed by dataset id.
PAPER_WAR16_WEIGHTS: dict[str, float] = {
    "imagenet": 0.15556157429688613,
    "imagenet_a": 0.970498446080589,
    "imagenet_v2": 0.2854574367981364,
    "imagenet_r": 0.01,
    "imagenet_sketch": 0.021456095637452655,
    "caltech101": 0.01,
    "dtd": 0.505922498560715,
    "food101": 0.01,
    "sun397": 0.407563119725743,
    "cars": 0.13583821249199218,
    "fgvc_aircraft": 0.8229545014750042,
    "pets": 0.08995285864599148,
    "flowers102": 0.08972060770047119,
    "eurosat": 1.0,
    "ucf101": 0.01,
}


class WeightsError(ValueError):
    """Dataset weights that cannot be used, with the offending datasets named."""


def _paper_preset(datasets: Sequence[str]) -> dict[str, float]:
    unknown = [d for d in datasets if d not in PAPER_WAR16_WEIGHTS]
    if unknown:
        raise WeightsError(
            f"the 'paper' weights (Table 11) have no weight for dataset(s) {unknown}; "
            f"they cover {sorted(PAPER_WAR16_WEIGHTS)}"
        )
    return {d: PAPER_WAR16_WEIGHTS[d] for d in datasets}


WEIGHT_PRESETS: dict[str, Callable[[Sequence[str]], dict[str, float]]] = {
    "uniform": lambda datasets: dict.fromkeys(datasets, 1.0),
    "paper": _paper_preset,
}


def _read_weights_file(path: Path) -> dict:
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text())
            if not isinstance(data, dict):
                raise WeightsError(f"weights file {str(path)!r} must hold a JSON object {{dataset: weight}}")
            return data
        frame = pd.read_csv(path, dtype={"dataset": str})
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, pd.errors.ParserError,
            pd.errors.EmptyDataError) as err:
        raise WeightsError(f"cannot read weights file {str(path)!r}: {err}") from err
    if not {"dataset", "weight"} <= set(frame.columns):
        raise WeightsError(
            f"weights CSV {str(path)!r} must have columns 'dataset' and 'weight', "
            f"it has {[str(c) for c in frame.columns]}"
        )
    repeated = sorted(set(frame["dataset"][frame["dataset"].duplicated()]))
    if repeated:
        raise WeightsError(f"weights CSV {str(path)!r} lists dataset(s) {repeated} more than once")
    return dict(zip(frame["dataset"], frame["weight"]))


def _checked(weights: Mapping, datasets: Sequence[str] | None, origin: str) -> dict[str, float]:
    """Weights as {dataset: float} in ``datasets`` order; finite, >= 0, not all zero."""
    bad = [f"{k!r}: {v!r}" for k, v in weights.items()
           if isinstance(v, bool) or not isinstance(v, Real) or not math.isfinite(v) or v < 0]
    if bad:
        raise WeightsError(f"{origin}: weights must be finite numbers >= 0, got {', '.join(bad)}")
    weights = {str(k).strip(): float(v) for k, v in weights.items()}
    if datasets is not None:
        unknown = [d for d in weights if d not in set(datasets)]
        missing = [d for d in datasets if d not in weights]
        if unknown or missing:
            raise WeightsError(
                f"{origin}: " + "; ".join(
                    (["unknown dataset name(s) " + str(unknown)] if unknown else [])
                    + (["no weight for dataset(s) " + str(missing)] if missing else [])
                ) + f"; the results table has datasets {list(datasets)}"
            )
        weights = {d: weights[d] for d in datasets}
    if weights and sum(weights.values()) == 0:
        raise WeightsError(f"{origin}: all weights are zero")
    return weights


def load_weights(source, datasets: Sequence[str] | None = None) -> dict[str, float]:
    """Dataset weights from a preset name (``uniform``, ``paper`` = Table 11), a JSON file
    ``{dataset: weight}``, a CSV file with columns ``dataset, weight``, or a mapping.
    With ``datasets`` (the results table's datasets) every one must get a weight and no
    other name may appear; presets are restricted to ``datasets``."""
    if isinstance(source, Mapping):
        return _checked(source, datasets, "weights")
    if isinstance(source, str) and source in WEIGHT_PRESETS:
        if datasets is None:
            raise WeightsError(f"weights preset {source!r} needs the list of datasets")
        return _checked(WEIGHT_PRESETS[source](list(datasets)), datasets, f"weights preset {source!r}")
    if not isinstance(source, (str, PathLike)):
        raise WeightsError(
            f"weights must be a preset name, a file path or a mapping, got {type(source).__name__}"
        )
    path = Path(source)
    if path.suffix.lower() not in (".json", ".csv"):
        raise WeightsError(
            f"unknown weights {str(source)!r}: not a preset {sorted(WEIGHT_PRESETS)} nor a .json/.csv file"
        )
    if not path.is_file():
        raise WeightsError(f"weights file {str(path)!r} does not exist")
    return _checked(_read_weights_file(path), datasets, f"weights file {str(path)!r}")
