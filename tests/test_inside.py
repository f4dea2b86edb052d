"""Inside the model (Sec. 4): layer similarity (L2, linear CKA), layer capture, t-SNE, silhouette, image sets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from lr0fm_core.inside import (
    cluster_separation,
    dataset_embedding,
    dataset_robustness_vectors,
    diagonal_frame,
    early_deep_summary,
    l2_similarity,
    linear_cka,
    open_image_set,
    sample_image_set,
    similarity_grid,
    similarity_matrix,
    tsne_embedding,
)
from lr0fm_core.inside.features import FeatureRequestError, extract_features
from lr0fm_core.inside.similarity import SimilarityInputError
from lr0fm_core.lr_tokens import LRTokens, with_lr_tokens
from lr0fm_core.models.loading import load_model
from lr0fm_core.pipeline import model_view, to_model_input

RNG = np.random.default_rng(0)


def naive_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Kornblith et al. (2019), Eq. for linear CKA in feature space: ‖YᵀX‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F), centered."""
    x, y = x - x.mean(0), y - y.mean(0)
    return np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))


def random_layers(count=5, groups=2, examples=12, width=8, seed=1):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(groups, examples, width)) for _ in range(count)]


# --- similarity -----------------------------------------------------------------------------------------------

def test_cka_matches_the_feature_space_formula():
    x, y = RNG.normal(size=(20, 6)), RNG.normal(size=(20, 9))
    assert linear_cka(x, y) == pytest.approx(naive_cka(x, y), rel=1e-10)


def test_cka_invariant_to_orthogonal_transform_and_isotropic_scaling_not_to_any_linear_map():
    x, y = RNG.normal(size=(30, 10)), RNG.normal(size=(30, 10))
    q, _ = np.linalg.qr(RNG.normal(size=(10, 10)))
    reference = linear_cka(x, y)
    assert linear_cka(x @ q, 7.5 * y) == pytest.approx(reference, abs=1e-12)
    assert linear_cka(x, x @ q * 0.01) == pytest.approx(1.0, abs=1e-12)
    stretch = np.diag(np.geomspace(1, 1000, 10))
    assert abs(linear_cka(x @ stretch, y) - reference) > 1e-3


def test_cka_needs_three_examples():
    with pytest.raises(SimilarityInputError, match="at least 3 examples"):
        linear_cka(RNG.normal(size=(2, 4)), RNG.normal(size=(2, 4)))


def test_l2_similarity_matches_a_per_token_loop():
    x, y = RNG.normal(size=(3, 7, 5)), RNG.normal(size=(3, 7, 5))
    distances = [np.linalg.norm(x[g, t] / np.linalg.norm(x[g, t]) - y[g, t] / np.linalg.norm(y[g, t]))
                 for g in range(3) for t in range(7)]
    assert l2_similarity(x, y) == pytest.approx(1 - np.mean(distances) / 2, rel=1e-12)
    assert l2_similarity(x, -x) == pytest.approx(0.0, abs=1e-12)
    assert l2_similarity(x, 3 * x) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("measure", ["l2", "cka"])
def test_identical_inputs_give_a_maximal_diagonal(measure):
    layers = random_layers()
    matrix = similarity_matrix(layers, layers, measure)
    assert matrix.shape == (5, 5)
    np.testing.assert_allclose(np.diagonal(matrix), 1.0, atol=1e-12)
    off_diagonal = matrix[~np.eye(5, dtype=bool)]
    assert off_diagonal.max() < 0.99  # independent random layers are far from identical


@pytest.mark.parametrize("measure", ["l2", "cka"])
def test_patch_embedding_is_compared_on_the_spatial_tokens(measure):
    """A block output = class token + spatial tokens; the patch embedding has the spatial ones only."""
    spatial = RNG.normal(size=(2, 9, 6))
    with_class_token = np.concatenate([RNG.normal(size=(2, 1, 6)), spatial], axis=1)
    matrix = similarity_matrix([spatial], [with_class_token], measure)
    assert matrix[0, 0] == pytest.approx(1.0, abs=1e-12)


def test_similarity_rejects_unknown_measure_and_mismatched_images():
    layers = random_layers(count=2)
    with pytest.raises(SimilarityInputError, match="unknown similarity measure 'cosine'"):
        similarity_matrix(layers, layers, "cosine")
    with pytest.raises(SimilarityInputError, match="groups"):
        similarity_matrix(layers, [layer[:1] for layer in layers], "l2")


def test_grid_diagonal_and_early_deep_summary():
    hr = random_layers(count=4, seed=2)
    rng = np.random.default_rng(3)
    # the n×n model: noise that shrinks with depth, so deep layers are closer to HR than early ones
    low = [layer + rng.normal(size=layer.shape) * scale for layer, scale in zip(hr, (3.0, 2.0, 0.5, 0.1))]
    grid = similarity_grid({16: low, "hr": hr}, "hr", "l2")
    assert list(grid) == [16]
    names = ["patch_embed", "block_1", "block_2", "block_3"]
    diagonal = diagonal_frame(grid, names)
    assert list(diagonal["layer"]) == names
    np.testing.assert_allclose(diagonal["similarity"], np.diagonal(grid[16]))
    assert diagonal["similarity"].is_monotonic_increasing
    summary = early_deep_summary(diagonal, fraction=0.25).iloc[0]
    assert summary["early"] == pytest.approx(diagonal["similarity"].iloc[0])
    assert summary["deep"] == pytest.approx(diagonal["similarity"].iloc[-1])
    assert summary["deep_minus_early"] > 0


# --- layer features through the model ---------------------------------------------------------------------------

def test_capture_gives_n_plus_one_layers_and_embeddings_of_the_same_forward(tiny_model, photo):
    blocks = len(tiny_model.model.visual.transformer.resblocks)
    grid = tiny_model.model.visual.grid_size[0] * tiny_model.model.visual.grid_size[1]
    width = tiny_model.model.visual.conv1.out_channels
    features = extract_features(tiny_model, [photo, photo.rotate(90)], 16, tokens="all")
    assert len(features.layers) == blocks + 1 == 3
    assert features.layer_names == ("patch_embed", "block_1", "block_2")
    assert features.layers[0].shape == (2, grid, width)
    assert all(layer.shape == (2, grid + 1, width) for layer in features.layers[1:])
    # the embedding is ln_post(class token of the last block) @ proj, unit-normalized (open_clip's ViT)
    visual = tiny_model.model.visual
    last_class_token = torch.from_numpy(features.layers[-1][:, 0])
    expected = F.normalize(visual.ln_post(last_class_token) @ visual.proj, dim=-1).detach().numpy()
    np.testing.assert_allclose(features.embeddings, expected, atol=1e-5)
    direct = tiny_model.model.encode_image(to_model_input([model_view(photo, 16, 64)], tiny_model.mean,
                                                          tiny_model.std))
    np.testing.assert_allclose(features.embeddings[0], F.normalize(direct, dim=-1)[0].detach().numpy(), atol=1e-5)


def test_class_token_mode_and_one_forward_per_batch(tiny_model, photo):
    calls = []
    handle = tiny_model.model.visual.conv1.register_forward_hook(lambda *args: calls.append(1))
    try:
        images = [photo, photo.rotate(90), photo.rotate(180)]
        everything = extract_features(tiny_model, images, "hr", tokens="all")
        classes = extract_features(tiny_model, images, "hr", tokens="class", batch_size=2)
    finally:
        handle.remove()
    assert len(calls) == 1 + 2
    embeddings_only = extract_features(tiny_model, images, "hr", tokens=None)
    assert embeddings_only.layers == () and embeddings_only.layer_names == ()
    np.testing.assert_allclose(embeddings_only.embeddings, everything.embeddings, atol=1e-6)
    assert [layer.shape for layer in classes.layers] == [(1, 3, 64)] * 3
    np.testing.assert_allclose(classes.layers[0][0], everything.layers[0].mean(axis=1), atol=1e-6)
    np.testing.assert_allclose(classes.layers[2][0], everything.layers[2][:, 0], atol=1e-6)


def test_hr_features_compared_with_themselves_are_identical(tiny_model, photo):
    layers = extract_features(tiny_model, [photo], "hr").layers
    matrix = similarity_matrix(layers, layers, "cka")
    np.testing.assert_allclose(np.diagonal(matrix), 1.0, atol=1e-6)


def test_features_with_lr_tokens(photo):
    """LR tokens (LR-TK0) are added to the spatial tokens after patchification: the captured patch
    embedding moves by exactly the position-0 tokens; zero tokens change nothing."""
    model = load_model("lr0fm-tiny-ViT", "none", device="cpu")  # with_lr_tokens freezes it: not the shared one
    tokens = LRTokens.for_model(model.model)
    tokened = with_lr_tokens(model, tokens)
    base = extract_features(model, [photo], 16)
    untouched = extract_features(tokened, [photo], 16)
    for mine, theirs in zip(untouched.layers, base.layers):
        np.testing.assert_allclose(mine, theirs, atol=1e-6)
    with torch.no_grad():
        tokens.tokens.normal_(generator=torch.Generator().manual_seed(0))
    moved = extract_features(tokened, [photo], 16)
    np.testing.assert_allclose(moved.layers[0][0] - base.layers[0][0], tokens.at(0).detach().numpy(), atol=1e-5)
    assert not np.allclose(moved.embeddings, base.embeddings, atol=1e-3)


def test_extract_features_rejects_bad_requests(tiny_model, photo):
    with pytest.raises(FeatureRequestError, match="token mode 'cls'"):
        extract_features(tiny_model, [photo], 16, tokens="cls")
    with pytest.raises(FeatureRequestError, match="no images"):
        extract_features(tiny_model, [], 16)
    with pytest.raises(ValueError, match="resolution"):
        extract_features(tiny_model, [photo], -3)


# --- t-SNE and silhouette --------------------------------------------------------------------------------------

def blobs(seed=0, per_class=30, dims=64):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(3, dims)) * 10
    features = np.concatenate([c + rng.normal(size=(per_class, dims)) for c in centers])
    return features, np.repeat(["a", "b", "c"], per_class)


def test_tsne_shape_and_determinism():
    features, _ = blobs()
    first, again = tsne_embedding(features, seed=3), tsne_embedding(features, seed=3)
    assert first.shape == (90, 2)
    np.testing.assert_array_equal(first, again)


def test_tsne_keeps_separable_classes_apart():
    features, labels = blobs()
    coordinates = tsne_embedding(features)
    centroids = np.array([coordinates[labels == c].mean(0) for c in "abc"])
    nearest = np.argmin(((coordinates[:, None] - centroids[None]) ** 2).sum(-1), axis=1)
    assert (np.array(list("abc"))[nearest] == labels).mean() == 1.0


def test_tsne_small_sets_and_bad_input():
    assert tsne_embedding(RNG.normal(size=(6, 3))).shape == (6, 2)  # perplexity capped for 6 points
    with pytest.raises(ValueError, match="n >= 4"):
        tsne_embedding(RNG.normal(size=(3, 5)))
    with pytest.raises(ValueError, match="NaN"):
        tsne_embedding(np.full((10, 3), np.nan))


def test_silhouette_high_when_separable_low_when_shuffled():
    features, labels = blobs()
    assert cluster_separation(features, labels) > 0.8
    shuffled = np.random.default_rng(1).permutation(labels)
    assert abs(cluster_separation(features, shuffled)) < 0.1
    with pytest.raises(ValueError, match="2 to n - 1 classes"):
        cluster_separation(features, np.repeat("a", 90))


# --- dataset t-SNE -----------------------------------------------------------------------------------------------

def results_table(datasets=6, models=4):
    rows = []
    for m in range(models):
        for d in range(datasets):
            hr, low = 0.8, 0.8 * (d + 1) / (datasets + 1)
            rows += [{"model": f"m{m}", "dataset": f"d{d}", "resolution": "hr", "top1": hr, "n_classes": 10},
                     {"model": f"m{m}", "dataset": f"d{d}", "resolution": 16, "top1": low - 0.01 * m, "n_classes": 10}]
    return pd.DataFrame(rows)


def test_dataset_vectors_are_gamma_over_models_and_embed_labelled():
    table = results_table()
    vectors = dataset_robustness_vectors(table, 16)
    assert vectors.shape == (6, 4)
    # Eq. 1 by hand: γ = A_16 / A_HR, Γ = γ (1 − exp(−200 (A_HR − 1/C)²))
    expected = (0.8 * 3 / 7 - 0.01 * 2) / 0.8 * (1 - np.exp(-200 * (0.8 - 0.1) ** 2))
    assert vectors.loc["d2", "m2"] == pytest.approx(expected)
    embedding = dataset_embedding(vectors)
    assert list(embedding["dataset"]) == [f"d{d}" for d in range(6)]
    assert embedding[["x", "y"]].shape == (6, 2) and np.isfinite(embedding[["x", "y"]].to_numpy()).all()


def test_dataset_vectors_drop_incomplete_models_and_refuse_too_few():
    table = results_table()
    partial = table[~((table["model"] == "m3") & (table["dataset"] == "d0"))]
    assert list(dataset_robustness_vectors(partial, 16).columns) == ["m0", "m1", "m2"]
    with pytest.raises(ValueError, match="at least 2 models"):
        dataset_robustness_vectors(table[table["model"] == "m0"], 16)


# --- labeled image sets -----------------------------------------------------------------------------------------

def write_image(path, color):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (20, 20), color).save(path)


def test_image_folder_labels_are_subfolder_names(tmp_path):
    write_image(tmp_path / "set" / "cat" / "a.png", "red")
    write_image(tmp_path / "set" / "cat" / "b.jpg", "red")
    write_image(tmp_path / "set" / "dog" / "c.png", "blue")
    (tmp_path / "set" / "dog" / "notes.txt").write_text("not an image")
    image_set = open_image_set(f"imagefolder:{tmp_path / 'set'}")
    assert image_set.labels == ("cat", "cat", "dog")
    assert [p.name for p in image_set.paths] == ["a.png", "b.jpg", "c.png"]
    with pytest.raises(ValueError, match="not a folder"):
        open_image_set(f"imagefolder:{tmp_path / 'nowhere'}")
    with pytest.raises(ValueError, match="expected 'sample', imagefolder:PATH or csv:PATH"):
        open_image_set(str(tmp_path / "set"))


def test_image_csv_relative_paths_and_errors(tmp_path):
    write_image(tmp_path / "img" / "a.png", "red")
    write_image(tmp_path / "img" / "b.png", "blue")
    good = tmp_path / "list.csv"
    good.write_text("path,label\nimg/a.png,cat\nimg/b.png,dog\n")
    image_set = open_image_set(f"csv:{good}")
    assert image_set.paths == ((tmp_path / "img" / "a.png").resolve(), (tmp_path / "img" / "b.png").resolve())
    assert image_set.labels == ("cat", "dog")
    missing = tmp_path / "missing.csv"
    missing.write_text("path,label\nimg/a.png,cat\nimg/nope.png,dog\n")
    with pytest.raises(ValueError, match="nope.png"):
        open_image_set(f"csv:{missing}")


def test_sample_set_and_balanced_subset():
    sample = sample_image_set()
    assert len(sample.class_counts) >= 2 and all(path.is_file() for path in sample.paths)
    subset = sample.balanced_subset(len(sample.class_counts) * 2)
    assert subset.class_counts == {label: 2 for label in sample.class_counts}
    assert sample.fingerprint() != subset.fingerprint()
