"""The lr0fm command line, end to end: outputs, files written, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from lr0fm_core.cli import main
from lr0fm_core.pipeline import model_view

TINY = ["--model", "lr0fm-tiny-ViT", "--pretrained", "none"]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *fragments):
    assert code != 0
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0]


def test_help_lists_every_command():
    result = subprocess.run([sys.executable, "-m", "lr0fm_core.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for command in ("models", "predict", "degrade", "metrics", "optimize-weights"):
        assert command in result.stdout
    for command in ("models", "predict", "degrade", "metrics", "optimize-weights"):
        sub = subprocess.run([sys.executable, "-m", "lr0fm_core.cli", command, "--help"], capture_output=True, text=True)
        assert sub.returncode == 0 and "usage: lr0fm " + command in sub.stdout


def test_predict_json_end_to_end(capsys, tmp_path, labeled_photos):
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\nship\n# a comment\ntruck\n")
    code, out, err = run(capsys, "predict", labeled_photos[0], *TINY, "--labels", labels,
                         "--resolutions", "16", "32", "hr", "--topk", "3", "--json")
    assert code == 0, err
    records = json.loads(out)
    assert [r["resolution"] for r in records] == [16, 32, "hr"]
    for record in records:
        assert len(record["topk"]) == 3
        assert {t["label"] for t in record["topk"]} <= {"cat", "dog", "ship", "truck"}
        assert all(0 <= t["prob"] <= 1 for t in record["topk"])
        assert "meaningless" in record["warning"]
    assert "untrained" in err


def test_predict_text_output_uses_a_benchmark_label_set(capsys, labeled_photos):
    code, out, err = run(capsys, "predict", labeled_photos[0], *TINY, "--labels", "eurosat", "--resolutions", "16", "hr")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 2 and lines[0].strip().startswith("16px") and lines[1].strip().startswith("HR")


def test_degrade_writes_exactly_what_the_model_sees(capsys, tmp_path, labeled_photos):
    out_file = tmp_path / "sub" / "view.png"
    code, out, err = run(capsys, "degrade", labeled_photos[1], "--resolution", "16", "--model-resolution", "224",
                         "--out", out_file)
    assert code == 0, err
    written = np.asarray(Image.open(out_file))
    expected = np.asarray(model_view(Image.open(labeled_photos[1]).convert("RGB"), 16, 224))
    assert written.shape == (224, 224, 3)
    np.testing.assert_array_equal(written, expected)


def test_degrade_options_reach_the_pipeline(capsys, tmp_path, labeled_photos):
    paths = []
    for extra in ([], ["--interpolation", "nearest", "--jpeg-quality", "5"]):
        path = tmp_path / f"v{len(paths)}.png"
        assert run(capsys, "degrade", labeled_photos[1], "--resolution", "16", "--out", path, *extra)[0] == 0
        paths.append(np.asarray(Image.open(path), dtype=np.int16))
    assert np.abs(paths[0] - paths[1]).mean() > 1


@pytest.mark.parametrize("argv, fragments", [
    (["predict", "missing.jpg", *TINY], ["missing.jpg"]),
    (["predict", "{photo}", "--model", "ViT-B-99", "--pretrained", "none"], ["unknown open_clip model"]),
    (["predict", "{photo}", *TINY, "--labels", "imagenet-42k"], ["imagenet-42k"]),
    (["predict", "{photo}", *TINY, "--resolutions", "16", "tiny"], ["resolution"]),
    (["predict", "{photo}", "--model", "lr0fm-tiny-ViT", "--checkpoint", "nowhere.safetensors"], ["checkpoint not found"]),
    (["degrade", "{photo}", "--resolution", "16", "--out", "{tmp}/x.png", "--interpolation", "cubic"], ["interpolation"]),
    (["degrade", "{text}", "--resolution", "16", "--out", "{tmp}/x.png"], ["Cannot load"]),
    (["metrics", "{tmp}/none.csv", "--resolution", "16"], ["none.csv"]),
])
def test_errors_are_one_clear_line(capsys, tmp_path, labeled_photos, argv, fragments):
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    values = {"photo": labeled_photos[0], "tmp": tmp_path, "text": text}
    code, out, err = run(capsys, *[a.format(**values) for a in argv])
    assert_one_line_error(code, err, *fragments)


def test_offline_pretrained_tag_is_one_line_with_guidance(capsys, monkeypatch, labeled_photos):
    monkeypatch.setenv("LR0FM_OFFLINE", "1")
    code, out, err = run(capsys, "predict", labeled_photos[0], "--model", "ViT-B-32", "--pretrained", "openai")
    assert_one_line_error(code, err, "could not be fetched", "--checkpoint PATH")


def test_argument_errors_exit_with_usage(capsys):
    with pytest.raises(SystemExit) as info:
        main(["predict"])
    assert info.value.code == 2
    assert "usage" in capsys.readouterr().err


def write_results(path, rows):
    import csv

    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["model", "dataset", "resolution", "top1", "n_classes"])
        writer.writerows(rows)
    return path


def small_results(tmp_path):
    """Three models on three datasets; model c degrades least, model a most."""
    rows = []
    for model, keep in (("a", 0.2), ("b", 0.5), ("c", 0.8)):
        for dataset, hr, classes in (("imagenet", 0.7, 1000), ("dtd", 0.5, 47), ("eurosat", 0.6, 10)):
            rows += [(model, dataset, "hr", hr, classes), (model, dataset, 16, round(hr * keep, 4), classes)]
    return write_results(tmp_path / "results.csv", rows)


def test_metrics_json_in_percent(capsys, tmp_path):
    code, out, err = run(capsys, "metrics", small_results(tmp_path), "--resolution", "16", "--json", "--per-dataset")
    assert code == 0, err
    report = json.loads(out)
    models = {m["model"]: m for m in report["models"]}
    assert [m["model"] for m in report["models"]] == ["c", "b", "a"]
    assert models["c"]["rank_war"] == 1
    assert models["b"]["SAR"] == pytest.approx(50.0, abs=0.05)  # γ = 0.5 on every dataset
    assert models["a"]["ACC"] == pytest.approx(100 * (0.14 + 0.1 + 0.12) / 3, abs=0.05)
    assert {d["dataset"] for d in report["datasets"]} == {"imagenet", "dtd", "eurosat"}
    assert len(report["per_dataset"]) == 9


def test_optimize_weights_then_metrics_with_those_weights(capsys, tmp_path):
    table = small_results(tmp_path)
    weights_file = tmp_path / "w.json"
    code, out, err = run(capsys, "optimize-weights", table, "--resolution", "16", "--seed", "3", "--out", weights_file)
    assert code == 0, err and "objective" in out
    weights = json.loads(weights_file.read_text())
    assert set(weights) == {"imagenet", "dtd", "eurosat"} and all(0.01 <= w <= 1 for w in weights.values())
    code, out, err = run(capsys, "metrics", table, "--resolution", "16", "--weights", weights_file, "--json")
    assert code == 0, err
    assert {d["dataset"]: d["weight"] for d in json.loads(out)["datasets"]} == pytest.approx(weights)


def test_metrics_rejects_a_malformed_table_in_one_line(capsys, tmp_path):
    table = write_results(tmp_path / "bad.csv", [("a", "dtd", 16, 0.3, 47), ("a", "dtd", 16, 0.3, 47)])
    code, out, err = run(capsys, "metrics", table, "--resolution", "16")
    assert_one_line_error(code, err, "duplicate")
