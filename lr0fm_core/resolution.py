"""Input resolutions as users write them: a side length in pixels, or "hr" (torch-free)."""

from __future__ import annotations

import math
from typing import Union

HR = "hr"  # the model's native resolution (A_HR in the paper, Sec. 3)
Resolution = Union[int, str]


def resolution_or_none(value) -> Resolution | None:
    """``"hr"`` (any case) or a positive integer (``16``, ``"16"``, ``16.0``); None for anything else."""
    if isinstance(value, bool):
        return None
    text = str(value).strip().lower()
    if text == HR:
        return HR
    try:
        number = float(text)
    except ValueError:
        return None
    return int(number) if math.isfinite(number) and number > 0 and number.is_integer() else None


def parse_resolution(value) -> Resolution:
    """Like :func:`resolution_or_none`, but raises ValueError with a readable message."""
    parsed = resolution_or_none(value)
    if parsed is None:
        raise ValueError(f"resolution must be a positive integer or 'hr', got {value!r}")
    return parsed
