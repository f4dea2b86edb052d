"""Datasets read from their standard folder layouts and file lists (no torchvision class needed).

* ImageNet val / -Sketch / -A / -R: one folder per class named by WordNet id; A and R hold
  the 200 classes of their subsets (``labels.class_wnids``), mapped by wnid.
* ImageNet-V2 (matched frequency): folders ``0`` .. ``999`` named by ImageNet class index.
* SUN397: the images plus the first official partition's test list (``Testing_01.txt``).
* UCF101: the middle frame of each video of ``testlist01.txt``, pre-extracted or read from the video.
* ``imagefolder:PATH`` and ``csv:PATH``: users' own data.
"""

from __future__ import annotations

import csv
import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path

from ..zeroshot.labels import LabelSetError, class_wnids, custom_label_set, get_label_set
from .classes import DatasetError, preview_names, class_index_map, compact_name
from .images import IMAGE_SUFFIXES, FileImages, class_folders, image_files
from .video import middle_frame


def _from_class_folders(name: str, label_set, location: Path, folders: Sequence[Path],
                        targets: Sequence[int]) -> FileImages:
    paths, labels, empty = [], [], []
    for folder, target in zip(folders, targets):
        found = image_files(folder)
        if not found:
            empty.append(folder.name)
        paths.extend(found)
        labels.extend([target] * len(found))
    if empty:
        raise DatasetError(f"{name}: class folder(s) {preview_names(empty)} of {location} hold no image files "
                           f"({', '.join(sorted(IMAGE_SUFFIXES))})")
    return FileImages(name, label_set, location, paths, labels)


def wnid_folders(dataset_id: str, folder: Path) -> FileImages:
    """One folder per class named by WordNet id (ImageNet val after valprep.sh, -Sketch, -A, -R)."""
    wnids = {wnid: index for index, wnid in enumerate(class_wnids(dataset_id))}
    folders = class_folders(folder)
    unknown = [f.name for f in folders if f.name not in wnids]
    if unknown:
        raise DatasetError(f"{dataset_id} at {folder}: folder(s) {preview_names(unknown)} are not WordNet ids of its "
                           f"{len(wnids)} classes (expected one folder per class, e.g. {next(iter(wnids))}/)")
    if not folders:
        raise DatasetError(f"{dataset_id} at {folder}: no class folders (expected one per WordNet id, "
                           f"e.g. {next(iter(wnids))}/)")
    return _from_class_folders(dataset_id, get_label_set(dataset_id), folder, folders, [wnids[f.name] for f in folders])


def index_folders(dataset_id: str, folder: Path) -> FileImages:
    """One folder per class named by its ImageNet class index, ``0`` .. ``999`` (ImageNet-V2's release)."""
    label_set = get_label_set(dataset_id)
    folders = class_folders(folder)
    valid = {str(i) for i in range(len(label_set.classnames))}
    unknown = [f.name for f in folders if f.name not in valid]
    if unknown or not folders:
        found = f"folder(s) {preview_names(unknown)} are not" if unknown else "no folders named by"
        raise DatasetError(f"{dataset_id} at {folder}: {found} class indices 0..{len(valid) - 1} "
                           f"(ImageNet-V2's layout: 0/, 1/, ..., 999/)")
    return _from_class_folders(dataset_id, label_set, folder, folders, [int(f.name) for f in folders])


def image_folder(path: Path, name: str) -> FileImages:
    """``imagefolder:PATH``: one sub-folder per class, the folder name is the class name (sorted order)."""
    if not path.is_dir():
        raise DatasetError(f"{name}: {path} is not a folder")
    folders = class_folders(path)
    if len(folders) < 2:
        raise DatasetError(f"{name}: {path} needs one sub-folder per class (at least 2), found {len(folders)}")
    try:
        label_set = custom_label_set([f.name for f in folders], name=name)
    except LabelSetError as exc:
        raise DatasetError(f"{name}: class folder names of {path}: {exc}") from None
    return _from_class_folders(name, label_set, path, folders, range(len(folders)))


def csv_images(path: Path, name: str) -> FileImages:
    """``csv:PATH``: a CSV with columns ``path,label``; relative paths are taken from the CSV's folder."""
    if not path.is_file():
        raise DatasetError(f"{name}: CSV file {path} does not exist")
    try:
        with path.open(newline="", encoding="utf-8-sig") as file:
            reader = csv.DictReader(file)
            columns = reader.fieldnames or []
            if not {"path", "label"} <= set(columns):
                raise DatasetError(f"{name}: {path} must have columns 'path' and 'label', it has {columns}")
            rows = [(row["path"], row["label"]) for row in reader]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{name}: cannot read {path} as CSV: {exc}") from None
    blank = [number for number, (p, label) in enumerate(rows, 2) if not (p or "").strip() or not (label or "").strip()]
    if blank:
        raise DatasetError(f"{name}: {path} has an empty path or label on line(s) {preview_names(blank)}")
    classes = sorted({" ".join(label.split()) for _, label in rows})
    try:
        label_set = custom_label_set(classes, name=name)
    except LabelSetError as exc:
        raise DatasetError(f"{name}: labels of {path}: {exc}") from None
    index = {label: i for i, label in enumerate(classes)}
    paths = [(path.parent / p.strip()) for p, _ in rows]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise DatasetError(f"{name}: {len(missing)} image file(s) listed in {path} do not exist: {preview_names(missing)}")
    return FileImages(name, label_set, path, paths, [index[" ".join(label.split())] for _, label in rows])


def _listed_files(name: str, base: Path, relative: Sequence[str], split_file: Path) -> list[Path]:
    paths = [base / r for r in relative]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise DatasetError(f"{name}: {len(missing)} of the {len(paths)} files listed in {split_file} are missing: "
                           f"{preview_names(missing)}")
    return paths


SUN397_TEST_LISTS = ("Partitions/Testing_01.txt", "Testing_01.txt")


def sun397(dataset_id: str, folder: Path) -> FileImages:
    """SUN397's first official partition, test half (50 images per class, 19,850; Table 7)."""
    split_file = next((folder / f for f in SUN397_TEST_LISTS if (folder / f).is_file()), None)
    if split_file is None:
        raise DatasetError(f"{dataset_id}: the test list of partition 1 is missing: looked for "
                           f"{', '.join(str(folder / f) for f in SUN397_TEST_LISTS)} (Partitions.zip of SUN397)")
    relative = [line.strip().lstrip("/") for line in split_file.read_text().splitlines() if line.strip()]
    native = ["/".join(Path(r).parts[1:-1]) for r in relative]  # a/abbey/sun_x.jpg -> abbey
    classes = sorted(set(native))
    label_set = get_label_set(dataset_id)
    index = dict(zip(classes, class_index_map(classes, label_set, where=f"{dataset_id} ({split_file})")))
    paths = _listed_files(dataset_id, folder, relative, split_file)
    return FileImages(dataset_id, label_set, folder, paths, [index[c] for c in native])


UCF101_TEST_LISTS = ("ucfTrainTestlist/testlist01.txt", "testlist01.txt")
UCF101_FRAME_FOLDERS = ("UCF-101-midframes", "midframes")
UCF101_VIDEO_FOLDERS = ("UCF-101", "videos")


def ucf101(dataset_id: str, folder: Path) -> FileImages:
    """UCF101 split 1 test videos (testlist01.txt), one image each: the video's middle frame, as CLIP did.

    Frames are taken from ``UCF-101-midframes/<Class>/<video stem>.jpg`` when extracted (class folders
    ``ApplyEyeMakeup`` or CoOp's ``Apply_Eye_Makeup``), else decoded from ``UCF-101/<Class>/<video>.avi``
    with PyAV.
    """
    split_file = next((folder / f for f in UCF101_TEST_LISTS if (folder / f).is_file()), None)
    if split_file is None:
        raise DatasetError(f"{dataset_id}: the split-1 test list is missing: looked for "
                           f"{', '.join(str(folder / f) for f in UCF101_TEST_LISTS)} (UCF101TrainTestSplits)")
    videos = [line.split()[0] for line in split_file.read_text().splitlines() if line.strip()]
    native = [Path(v).parts[0] for v in videos]
    classes = sorted(set(native))
    label_set = get_label_set(dataset_id)
    index = dict(zip(classes, class_index_map(classes, label_set, where=f"{dataset_id} ({split_file})")))
    targets = [index[c] for c in native]
    frames = next((folder / f for f in UCF101_FRAME_FOLDERS if (folder / f).is_dir()), None)
    if frames is not None:
        return FileImages(dataset_id, label_set, frames, _ucf101_frames(dataset_id, frames, videos), targets)
    clips = next((folder / f for f in UCF101_VIDEO_FOLDERS if (folder / f).is_dir()), None)
    looked = ", ".join(str(folder / f) for f in UCF101_FRAME_FOLDERS + UCF101_VIDEO_FOLDERS)
    if clips is None:
        raise DatasetError(f"{dataset_id}: neither middle frames nor videos found: looked for {looked}")
    if importlib.util.find_spec("av") is None:
        raise DatasetError(
            f"{dataset_id}: found the videos in {clips} but no extracted middle frames ({folder / UCF101_FRAME_FOLDERS[0]}), "
            f"and reading a video's middle frame needs PyAV, which is not installed (pip install av). "
            f"Install it, or extract one frame per test video to {folder / UCF101_FRAME_FOLDERS[0]}/<Class>/<video stem>.jpg"
        )
    return FileImages(dataset_id, label_set, clips, _listed_files(dataset_id, clips, videos, split_file), targets,
                      read=middle_frame)


def _ucf101_frames(dataset_id: str, frames: Path, videos: Sequence[str]) -> list[Path]:
    by_class = {compact_name(f.name): f for f in class_folders(frames)}
    paths, missing = [], []
    for video in videos:
        class_folder = by_class.get(compact_name(Path(video).parts[0]))
        stem = Path(video).stem
        found = None if class_folder is None else next(
            (class_folder / f"{stem}{suffix}" for suffix in (".jpg", ".png", ".jpeg")
             if (class_folder / f"{stem}{suffix}").is_file()), None)
        if found is None:
            missing.append(video)
        else:
            paths.append(found)
    if missing:
        raise DatasetError(f"{dataset_id}: no middle frame in {frames} for {len(missing)} of the {len(videos)} test "
                           f"videos, e.g. {preview_names(missing, 3)} (expected <Class>/<video stem>.jpg)")
    return paths


LOADERS: dict[str, Callable[[str, Path], FileImages]] = {
    "wnid_folders": wnid_folders,
    "index_folders": index_folders,
    "sun397": sun397,
    "ucf101": ucf101,
}
