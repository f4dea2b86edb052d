"""2-D maps of features (Fig. 8) and of datasets (Fig. 7 middle) with scikit-learn's t-SNE.

:func:`tsne_embedding` reduces with PCA to at most 50 dimensions first, then runs t-SNE from a PCA
initialization with a fixed seed: the same features always give the same map. :func:`cluster_separation` puts the
collapse of classes at low resolution into a number: the silhouette score of the classes on the
features themselves (cosine distance), not on the 2-D map. :func:`dataset_embedding` places each
dataset by its vector of Γ (Eq. 1) over models, as the paper's dataset t-SNE does.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.metrics import silhouette_score
from threadpoolctl import threadpool_limits

from ..metrics import DEFAULT_ALPHA, per_dataset_robustness, validate_results_table

PCA_DIMS = 50
DEFAULT_PERPLEXITY = 30.0
DEFAULT_SEED = 0
MIN_POINTS = 4
THREADS_FROM_POINTS = 5000  # smaller maps run single-threaded: on a 2-core machine 1,000 points took 2-3.4 s that
# way, 4 s with 2 threads at load 2 and 25 s at load 5 (OpenMP and BLAS threads spinning)

class EmbeddingInputError(ValueError):
    """Features, labels or a results table that cannot be embedded or scored."""


def effective_perplexity(n_points: int, perplexity: float = DEFAULT_PERPLEXITY) -> float:
    """``perplexity``, capped at (n − 1) / 3 so that small sets (e.g. 15 datasets) still embed."""
    return float(min(perplexity, (n_points - 1) / 3))


def tsne_embedding(features, seed: int = DEFAULT_SEED, perplexity: float = DEFAULT_PERPLEXITY,
                   pca_dims: int = PCA_DIMS) -> np.ndarray:
    """(n, 2) t-SNE coordinates of ``features`` (n, d): PCA to min(pca_dims, n, d) dims, then t-SNE
    (PCA initialization, Barnes-Hut, ``random_state=seed``; perplexity per :func:`effective_perplexity`)."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < MIN_POINTS:
        raise EmbeddingInputError(f"t-SNE needs an (n, d) feature array with n >= {MIN_POINTS} points, "
                                  f"got shape {features.shape}")
    if not np.isfinite(features).all():
        raise EmbeddingInputError("the features contain NaN or infinite values")
    if perplexity <= 0:
        raise EmbeddingInputError(f"perplexity must be positive, got {perplexity}")
    dims = min(pca_dims, *features.shape)
    tsne = TSNE(n_components=2, perplexity=effective_perplexity(len(features), perplexity), init="pca",
                random_state=seed)
    with threadpool_limits(1 if len(features) < THREADS_FROM_POINTS else None):
        if dims < features.shape[1]:
            features = PCA(n_components=dims, random_state=seed).fit_transform(features)
        return tsne.fit_transform(features)


def cluster_separation(features, labels: Sequence) -> float:
    """Silhouette score of the classes on the features (cosine distance): 1 = tight, separate classes,
    about 0 = overlapping classes (Fig. 8's collapse at 16 and 32 px), negative = mixed up."""
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    if features.ndim != 2 or len(features) != len(labels):
        raise EmbeddingInputError(f"need one label per feature row: {features.shape} features, {len(labels)} labels")
    classes = len(np.unique(labels))
    if not 2 <= classes <= len(labels) - 1:
        raise EmbeddingInputError(f"the silhouette score needs 2 to n - 1 classes, got {classes} classes "
                                  f"for {len(labels)} images")
    return float(silhouette_score(features, labels, metric="cosine"))


def resolution_maps(features_by_resolution: Mapping, labels: Sequence, seed: int = DEFAULT_SEED,
                    perplexity: float = DEFAULT_PERPLEXITY) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fig. 8 for every resolution: (points ``resolution, image, label, x, y``; scores
    ``resolution, silhouette``), each resolution's features (images, d) embedded on its own."""
    points, scores = [], []
    for resolution, features in features_by_resolution.items():
        coordinates = tsne_embedding(features, seed=seed, perplexity=perplexity)
        points.append(pd.DataFrame({"resolution": resolution, "image": np.arange(len(coordinates)),
                                    "label": list(labels), "x": coordinates[:, 0], "y": coordinates[:, 1]}))
        scores.append({"resolution": resolution, "silhouette": cluster_separation(features, labels)})
    return pd.concat(points, ignore_index=True), pd.DataFrame(scores, columns=["resolution", "silhouette"])


def dataset_robustness_vectors(table: pd.DataFrame, resolution=16, alpha: float = DEFAULT_ALPHA) -> pd.DataFrame:
    """Datasets × models matrix of Γ (Eq. 1) at ``resolution`` from a per-dataset results table.

    Only models evaluated on every dataset are kept (a t-SNE point needs every coordinate);
    raises if fewer than two remain.
    """
    scores = per_dataset_robustness(validate_results_table(table), resolution, alpha)
    vectors = scores.pivot(index="dataset", columns="model", values="Gamma")
    complete = vectors.dropna(axis=1)
    if complete.shape[1] < 2:
        raise EmbeddingInputError(
            f"a dataset t-SNE needs at least 2 models evaluated on all {len(vectors)} datasets at "
            f"{resolution}; {complete.shape[1]} of {vectors.shape[1]} models are complete")
    if len(complete) < MIN_POINTS:
        raise EmbeddingInputError(f"a dataset t-SNE needs at least {MIN_POINTS} datasets, the table has "
                                  f"{len(complete)}")
    return complete


def dataset_embedding(vectors: pd.DataFrame, seed: int = DEFAULT_SEED,
                      perplexity: float = DEFAULT_PERPLEXITY) -> pd.DataFrame:
    """One row per dataset: ``dataset, x, y, mean_Gamma, models`` (t-SNE of its Γ vector over models)."""
    coordinates = tsne_embedding(vectors.to_numpy(), seed=seed, perplexity=perplexity)
    return pd.DataFrame({
        "dataset": vectors.index.astype(str), "x": coordinates[:, 0], "y": coordinates[:, 1],
        "mean_Gamma": vectors.mean(axis=1).to_numpy(), "models": vectors.shape[1],
    })
