"""``build_dataset(spec, root)``: the paper's 15 test sets (Sec. 4 'Dataset', appendix A, Table 7)
and users' own data, as :class:`~lr0fm_core.datasets.images.LabeledImages`.

``spec`` is a dataset id or alias of :mod:`lr0fm_core.zeroshot.labels` (``imagenet``, ``dtd``,
``eurosat``, ...), ``imagefolder:PATH`` or ``csv:PATH``. Where each dataset lives under the data
root and how it is read is the table :data:`SOURCES`. Classes are matched to the label sets by
name or WordNet id. A missing or malformed dataset raises :class:`DatasetError` naming what is
missing and where it was looked for; :func:`build_datasets` checks several at once and reports
every problem in one message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..zeroshot.labels import DATASET_IDS, LabelSetError, canonical_dataset_id, dataset_info
from .classes import DatasetError
from .folders import LOADERS, csv_images, image_folder
from .images import LabeledImages
from .torchvision_sets import torchvision_images

USER_SOURCES = ("imagefolder", "csv")  # imagefolder:PATH, csv:PATH


@dataclass(frozen=True)
class DatasetSource:
    """Where one of the paper's datasets lives under the data root and how it is read.

    ``folders``: candidate locations under the root (the first that holds everything in
    ``needs`` is used). ``loader``: ``"torchvision"`` (the class ``torchvision`` with
    ``options``, given the data root itself) or a key of ``folders.LOADERS``. ``aliases``: the
    dataset's own class names that CLIP renamed. ``downloads``: archives ``(url, folder under the
    root to extract into, path under the root that exists once it is extracted)`` that
    ``--download`` fetches (torchvision datasets download themselves); ``manual``: how to get
    it otherwise. ``split``: the test split used, and how it relates to Table 7.
    """

    id: str
    folders: tuple[str, ...]
    needs: tuple[str, ...]
    layout: str
    loader: str
    split: str
    torchvision: str | None = None
    options: Mapping = field(default_factory=dict)
    aliases: Mapping = field(default_factory=dict)
    downloads: tuple[tuple[str, str, str], ...] = ()
    manual: str = ""

    @property
    def downloadable(self) -> bool:
        return bool(self.downloads) or (self.loader == "torchvision" and not self.manual)


CALTECH101_ALIASES = {  # 101_ObjectCategories folder -> CLIP's name (the rest differ only in case or '_')
    "Faces": "off-center face", "Faces_easy": "centered face", "Leopards": "leopard", "Motorbikes": "motorbike",
    "airplanes": "airplane", "car_side": "side of a car", "cougar_body": "body of a cougar cat",
    "cougar_face": "face of a cougar cat", "crocodile_head": "head of a  crocodile",
    "flamingo_head": "head of a flamingo", "snoopy": "snoopy (cartoon beagle)", "yin_yang": "yin and yang symbol",
}
EUROSAT_ALIASES = {  # 2750/ folder -> CLIP's name
    "AnnualCrop": "annual crop land", "Forest": "forest", "HerbaceousVegetation": "brushland or shrubland",
    "Highway": "highway or road", "Industrial": "industrial buildings or commercial buildings",
    "Pasture": "pasture land", "PermanentCrop": "permanent crop land",
    "Residential": "residential buildings or homes or apartments", "River": "river", "SeaLake": "lake or sea",
}
HENDRYCKS = "https://people.eecs.berkeley.edu/~hendrycks"

SOURCES: dict[str, DatasetSource] = {s.id: s for s in (
    DatasetSource(
        "imagenet", ("imagenet/val", "ILSVRC2012/val", "imagenet-val"), (),
        "the 50,000 ILSVRC2012 validation images in one folder per class named by WordNet id (n01440764/, ...)",
        "wnid_folders", "validation set (50,000)",
        manual="ImageNet needs a login: download ILSVRC2012_img_val.tar from image-net.org and sort it into "
               "class folders (the devkit's valprep.sh)"),
    DatasetSource(
        "imagenet_v2", ("imagenetv2-matched-frequency-format-val", "imagenet_v2/imagenetv2-matched-frequency-format-val",
                        "imagenet-v2"), (),
        "ImageNet-V2 matched-frequency: folders 0/ .. 999/ named by ImageNet class index", "index_folders",
        "matched-frequency (10,000)",
        downloads=(("https://imagenetv2public.s3-us-west-2.amazonaws.com/imagenetv2-matched-frequency.tar.gz", ".",
                    "imagenetv2-matched-frequency-format-val"),)),
    DatasetSource(
        "imagenet_a", ("imagenet-a",), (), "ImageNet-A: 200 folders named by WordNet id", "wnid_folders",
        "all 7,500 images", downloads=((f"{HENDRYCKS}/imagenet-a.tar", ".", "imagenet-a"),)),
    DatasetSource(
        "imagenet_r", ("imagenet-r",), (), "ImageNet-R: 200 folders named by WordNet id", "wnid_folders",
        "all 30,000 images", downloads=((f"{HENDRYCKS}/imagenet-r.tar", ".", "imagenet-r"),)),
    DatasetSource(
        "imagenet_sketch", ("imagenet-sketch/sketch", "sketch", "imagenet-sketch"), (),
        "ImageNet-Sketch: 1000 folders named by WordNet id (the 'sketch' folder of ImageNet-Sketch.zip)",
        "wnid_folders", "all 50,889 images (Table 7 rounds to 50,000)",
        manual="download ImageNet-Sketch.zip (Google Drive link in github.com/HaohanWang/ImageNet-Sketch) and unzip it"),
    DatasetSource(
        "caltech101", ("caltech101",), ("101_ObjectCategories",),
        "torchvision's Caltech101 layout: caltech101/101_ObjectCategories/<category>/image_0001.jpg", "torchvision",
        "all 8,677 images of the 101 categories (BACKGROUND_Google left out), as CLIP_benchmark evaluates it; "
        "Table 7's 6,085 is CLIP's split (30 random training images per class removed), which is not published",
        torchvision="Caltech101", options={"target_type": "category"}, aliases=CALTECH101_ALIASES),
    DatasetSource(
        "dtd", ("dtd/dtd",), ("images", "labels/test1.txt"),
        "torchvision's DTD layout: dtd/dtd/images/<class>/*.jpg and dtd/dtd/labels/test1.txt", "torchvision",
        "split 1, test (1,880)", torchvision="DTD", options={"split": "test", "partition": 1}),
    DatasetSource(
        "food101", ("food-101",), ("images", "meta/test.json"),
        "torchvision's Food101 layout: food-101/images/<class>/*.jpg and food-101/meta/test.json", "torchvision",
        "test (25,250)", torchvision="Food101", options={"split": "test"}),
    DatasetSource(
        "sun397", ("SUN397",), ("ClassName.txt",),
        "SUN397/<letter>/<class>/sun_*.jpg plus partition 1's Testing_01.txt (SUN397/Partitions/Testing_01.txt)",
        "sun397", "partition 1, test (19,850)",
        downloads=(("http://vision.princeton.edu/projects/2010/SUN/SUN397.tar.gz", ".", "SUN397/ClassName.txt"),
                   ("https://vision.princeton.edu/projects/2010/SUN/download/Partitions.zip", "SUN397/Partitions",
                    "SUN397/Partitions/Testing_01.txt"))),
    DatasetSource(
        "cars", ("stanford_cars",), ("devkit/cars_meta.mat", "cars_test", "cars_test_annos_withlabels.mat"),
        "torchvision's StanfordCars layout: stanford_cars/{devkit/cars_meta.mat, cars_test/, "
        "cars_test_annos_withlabels.mat}", "torchvision", "test (8,041)",
        torchvision="StanfordCars", options={"split": "test"},
        manual="the original Stanford Cars URL is gone; get a copy (e.g. the Kaggle mirror) with the layout above"),
    DatasetSource(
        "fgvc_aircraft", ("fgvc-aircraft-2013b",), ("data/images", "data/variants.txt", "data/images_variant_test.txt"),
        "torchvision's FGVCAircraft layout: fgvc-aircraft-2013b/data/{images/, variants.txt, images_variant_test.txt}",
        "torchvision", "test, variant level (3,333)",
        torchvision="FGVCAircraft", options={"split": "test", "annotation_level": "variant"}),
    DatasetSource(
        "pets", ("oxford-iiit-pet",), ("images", "annotations/test.txt"),
        "torchvision's OxfordIIITPet layout: oxford-iiit-pet/{images/, annotations/test.txt}", "torchvision",
        "test (3,669)", torchvision="OxfordIIITPet", options={"split": "test", "target_types": "category"}),
    DatasetSource(
        "flowers102", ("flowers-102",), ("jpg", "imagelabels.mat", "setid.mat"),
        "torchvision's Flowers102 layout: flowers-102/{jpg/, imagelabels.mat, setid.mat}", "torchvision",
        "test (6,149)", torchvision="Flowers102", options={"split": "test"}),
    DatasetSource(
        "eurosat", ("eurosat",), ("2750",),
        "torchvision's EuroSAT layout: eurosat/2750/<Class>/*.jpg", "torchvision",
        "all 27,000 images, as CLIP_benchmark evaluates it; Table 7's 5,000 is CLIP's unpublished subsample",
        torchvision="EuroSAT", aliases=EUROSAT_ALIASES),
    DatasetSource(
        "ucf101", ("ucf101", "UCF101"), (),
        "ucf101/ucfTrainTestlist/testlist01.txt plus the middle frames ucf101/UCF-101-midframes/<Class>/<video>.jpg "
        "or the videos ucf101/UCF-101/<Class>/<video>.avi (read with PyAV)", "ucf101",
        "split 1 test videos, middle frame each (3,783, as CLIP); Table 7 lists 1,794",
        manual="download UCF101.rar and UCF101TrainTestSplits-RecognitionTask.zip from crcv.ucf.edu and extract "
               "both into ucf101/ (optionally extract the middle frames)"),
)}


def dataset_source(dataset_id: str) -> DatasetSource:
    """The :class:`DatasetSource` of one of the paper's datasets (id or alias)."""
    return SOURCES[canonical_dataset_id(dataset_id)]


def build_dataset(spec: str, root: str | os.PathLike | None = None, download: bool = False) -> LabeledImages:
    """The dataset named by ``spec`` (see the module doc) under ``root``; with ``download``, fetch what can be."""
    kind, separator, rest = spec.partition(":")
    if separator and kind in USER_SOURCES:
        path = Path(rest).expanduser().resolve()
        name = f"{kind}:{path}"
        return image_folder(path, name) if kind == "imagefolder" else csv_images(path, name)
    try:
        source = dataset_source(spec)
    except LabelSetError:
        raise DatasetError(f"unknown dataset {spec!r}: use one of {', '.join(DATASET_IDS)}, "
                           f"imagefolder:PATH or csv:PATH") from None
    if root is None:
        raise DatasetError(f"dataset {source.id!r} needs --data-root (the folder that holds {source.folders[0]}/)")
    root = Path(root).expanduser()
    if not root.is_dir() and not download:
        raise DatasetError(f"the data root {root} does not exist or is not a folder")
    if download:
        _download(source, root)
    location = _locate(source, root)
    if source.loader == "torchvision":
        return torchvision_images(source.id, root, location, source.torchvision, source.options, source.aliases)
    return LOADERS[source.loader](source.id, location)


def build_datasets(specs: Sequence[str], root: str | os.PathLike | None = None,
                   download: bool = False) -> list[LabeledImages]:
    """:func:`build_dataset` for each spec; every missing or malformed one is named in one DatasetError."""
    built, problems = [], []
    for spec in specs:
        try:
            built.append(build_dataset(spec, root, download))
        except DatasetError as exc:
            problems.append(str(exc))
    problems = list(dict.fromkeys(problems))  # a missing root is one problem, not one per dataset
    if problems:
        heading = "" if len(problems) == 1 else f"{len(problems)} datasets cannot be used: "
        raise DatasetError(heading + " | ".join(problems))
    names = [images.name for images in built]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DatasetError(f"dataset(s) {', '.join(repeated)} named more than once")
    return built


def size_note(images: LabeledImages) -> str | None:
    """A remark when a paper dataset's size differs from Table 7 (a partial copy, or a different split)."""
    if images.name not in SOURCES:
        return None
    expected = dataset_info(images.name).test_size
    if len(images) == expected:
        return None
    return (f"{images.name}: {len(images):,} images, Table 7 lists {expected:,} "
            f"(this benchmark uses: {SOURCES[images.name].split})")


def _locate(source: DatasetSource, root: Path) -> Path:
    for folder in source.folders:
        location = root / folder
        if location.is_dir() and all((location / need).exists() for need in source.needs):
            return location
    first = root / source.folders[0]
    missing = next((first / need for need in source.needs if not (first / need).exists()), first) \
        if first.is_dir() else first
    looked = ", ".join(str(root / f) for f in source.folders)
    hint = "--download fetches it" if source.downloadable else source.manual
    raise DatasetError(f"dataset {source.id!r} not found under {root}: missing {missing} (looked in {looked}). "
                       f"Expected {source.layout}. {hint[0].upper()}{hint[1:]}.")


def _download(source: DatasetSource, root: Path) -> None:
    if not source.downloadable:
        return  # _locate says how to get it, if it is not there
    from torchvision.datasets.utils import download_and_extract_archive

    try:
        for url, folder, extracted in source.downloads:
            if not (root / extracted).exists():
                download_and_extract_archive(url, download_root=str(root), extract_root=str(root / folder))
        if source.loader == "torchvision":
            torchvision_images(source.id, root, root / source.folders[0], source.torchvision, source.options,
                               source.aliases, download=True)
    except DatasetError:
        raise
    except Exception as exc:  # network and archive errors come in many types
        raise DatasetError(f"downloading {source.id!r} into {root} failed: {exc}") from exc
