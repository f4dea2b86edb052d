"""Benchmark datasets: the paper's 15 test sets from a local root, and users' image folders and CSVs."""

from .builder import SOURCES, DatasetSource, build_dataset, build_datasets, dataset_source, size_note
from .classes import DatasetError, class_index_map, compact_name
from .images import FileImages, LabeledImages

__all__ = [
    "SOURCES", "DatasetError", "DatasetSource", "FileImages", "LabeledImages", "build_dataset", "build_datasets",
    "class_index_map", "compact_name", "dataset_source", "size_note",
]
