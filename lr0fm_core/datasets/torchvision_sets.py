"""The paper's datasets that torchvision reads (and downloads): their test splits, classes mapped by name."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from PIL import Image

from ..zeroshot.labels import get_label_set
from .classes import DatasetError, class_index_map
from .images import LabeledImages


class TorchvisionImages(LabeledImages):
    """A torchvision dataset with its native targets mapped onto the label set's class indices."""

    def __init__(self, name: str, location: Path, dataset, target_map: list[int]):
        super().__init__(name, get_label_set(name), location)
        self.dataset, self.target_map = dataset, target_map

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        image, native = self.dataset[index]
        return image.convert("RGB"), self.target_map[native]


def torchvision_images(dataset_id: str, root: Path, location: Path, class_name: str, options: Mapping,
                       aliases: Mapping[str, str], download: bool = False) -> TorchvisionImages:
    """torchvision's ``class_name`` under ``root`` with ``options`` (split etc.); classes matched by name."""
    import torchvision.datasets

    try:
        dataset = getattr(torchvision.datasets, class_name)(root=str(root), download=download, **options)
    except Exception as exc:  # torchvision raises RuntimeError/ValueError/OSError for missing or broken files
        raise DatasetError(f"{dataset_id} at {location}: torchvision.datasets.{class_name} cannot read it: {exc}") from exc
    native = getattr(dataset, "categories", None) or dataset.classes  # Caltech101 calls its classes categories
    where = f"{dataset_id} at {location}"
    return TorchvisionImages(dataset_id, location, dataset, class_index_map(native, get_label_set(dataset_id), aliases, where))
