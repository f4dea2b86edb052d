"""Layer-by-layer similarity of one model's features at n×n and at its own resolution (Fig. 7 right).

Pure numpy. A layer's representation is an array ``(groups, examples, width)``: the examples of one
group are compared with each other (the tokens of one image, or the class tokens of all images as
a single group; see :mod:`lr0fm_core.inside.features`). Two measures, both 1 for identical inputs
and brighter = more similar in the heatmaps:

* ``"l2"``: the paper's "feature L2 similarity" (Sec. 4, Fig. 7 right), made exact here as

      sim(F, G) = 1 − mean_k ‖f̂_k − ĝ_k‖₂ / 2,   f̂ = f / ‖f‖₂,

  the mean over matching examples k (same image, same token position) of the L2 distance between
  the unit-normalized feature vectors, mapped from [0, 2] to a similarity in [0, 1].
* ``"cka"``: linear centered kernel alignment (Kornblith et al., 2019, which the paper cites),

      CKA(X, Y) = ⟨K̃, L̃⟩_F / (‖K̃‖_F ‖L̃‖_F),   K̃ = H X Xᵀ H,  L̃ = H Y Yᵀ H,  H = I − 11ᵀ/n,

  over the examples of a group, averaged over groups. Invariant to orthogonal transforms and
  isotropic scaling of either representation; NaN where a representation is constant.

A patch-embedding output holds only the spatial tokens, a block's output has the class/register
tokens in front of them: two layers with different token counts are compared on the trailing
tokens they share, the spatial ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

Representation = np.ndarray  # (groups, examples, width)
MIN_CKA_EXAMPLES = 3  # with 2 examples, centered representations have rank 1 and CKA is always 1
BLAS_THREADS_FROM = 1024  # examples per group; with fewer, BLAS threads cost more than they save (and on a busy
# machine spinning threads made the 4 × 13 × 13 CKA grid of one ViT-B-32 photo 30-100x slower, measured)


class SimilarityInputError(ValueError):
    """Layer representations that cannot be compared (shapes, examples, unknown measure)."""


def _as_representation(x, name: str) -> np.ndarray:
    array = np.asarray(x, dtype=np.float64)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or 0 in array.shape:
        raise SimilarityInputError(f"{name} must be a non-empty (groups, examples, width) or (examples, width) "
                                   f"array, got shape {array.shape}")
    return array


def _shared_tokens(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both representations on their trailing ``min`` examples (prefix tokens come first)."""
    if x.shape[0] != y.shape[0]:
        raise SimilarityInputError(f"the representations have {x.shape[0]} and {y.shape[0]} groups (images); "
                                   f"they must come from the same images")
    count = min(x.shape[1], y.shape[1])
    return x[:, x.shape[1] - count:], y[:, y.shape[1] - count:]


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norms == 0, 1.0, norms)


def _l2_from_units(x_unit: np.ndarray, y_unit: np.ndarray) -> float:
    if x_unit.shape[-1] != y_unit.shape[-1]:
        raise SimilarityInputError(f"the L2 similarity needs equal widths, got {x_unit.shape[-1]} and "
                                   f"{y_unit.shape[-1]}; use CKA to compare layers of different widths")
    x_unit, y_unit = _shared_tokens(x_unit, y_unit)
    return float(1.0 - np.linalg.norm(x_unit - y_unit, axis=-1).mean() / 2.0)


def l2_similarity(x, y) -> float:
    """1 − mean ‖x̂_k − ŷ_k‖₂ / 2 over matching examples of unit-normalized features (see module doc)."""
    return _l2_from_units(_unit(_as_representation(x, "x")), _unit(_as_representation(y, "y")))


def _centered_gram(x: np.ndarray) -> np.ndarray:
    """H X Xᵀ H for every group: (groups, examples, examples)."""
    if x.shape[1] < MIN_CKA_EXAMPLES:
        raise SimilarityInputError(
            f"CKA needs at least {MIN_CKA_EXAMPLES} examples to compare, got {x.shape[1]}: use the tokens of "
            f"the image(s), or the class token of at least {MIN_CKA_EXAMPLES} images")
    gram = x @ x.transpose(0, 2, 1)
    return (gram - gram.mean(axis=1, keepdims=True) - gram.mean(axis=2, keepdims=True)
            + gram.mean(axis=(1, 2), keepdims=True))


def _cka_from_grams(k: np.ndarray, l: np.ndarray) -> float:
    hsic = np.einsum("gij,gij->g", k, l)
    norms = np.sqrt(np.einsum("gij,gij->g", k, k) * np.einsum("gij,gij->g", l, l))
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.mean(hsic / norms))


def linear_cka(x, y) -> float:
    """Linear CKA (Kornblith et al., 2019) over the examples of each group, averaged over groups."""
    x, y = _shared_tokens(_as_representation(x, "x"), _as_representation(y, "y"))
    return _cka_from_grams(_centered_gram(x), _centered_gram(y))


class _GramCache:
    """Centered Gram matrices of a layer's representation, per number of trailing tokens used."""

    def __init__(self, layer: np.ndarray):
        self.layer = layer
        self.grams: dict[int, np.ndarray] = {}

    def gram(self, count: int) -> np.ndarray:
        if count not in self.grams:
            self.grams[count] = _centered_gram(self.layer[:, self.layer.shape[1] - count:])
        return self.grams[count]


def _l2_matrix(rows: Sequence[np.ndarray], columns: Sequence[np.ndarray]) -> np.ndarray:
    row_units, column_units = [_unit(r) for r in rows], [_unit(c) for c in columns]
    return np.array([[_l2_from_units(r, c) for c in column_units] for r in row_units])


def _cka_matrix(rows: Sequence[np.ndarray], columns: Sequence[np.ndarray]) -> np.ndarray:
    row_cache, column_cache = [_GramCache(r) for r in rows], [_GramCache(c) for c in columns]
    matrix = np.empty((len(rows), len(columns)))
    examples = max(layer.shape[1] for layer in (*rows, *columns))
    with threadpool_limits(1 if examples < BLAS_THREADS_FROM else None, user_api="blas"):
        for i, r in enumerate(row_cache):
            for j, c in enumerate(column_cache):
                _shared_tokens(r.layer, c.layer)  # checks the groups match
                count = min(r.layer.shape[1], c.layer.shape[1])
                matrix[i, j] = _cka_from_grams(r.gram(count), c.gram(count))
    return matrix


@dataclass(frozen=True)
class Measure:
    """A layer similarity: its name for people, the exact formula, and the layers × layers function."""

    label: str
    formula: str
    matrix: Callable[[Sequence[np.ndarray], Sequence[np.ndarray]], np.ndarray]


MEASURES: dict[str, Measure] = {
    "l2": Measure("L2 similarity (the paper's)", "sim = 1 − mean‖f̂ − ĝ‖₂ / 2 on L2-normalized features "
                  "f̂ = f/‖f‖₂, averaged over matching tokens and images (1 = identical, 0 = opposite)", _l2_matrix),
    "cka": Measure("linear CKA (Kornblith et al., 2019)", "CKA = ⟨HKH, HLH⟩_F / (‖HKH‖_F ‖HLH‖_F) with Gram "
                   "matrices K = XXᵀ, L = YYᵀ over the examples, H = I − 11ᵀ/n (1 = identical up to rotation "
                   "and scale)", _cka_matrix),
}


def similarity_matrix(rows: Sequence, columns: Sequence, measure: str = "l2") -> np.ndarray:
    """``matrix[i, j]`` = similarity of ``rows[i]`` (a layer of the n×n model) and ``columns[j]`` (a layer
    of the HR model), each a representation ``(groups, examples, width)``; ``measure`` is a key of
    :data:`MEASURES`."""
    if measure not in MEASURES:
        raise SimilarityInputError(f"unknown similarity measure {measure!r}; choose from {', '.join(MEASURES)}")
    if len(rows) == 0 or len(columns) == 0:
        raise SimilarityInputError("no layers to compare")
    rows = [_as_representation(r, f"layer {i} of the rows") for i, r in enumerate(rows)]
    columns = [_as_representation(c, f"layer {j} of the columns") for j, c in enumerate(columns)]
    return MEASURES[measure].matrix(rows, columns)


def similarity_grid(layers_by_resolution: Mapping, reference, measure: str = "l2") -> dict:
    """{resolution: layers(n×n) × layers(reference) matrix} for every resolution but ``reference``
    (the HR features), as the grid of heatmaps in Fig. 7 right."""
    if reference not in layers_by_resolution:
        raise SimilarityInputError(f"the reference resolution {reference!r} has no features; "
                                   f"there are {list(layers_by_resolution)}")
    hr = layers_by_resolution[reference]
    return {resolution: similarity_matrix(layers, hr, measure)
            for resolution, layers in layers_by_resolution.items() if resolution != reference}


def matrix_frame(matrix: np.ndarray, layer_names: Sequence[str]) -> pd.DataFrame:
    """A layers × layers matrix as a table: rows are the n×n model's layers, columns the HR model's."""
    matrix = np.asarray(matrix)
    if matrix.shape != (len(layer_names), len(layer_names)):
        raise SimilarityInputError(f"a {matrix.shape} matrix does not fit {len(layer_names)} layer names")
    return pd.DataFrame(matrix, index=pd.Index(layer_names, name="layer (n×n)"),
                        columns=pd.Index(layer_names, name="layer (HR)"))


def diagonal_frame(grid: Mapping, layer_names: Sequence[str]) -> pd.DataFrame:
    """Layer i (n×n) vs layer i (HR) for every resolution: columns ``resolution, depth, layer, similarity``
    (depth 0 is the patch embedding), the line chart behind 'early layers suffer more'."""
    rows = [
        {"resolution": resolution, "depth": depth, "layer": name, "similarity": float(value)}
        for resolution, matrix in grid.items()
        for depth, (name, value) in enumerate(zip(layer_names, np.diagonal(np.asarray(matrix))))
    ]
    return pd.DataFrame(rows, columns=["resolution", "depth", "layer", "similarity"])


def early_deep_summary(diagonal: pd.DataFrame, fraction: float = 1 / 3) -> pd.DataFrame:
    """Mean diagonal similarity of the first and the last ``fraction`` of the layers per resolution:
    columns ``resolution, early, deep, deep_minus_early`` (positive = early layers suffer more)."""
    if not 0 < fraction <= 0.5:
        raise SimilarityInputError(f"fraction must be in (0, 0.5], got {fraction}")
    rows = []
    for resolution, part in diagonal.groupby("resolution", sort=False):
        values = part.sort_values("depth")["similarity"].to_numpy()
        size = max(1, int(round(len(values) * fraction)))
        early, deep = float(values[:size].mean()), float(values[-size:].mean())
        rows.append({"resolution": resolution, "early": early, "deep": deep, "deep_minus_early": deep - early})
    return pd.DataFrame(rows, columns=["resolution", "early", "deep", "deep_minus_early"])
