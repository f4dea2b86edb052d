"""Build an open_clip model with its weights: a pretrained tag, a local checkpoint, or random init.

Weights come from three places (the only place in the engine that knows them):

* ``pretrained="<tag>"``: open_clip's pretrained tag, downloaded from the hub on a connected
  machine and cached; offline, this fails within seconds with :class:`WeightsUnavailableError`.
* ``checkpoint=PATH``: a local safetensors file, a state-dict file (loaded with
  ``weights_only=True``, no pickled code runs) or a folder holding one.
* ``pretrained="none"``: seeded random init, for trying the tool without weights.
  Such a model is *untrained*: :attr:`LoadedModel.untrained` is set and every view says so.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import os
import socket
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import open_clip
import torch

from .. import config
from .registry import RANDOM_INIT, UNTRAINED_WARNING

RANDOM_INIT_SEED = 0
NETWORK_PROBE_TIMEOUT_S = 3.0
CHECKPOINT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".npz")
CHECKPOINT_PREFERENCE = (  # inside a folder, first match wins
    "open_clip_model.safetensors", "open_clip_pytorch_model.safetensors", "model.safetensors",
    "open_clip_pytorch_model.bin", "pytorch_model.bin", "model.pth", "model.pt",
)

_CONFIG_DIR = Path(__file__).with_name("configs")
open_clip.add_model_config(_CONFIG_DIR)  # tiny test/demo architectures, e.g. "lr0fm-tiny-ViT"


class ModelLoadError(ValueError):
    """A model could not be built or its weights could not be loaded."""


class WeightsUnavailableError(ModelLoadError):
    """Pretrained weights are neither cached nor downloadable (e.g. no network)."""


class CheckpointError(ModelLoadError):
    """A local checkpoint is missing, unreadable or does not fit the architecture."""


@dataclass
class LoadedModel:
    """An open_clip model in eval mode with what the pipeline needs to feed it."""

    model: torch.nn.Module
    tokenizer: object
    name: str
    pretrained: str  # the tag, "none", or "checkpoint"
    weights_id: str  # identifies the exact weights, for caches
    resolution: int  # native input size (square)
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    device: torch.device
    checkpoint: str | None = None
    feature_cache: OrderedDict = field(default_factory=OrderedDict, repr=False)  # used by lr0fm_core.predict
    cache_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)  # app sessions share models

    @property
    def untrained(self) -> bool:
        return self.pretrained == RANDOM_INIT

    @property
    def description(self) -> str:
        source = f"checkpoint {self.checkpoint}" if self.checkpoint else f"pretrained={self.pretrained}"
        text = f"{self.name} ({source}, {self.resolution}px, {self.device})"
        return f"{text} [{UNTRAINED_WARNING}]" if self.untrained else text


def load_model(
    model: str,
    pretrained: str | None = None,
    checkpoint: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
) -> LoadedModel:
    """Build a model with weights from a pretrained tag, a local checkpoint, or random init.

    ``model`` is a registry key (``lr0fm models``, e.g. ``clip-vit-b-32``) or an open_clip model
    name. ``pretrained`` is an open_clip tag or ``"none"``; left out, it is the registry's tag for a
    key (or for the only registered tag of a name). With a checkpoint, the tag (if any) only sets
    the preprocessing (mean/std) and activation (QuickGELU) the weights were trained with.
    """
    name, pretrained = resolve_model(model, pretrained, checkpoint is not None)
    check_model_name(name)
    device = torch.device(device) if device is not None else config.default_device()
    tag_cfg = {} if pretrained == RANDOM_INIT else _tag_config(name, pretrained)

    if checkpoint is not None:
        weights_path = resolve_checkpoint(checkpoint)
        source, weights_id = "checkpoint", f"{_file_identity(weights_path)}|as:{pretrained}"
    elif tag_cfg:
        weights_path = _fetch_tag_weights(name, pretrained, tag_cfg)
        source, weights_id = pretrained, f"tag:{pretrained}"
    else:
        weights_path = None
        source, weights_id = RANDOM_INIT, f"random:{RANDOM_INIT_SEED}:open_clip-{open_clip.__version__}"

    tokenizer = _tokenizer(name)
    network = _build(name, tag_cfg)
    if weights_path is not None:
        _load_weights(network, name, weights_path)
    network = network.to(device).eval()
    pp = open_clip.get_model_preprocess_cfg(network)
    return LoadedModel(
        model=network,
        tokenizer=tokenizer,
        name=name,
        pretrained=source,
        weights_id=f"{name}|{weights_id}",
        resolution=_square_size(pp["size"]),
        mean=tuple(pp["mean"]),
        std=tuple(pp["std"]),
        device=device,
        checkpoint=str(weights_path) if checkpoint is not None else None,
    )


def resolve_model(model: str, pretrained: str | None, has_checkpoint: bool = False) -> tuple[str, str]:
    """(open_clip name, tag or "none") for a registry key or open_clip name; see :func:`load_model`."""
    from .registry import list_models

    model = model.strip()
    specs = [s for s in list_models() if model.lower() in (s.key, s.open_clip_name.lower())]
    by_key = [s for s in specs if s.key == model.lower()]
    if pretrained is not None:
        pretrained = pretrained.strip()
        tag = RANDOM_INIT if pretrained.lower() == RANDOM_INIT else pretrained
        return (by_key[0].open_clip_name if by_key else model), tag
    if by_key or len(specs) == 1:
        spec = (by_key or specs)[0]
        return spec.open_clip_name, spec.pretrained_tag
    if has_checkpoint:
        return model, RANDOM_INIT  # the checkpoint alone decides the weights
    check_model_name(model)
    tags = ", ".join(s.pretrained_tag for s in specs) or ", ".join(open_clip.list_pretrained_tags_by_model(model))
    raise ModelLoadError(f"say which weights {model} should use: --pretrained TAG ({tags or 'no tags known'}), "
                         f"--checkpoint PATH, or --pretrained none")


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """The weights file for ``path``: the file itself, or the preferred checkpoint in a folder."""
    path = Path(path).expanduser()
    if path.is_dir():
        found = [path / n for n in CHECKPOINT_PREFERENCE if (path / n).is_file()]
        found = found or sorted(p for p in path.iterdir() if p.suffix in CHECKPOINT_SUFFIXES)
        if not found:
            raise CheckpointError(
                f"no checkpoint in folder {path}: expected a file ending in {', '.join(CHECKPOINT_SUFFIXES)}"
            )
        return found[0]
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    return path


def check_model_name(name: str) -> None:
    """Raise ModelLoadError, with close matches, unless open_clip knows the architecture ``name``."""
    known = open_clip.list_models()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(close)}?" if close else " `lr0fm models` lists the paper's backbones."
        raise ModelLoadError(f"unknown open_clip model {name!r}.{hint}")


def _tag_config(name: str, tag: str) -> dict:
    cfg = open_clip.get_pretrained_cfg(name, tag)
    if not cfg:
        tags = open_clip.list_pretrained_tags_by_model(name)
        available = ", ".join(tags) if tags else "none (use --checkpoint PATH or --pretrained none)"
        raise ModelLoadError(f"{name} has no pretrained tag {tag!r}. Available tags: {available}")
    return cfg


def _fetch_tag_weights(name: str, tag: str, cfg: dict) -> Path:
    """The cached weights file for a tag, downloading it when the network is reachable."""
    cached = _cached_weights(cfg)
    if cached is not None:
        return cached
    host = _weights_host(cfg)
    reason = "offline mode is set (LR0FM_OFFLINE)" if config.offline() else _unreachable(host)
    if reason is None:
        try:
            with _quiet_libraries():
                return Path(open_clip.download_pretrained(cfg, cache_dir=config.weights_dir()))
        except Exception as exc:  # network errors come in many types; all mean the same here
            reason = str(exc).splitlines()[0]
    raise WeightsUnavailableError(
        f"the weights for {name} (pretrained={tag}) could not be fetched from {host}: {reason}. "
        f"On a connected machine they download and are cached automatically. Otherwise pass a local "
        f"copy with --checkpoint PATH (a .safetensors or state-dict file, or a folder holding one, "
        f"e.g. the hub repo {cfg.get('hf_hub') or cfg.get('url')}), or use --pretrained none for an "
        f"untrained model."
    )


def _cached_weights(cfg: dict) -> Path | None:
    if cfg.get("file"):
        return Path(cfg["file"])
    if cfg.get("hf_hub"):
        from huggingface_hub import try_to_load_from_cache

        repo_id, filename = os.path.split(cfg["hf_hub"])
        filename = filename or open_clip.pretrained.HF_WEIGHTS_NAME
        candidates = [filename[: -len(Path(filename).suffix)] + ".safetensors", filename]
        for candidate in candidates:
            hit = try_to_load_from_cache(repo_id, candidate, cache_dir=config.weights_dir())
            if isinstance(hit, str):
                return Path(hit)
        return None
    if cfg.get("url"):
        root = config.weights_dir() or os.path.expanduser("~/.cache/clip")
        path = Path(root) / os.path.basename(cfg["url"])
        return path if path.is_file() else None
    return None


def _weights_host(cfg: dict) -> str:
    if cfg.get("hf_hub"):
        from huggingface_hub import constants

        return urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    return urlparse(cfg.get("url", "")).hostname or "the weights server"


def _unreachable(host: str) -> str | None:
    """Why ``host`` cannot be reached within a few seconds, or None if it can."""
    try:
        with socket.create_connection((host, 443), timeout=NETWORK_PROBE_TIMEOUT_S):
            return None
    except OSError as exc:
        return f"no network connection ({exc.strerror or exc})"


def _build(name: str, tag_cfg: dict) -> torch.nn.Module:
    """The architecture with seeded random weights, configured like the tag (activation, preprocessing)."""
    preprocess = {k: tag_cfg[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in tag_cfg}
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(RANDOM_INIT_SEED)
    try:
        with _quiet_libraries():
            return open_clip.create_model(
                name,
                pretrained=None,
                force_quick_gelu=bool(tag_cfg.get("quick_gelu", False)),
                force_preprocess_cfg=preprocess,
                pretrained_image=False,
                pretrained_text=False,
            )
    except Exception as exc:
        raise ModelLoadError(f"could not build {name}: {exc}") from exc
    finally:
        torch.random.set_rng_state(generator_state)


def _load_weights(model: torch.nn.Module, name: str, path: Path) -> None:
    if path.suffix not in CHECKPOINT_SUFFIXES:
        raise CheckpointError(f"{path.name}: unsupported checkpoint type; expected {', '.join(CHECKPOINT_SUFFIXES)}")
    try:
        with _quiet_libraries():
            open_clip.load_checkpoint(model, str(path), strict=True, weights_only=True)
    except RuntimeError as exc:  # load_state_dict: missing/unexpected keys or shape mismatches
        summary = " ".join(str(exc).split())[:400]
        raise CheckpointError(
            f"{path.name} does not fit open_clip model {name}: {summary} "
            f"(is it a checkpoint of another architecture? pass the matching --model)"
        ) from exc
    except Exception as exc:  # not a tensor file, truncated, or a pickle that needs code to load
        raise CheckpointError(
            f"cannot read checkpoint {path}: {str(exc).splitlines()[0][:300]}. Only safetensors and plain "
            f"state-dict files are accepted (pickled code is never executed)."
        ) from exc


def _tokenizer(name: str):
    """open_clip's tokenizer; Hugging Face tokenizers come from the cache, or the hub when reachable."""
    hf_name = (open_clip.get_model_config(name) or {}).get("text_cfg", {}).get("hf_tokenizer_name")
    with _quiet_libraries():
        if hf_name is None:
            return open_clip.get_tokenizer(name)
        try:
            return open_clip.get_tokenizer(name, cache_dir=config.weights_dir(), local_files_only=True)
        except Exception:  # not cached yet
            pass
        reason = "offline mode is set (LR0FM_OFFLINE)" if config.offline() else _unreachable(_weights_host({"hf_hub": hf_name}))
        if reason is None:
            try:
                return open_clip.get_tokenizer(name, cache_dir=config.weights_dir())
            except Exception as exc:
                reason = str(exc).splitlines()[0][:200]
    raise WeightsUnavailableError(
        f"the tokenizer of {name} ({hf_name} on the Hugging Face hub) could not be fetched: {reason}. "
        f"It downloads once on a connected machine and is cached (set HF_HOME or LR0FM_WEIGHTS_DIR to share a cache)."
    )


def _file_identity(path: Path) -> str:
    stat = path.stat()
    return f"file:{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


def _square_size(size) -> int:
    if isinstance(size, int):
        return size
    height, width = size
    if height != width:
        raise ModelLoadError(f"non-square model input {height}x{width} is not supported")
    return int(height)


@contextlib.contextmanager
def _quiet_libraries():
    """Silence open_clip's and the hub's log lines; our own messages say what happened."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR + 10)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)
