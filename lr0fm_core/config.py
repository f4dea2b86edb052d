"""Where the engine keeps things and which device it uses (environment overrides).

Torch-free at import, so that torch-free parts (the leaderboard) share the same cache folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

ENV_CACHE_DIR = "LR0FM_CACHE_DIR"  # zero-shot heads and other derived artefacts
ENV_WEIGHTS_DIR = "LR0FM_WEIGHTS_DIR"  # downloaded weights (default: open_clip's / Hugging Face's own caches)
ENV_DEVICE = "LR0FM_DEVICE"  # force a torch device, e.g. "cpu" or "cuda:1"
ENV_OFFLINE = "LR0FM_OFFLINE"  # "1": never try the network, use cached weights only


def cache_dir() -> Path:
    """Directory for derived artefacts such as zero-shot heads (created on first write)."""
    return Path(os.environ.get(ENV_CACHE_DIR) or Path.home() / ".cache" / "lr0fm")


def weights_dir() -> str | None:
    """Download directory for pretrained weights, or None for the libraries' default caches."""
    return os.environ.get(ENV_WEIGHTS_DIR) or None


def offline() -> bool:
    return os.environ.get(ENV_OFFLINE, "").strip().lower() in {"1", "true", "yes", "on"}


def default_device() -> torch.device:
    """CUDA when present, else CPU; ``LR0FM_DEVICE`` overrides."""
    import torch

    forced = os.environ.get(ENV_DEVICE)
    if forced:
        return torch.device(forced)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
