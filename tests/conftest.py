"""Shared fixtures. No test downloads weights: models are random-init (tiny open_clip configs)."""

from __future__ import annotations

import csv
import shutil
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


def photo_folder(photos: Path, root: Path, space: str = "cifar10", copies: int = 1) -> Path:
    """An image folder (one sub-folder per label) of the shared labeled photos of ``space``."""
    with (photos / "labels.csv").open(newline="") as labels:
        rows = [r for r in csv.DictReader(labels) if r["label_space"] == space]
    for row in rows:
        source = photos / row["path"]
        for copy in range(copies):
            target = root / row["label_name"] / f"{copy}_{source.name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target)
    return root


@pytest.fixture(scope="session")
def bench_db(labeled_photos, tmp_path_factory) -> Path:
    """A results database written by a real `lr0fm bench` sweep: two random-init tiny models x
    two image folders of the labeled photos x resolutions 16, 32 and hr (read-only for tests)."""
    from lr0fm_core.cli import main

    root = tmp_path_factory.mktemp("bench-db")
    photos = labeled_photos[0].parents[1]
    folders = [photo_folder(photos, root / space, space) for space in ("cifar10", "imagenet")]
    db = root / "results.duckdb"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LR0FM_CACHE_DIR", str(root / "cache"))
        env.setenv("LR0FM_DEVICE", "cpu")
        assert main(["bench", "--models", "lr0fm-tiny-ViT:none", "lr0fm-tiny-ViT-bidir:none",
                     "--datasets", *(f"imagefolder:{f}" for f in folders), "--db", str(db),
                     "--workers", "0", "--resolutions", "16", "32", "hr"]) == 0
    return db
