"""Inside the model (LR0.FM Sec. 4): layer-wise similarity across resolutions (Fig. 7 right), feature
t-SNE with cluster separation (Fig. 8) and the dataset t-SNE of robustness vectors (Fig. 7 middle)."""

from .embedding import (
    cluster_separation,
    dataset_embedding,
    dataset_robustness_vectors,
    effective_perplexity,
    resolution_maps,
    tsne_embedding,
)
from .image_sets import LabeledImageSet, open_image_set, sample_image_set
from .similarity import (
    MEASURES,
    diagonal_frame,
    early_deep_summary,
    linear_cka,
    l2_similarity,
    matrix_frame,
    similarity_grid,
    similarity_matrix,
)

__all__ = [
    "LabeledImageSet", "MEASURES", "cluster_separation", "dataset_embedding",
    "dataset_robustness_vectors", "diagonal_frame", "early_deep_summary", "effective_perplexity",
    "l2_similarity", "linear_cka", "matrix_frame", "open_image_set",
    "resolution_maps", "sample_image_set", "similarity_grid", "similarity_matrix", "tsne_embedding",
]
