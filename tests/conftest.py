"""Shared fixtures. No test downloads weights: models are random-init (tiny open_clip configs)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LABELED_PHOTOS = REPO.parent / "shared" / "data" / "labeled_photos"


@pytest.fixture(autouse=True)
def isolated_caches(tmp_path_factory, monkeypatch):
    """Every test writes caches under a temporary folder, never into the user's home."""
    root = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("LR0FM_CACHE_DIR", str(root / "lr0fm-cache"))
    monkeypatch.setenv("LR0FM_WEIGHTS_DIR", str(root / "lr0fm-weights"))
    monkeypatch.setenv("LR0FM_DEVICE", "cpu")


@pytest.fixture(scope="session")
def tiny_model():
    from lr0fm_core.models.loading import load_model

    return load_model("lr0fm-tiny-ViT", "none", device="cpu")


@pytest.fixture(scope="session")
def labeled_photos() -> list[Path]:
    if not LABELED_PHOTOS.is_dir():
        pytest.skip(f"the shared labeled photos are not at {LABELED_PHOTOS}")
    return sorted(LABELED_PHOTOS.glob("imagenet/*")) + sorted(LABELED_PHOTOS.glob("cifar10/*"))


@pytest.fixture(scope="session")
def photo(labeled_photos):
    from PIL import Image

    with Image.open(labeled_photos[0]) as image:
        return image.convert("RGB")
