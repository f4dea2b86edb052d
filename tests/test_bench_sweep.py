"""`lr0fm bench`: the single-decode multi-resolution pass, the results database, resume after
`kill -9`, export -> metrics, HR-correct-only robustness, LR tokens, and the Ray backend."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from conftest import photo_folder
from lr0fm_core.bench import ResultsDbError, read_predictions, read_results_db, read_runs, write_runs
from lr0fm_core.bench import results_db
from lr0fm_core.bench.runner import (
    BenchError,
    Evaluation,
    ModelChoice,
    SweepConfig,
    accuracies,
    evaluate,
    parse_model_choice,
    plan_tasks,
    run_sweep,
    sample_indices,
)
from lr0fm_core.cli import main
from lr0fm_core.datasets import build_dataset
from lr0fm_core.metrics import validate_results_table
from lr0fm_core.models.registry import get_model_spec
from lr0fm_core.pipeline import lr_transform
from lr0fm_core.zeroshot.head import build_zero_shot_head

TINY = "lr0fm-tiny-ViT:none"
TINY_BIDIR = "lr0fm-tiny-ViT-bidir:none"
VOLATILE = ["created_at", "seconds"]  # differ between two runs of the same sweep


@pytest.fixture(scope="module")
def photos(labeled_photos) -> Path:
    """The folder of the shared labeled photos (with labels.csv)."""
    return labeled_photos[0].parents[1]


@pytest.fixture
def folder(photos, tmp_path) -> Path:
    return photo_folder(photos, tmp_path / "cifar")


def config(tmp_path, **overrides) -> SweepConfig:
    options = {"db": tmp_path / "results.duckdb", "resolutions": (16, 32, "hr"), "workers": 0} | overrides
    return SweepConfig(**options)


# ---------------------------------------------------------------- the pass

def test_single_decode_pass_equals_separate_evaluation_per_resolution(tiny_model, folder):
    images = build_dataset(f"imagefolder:{folder}")
    head = build_zero_shot_head(tiny_model, images.label_set)
    resolutions = (16, 32, 64, "hr")
    evaluation = evaluate(tiny_model, head.weights, images, resolutions, batch_size=8, workers=1)
    got = accuracies(evaluation)

    targets = np.array([images[i][1] for i in range(len(images))])
    for row in got.itertuples():
        transform = lr_transform(row.resolution, tiny_model.resolution, tiny_model.mean, tiny_model.std)
        with torch.inference_mode():
            batch = torch.stack([transform(images[i][0]) for i in range(len(images))])
            logits = F.normalize(tiny_model.model.encode_image(batch), dim=-1) @ head.weights.T
        ranked = logits.argsort(dim=-1, descending=True).numpy()
        assert row.top1 == pytest.approx((ranked[:, 0] == targets).mean(), abs=0)
        assert row.top5 == pytest.approx((ranked[:, :5] == targets[:, None]).any(axis=1).mean(), abs=0)
        per_class = [(ranked[targets == c, 0] == c).mean() if (targets == c).any() else None
                     for c in range(len(images.label_set.classnames))]
        assert row.per_class_top1 == per_class
    assert sorted(evaluation.images.tolist()) == list(range(len(images)))


def test_accuracies_from_hand_built_predictions():
    # 4 images of classes 0, 0, 1, 2 (of 4 classes); two resolutions
    topk = np.array([
        [[0, 1], [1, 0]],
        [[1, 0], [2, 3]],
        [[1, 2], [1, 0]],
        [[0, 1], [3, 2]],
    ])
    evaluation = Evaluation(("16", "hr"), np.arange(4), np.array([0, 0, 1, 2]), topk, 4, 1.0)
    table = accuracies(evaluation).set_index("resolution")
    assert table.loc["16", "top1"] == 0.5  # images 0 and 2
    assert table.loc["16", "top5"] == 0.75  # image 3's class 2 is not in its top 2
    assert table.loc["16", "per_class_top1"] == [0.5, 1.0, 0.0, None]
    assert table.loc["16", "mean_per_class_top1"] == pytest.approx(0.5)
    assert table.loc["hr", "top1"] == 0.25 and table.loc["hr", "top5"] == 0.75


def test_sample_indices_are_spread_over_the_dataset():
    assert sample_indices(10, None).tolist() == list(range(10))
    assert sample_indices(10, 50).tolist() == list(range(10))
    picked = sample_indices(1000, 4).tolist()
    assert picked == [0, 333, 666, 999]


def test_model_choices():
    assert parse_model_choice(TINY) == ModelChoice("lr0fm-tiny-ViT", "lr0fm-tiny-ViT", "none")
    spec = get_model_spec("clip-vit-b-32")
    assert parse_model_choice("clip-vit-b-32") == ModelChoice("clip-vit-b-32", spec.open_clip_name, spec.pretrained_tag)
    # an open_clip (name, tag) pair of the registry is stored under its registry key
    assert parse_model_choice(f"{spec.open_clip_name}:{spec.pretrained_tag}").model == "clip-vit-b-32"
    assert parse_model_choice("ViT-B-32:none") == ModelChoice("ViT-B-32", "ViT-B-32", "none")
    with pytest.raises(ValueError, match="unknown open_clip model 'ViT-Q-99'"):
        parse_model_choice("ViT-Q-99:none")


def test_plan_runs_only_missing_cells(tmp_path, folder):
    images = build_dataset(f"imagefolder:{folder}")
    n = len(images)
    tiny, bidir = parse_model_choice(TINY), parse_model_choice(TINY_BIDIR)
    done = pd.DataFrame([
        ("lr0fm-tiny-ViT", "none", images.name, "16", "", n, False),
        ("lr0fm-tiny-ViT", "none", images.name, "hr", "", n, True),
        ("lr0fm-tiny-ViT-bidir", "none", images.name, "16", "", n - 1, True),  # other image count: redo
    ], columns=[*results_db.KEY_COLUMNS, "n_images", "has_predictions"])
    tasks, skipped = plan_tasks([tiny, bidir], [images], config(tmp_path), done)
    assert skipped == 2
    assert [(t.model.model, t.resolutions) for t in tasks] == [("lr0fm-tiny-ViT", (32,)),
                                                              ("lr0fm-tiny-ViT-bidir", (16, 32, "hr"))]
    tasks, skipped = plan_tasks([tiny], [images], config(tmp_path, save_predictions=True), done)
    assert skipped == 1 and tasks[0].resolutions == (16, 32)  # 16 has no stored predictions


# ---------------------------------------------------------------- the database

def run_rows(top1: float, resolutions=("16", "hr"), model="m", dataset="d") -> pd.DataFrame:
    return pd.DataFrame([{
        "model": model, "pretrained": "none", "dataset": dataset, "resolution": r, "lr_tokens": "",
        "n_images": 4, "n_classes": 3, "top1": top1, "top5": 1.0, "mean_per_class_top1": top1,
        "per_class_top1": [top1, None, 0.0], "weights_id": "w", "package_version": "v", "device": "cpu",
        "precision": "fp32", "seconds": 0.5, "created_at": pd.Timestamp("2025-01-01"), "has_predictions": True,
    } for r in resolutions])


def prediction_rows(resolutions=("16", "hr"), model="m", dataset="d", image=(0, 1, 2, 3)) -> pd.DataFrame:
    rows = [{"model": model, "pretrained": "none", "dataset": dataset, "resolution": r, "lr_tokens": "",
             "image": i, "target": 1, "pred1": 1, "pred2": 0, "pred3": 2, "pred4": None, "pred5": None}
            for r in resolutions for i in image]
    return pd.DataFrame(rows)


def test_writes_are_idempotent_per_key(tmp_path):
    db = tmp_path / "r.duckdb"
    write_runs(db, run_rows(0.5), prediction_rows())
    write_runs(db, run_rows(0.5), prediction_rows())
    assert len(read_runs(db)) == 2
    assert len(read_predictions(db)) == 8
    write_runs(db, run_rows(0.75, resolutions=("hr",)), prediction_rows(resolutions=("hr",), image=(0, 1)))
    runs = read_runs(db).set_index("resolution")
    assert runs.loc["hr", "top1"] == 0.75 and runs.loc["16", "top1"] == 0.5
    assert runs.loc["hr", "per_class_top1"] == [0.75, None, 0.0]
    predictions = read_predictions(db)
    assert (predictions["resolution"] == "hr").sum() == 2 and (predictions["resolution"] == 16).sum() == 4


def test_a_failing_write_leaves_no_partial_rows(tmp_path):
    db = tmp_path / "r.duckdb"
    write_runs(db, run_rows(0.5, model="kept"))
    broken = prediction_rows(model="new")
    broken["image"] = "not a number"
    with pytest.raises(Exception):
        write_runs(db, run_rows(0.9, model="new"), broken)
    assert read_runs(db)["model"].tolist() == ["kept", "kept"]


def test_results_db_reads_as_the_engine_table_with_registry_facts(tmp_path):
    db = tmp_path / "r.duckdb"
    spec = get_model_spec("clip-vit-b-32")
    rows = run_rows(0.5, model="clip-vit-b-32")
    rows["pretrained"] = spec.pretrained_tag
    write_runs(db, pd.concat([rows, run_rows(0.25, model="ViT-B-32")]))
    table = validate_results_table(read_results_db(db))
    assert list(table.columns[:5]) == ["model", "dataset", "resolution", "top1", "n_classes"]
    by_model = table.drop_duplicates("model").set_index("model")
    assert set(by_model.index) == {"clip-vit-b-32", "ViT-B-32:none"}
    assert by_model.loc["clip-vit-b-32", "family"] == "CLIP"
    assert by_model.loc["clip-vit-b-32", "params"] == spec.params_m
    assert np.isnan(by_model.loc["ViT-B-32:none", "params"])
    assert table["resolution"].tolist() == ["16", "hr"] * 2 or table["resolution"].tolist() == [16, "hr"] * 2


def test_files_that_are_not_results_databases(tmp_path):
    (tmp_path / "text.duckdb").write_text("hello")
    with pytest.raises(ResultsDbError, match="not a DuckDB results database|cannot open"):
        read_runs(tmp_path / "text.duckdb")
    import duckdb

    duckdb.connect(str(tmp_path / "other.duckdb")).execute("CREATE TABLE t (x INTEGER)").close()
    with pytest.raises(ResultsDbError, match="not an lr0fm results database"):
        read_runs(tmp_path / "other.duckdb")
    with pytest.raises(ResultsDbError, match="does not exist"):
        read_results_db(tmp_path / "absent.duckdb")


# ---------------------------------------------------------------- the command line

def bench_args(db: Path, datasets: list[str], *extra: str) -> list[str]:
    return ["bench", "--models", TINY, "--datasets", *datasets, "--db", str(db), "--workers", "0",
            "--resolutions", "16", "32", "64", "128", "hr", *extra]


def test_killed_sweep_resumes_to_exactly_the_uninterrupted_rows(photos, tmp_path):
    small = photo_folder(photos, tmp_path / "small")
    large = photo_folder(photos, tmp_path / "large", space="imagenet", copies=2)  # long enough to be killed in
    last = photo_folder(photos, tmp_path / "last")
    datasets = [f"imagefolder:{p}" for p in (small, large, last)]
    db = tmp_path / "killed.duckdb"
    command = [sys.executable, "-m", "lr0fm_core.cli", *bench_args(db, datasets)]
    environment = os.environ | {"PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               env=environment)
    try:
        for line in process.stdout:  # the first pass is committed before its line is printed
            if str(small) in line and "top-1" in line:
                break
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=60)
        process.stdout.close()
    assert process.returncode == -signal.SIGKILL
    partial = read_runs(db)
    assert 0 < len(partial) < 15, "the sweep was not killed partway"
    assert partial.groupby("dataset").size().eq(5).all()  # whole passes only

    assert subprocess.run(command, capture_output=True, env=environment).returncode == 0
    reference = tmp_path / "reference.duckdb"
    assert main(bench_args(reference, datasets)) == 0
    resumed, uninterrupted = read_runs(db), read_runs(reference)
    assert len(resumed) == 15
    pd.testing.assert_frame_equal(resumed.drop(columns=VOLATILE), uninterrupted.drop(columns=VOLATILE))
    # the rows of the first pass were not rewritten by the resumed sweep
    first = resumed[resumed["dataset"] == f"imagefolder:{small}"]
    assert first["created_at"].tolist() == partial[partial["dataset"] == f"imagefolder:{small}"]["created_at"].tolist()


def test_rerunning_a_finished_sweep_writes_nothing(tmp_path, folder, capsys):
    db = tmp_path / "r.duckdb"
    assert main(bench_args(db, [f"imagefolder:{folder}"])) == 0
    before = read_runs(db)
    assert main(bench_args(db, [f"imagefolder:{folder}"])) == 0
    assert "0 of 0 passes written" in capsys.readouterr().out
    pd.testing.assert_frame_equal(read_runs(db), before)


def test_export_then_metrics_round_trip(photos, tmp_path, capsys):
    first, second = photo_folder(photos, tmp_path / "a"), photo_folder(photos, tmp_path / "b", space="imagenet")
    db = tmp_path / "r.duckdb"
    args = ["bench", "--models", TINY, TINY_BIDIR, "--datasets", f"imagefolder:{first}", f"imagefolder:{second}",
            "--db", str(db), "--workers", "0", "--resolutions", "16", "hr"]
    assert main(args) == 0
    out = tmp_path / "table.csv"
    assert main(["export", "--db", str(db), "--out", str(out)]) == 0
    capsys.readouterr()

    exported = pd.read_csv(out)
    assert list(exported.columns[:5]) == ["model", "dataset", "resolution", "top1", "n_classes"]
    assert len(exported) == 8

    assert main(["metrics", str(out), "--resolution", "16", "--json"]) == 0
    printed = capsys.readouterr()
    from_csv = json.loads(printed.out)
    assert "untrained" in printed.err and "lr0fm-tiny-ViT:none" in printed.err  # random-init runs say so
    assert main(["metrics", "--db", str(db), "--resolution", "16", "--json"]) == 0
    printed = capsys.readouterr()
    assert json.loads(printed.out) == from_csv and "untrained" in printed.err

    runs = read_runs(db)
    for model in from_csv["models"]:
        name = model["model"].split(":")[0]
        top1 = runs[runs["model"] == name].pivot(index="dataset", columns="resolution", values="top1")
        gamma = np.where(top1["hr"] > 0, top1["16"] / top1["hr"].where(top1["hr"] > 0, 1), 0)
        assert model["SAR"] == pytest.approx(100 * gamma.mean())
        assert model["ACC"] == pytest.approx(100 * top1["16"].mean())


def test_hr_correct_only_metrics_from_stored_predictions(photos, tmp_path, capsys):
    first, second = photo_folder(photos, tmp_path / "a"), photo_folder(photos, tmp_path / "b", space="imagenet")
    db = tmp_path / "r.duckdb"
    args = ["bench", "--models", TINY, TINY_BIDIR, "--datasets", f"imagefolder:{first}", f"imagefolder:{second}",
            "--db", str(db), "--workers", "0", "--resolutions", "16", "hr", "--save-predictions"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["metrics", "--db", str(db), "--resolution", "16", "--hr-correct-only", "--json"]) == 0
    report = {m["model"]: m for m in json.loads(capsys.readouterr().out)["models"]}

    predictions = read_predictions(db)
    for model, rows in predictions.groupby("model"):
        scores = []
        for _, per_dataset in rows.groupby("dataset"):
            hr = per_dataset[per_dataset["resolution"] == "hr"].set_index("image")
            low = per_dataset[per_dataset["resolution"] == 16].set_index("image")
            right_at_hr = [i for i in hr.index if hr.loc[i, "pred1"] == hr.loc[i, "target"]]
            kept = [i for i in right_at_hr if low.loc[i, "pred1"] == low.loc[i, "target"]]
            scores.append(len(kept) / len(right_at_hr) if right_at_hr else 0.0)
        assert report[model]["SAR_hr_correct"] == pytest.approx(100 * np.mean(scores))
    assert main(["metrics", str(tmp_path / "x.csv"), "--resolution", "16", "--hr-correct-only"]) == 2
    assert "--db" in capsys.readouterr().err


def test_missing_dataset_fails_before_any_model_loads(tmp_path, monkeypatch, capsys):
    def no_model_loading(*args, **kwargs):
        raise AssertionError("a model was loaded before the datasets were checked")

    monkeypatch.setattr("lr0fm_core.bench.runner.load_model", no_model_loading)
    code = main(bench_args(tmp_path / "r.duckdb", ["dtd", "imagenet_r"], "--data-root", str(tmp_path)))
    error = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in error
    assert str(tmp_path / "dtd" / "dtd") in error and str(tmp_path / "imagenet-r") in error
    assert not (tmp_path / "r.duckdb").exists()


# ---------------------------------------------------------------- LR tokens

def test_zero_lr_tokens_give_the_plain_models_accuracy_under_their_own_key(tmp_path, folder, tiny_model):
    from lr0fm_core.lr_tokens import LRTokens, save_lr_tokens

    checkpoint = save_lr_tokens(tmp_path / "tokens.safetensors", LRTokens.for_model(tiny_model.model), tiny_model)
    cfg = config(tmp_path)
    assert not run_sweep([TINY], [f"imagefolder:{folder}"], cfg, progress=False).failed
    tokened = SweepConfig(**{**cfg.__dict__, "lr_tokens": checkpoint})
    assert not run_sweep([TINY], [f"imagefolder:{folder}"], tokened, progress=False).failed
    table = read_results_db(cfg.db)
    plain = table[table["lr_tokens"] == ""].set_index("resolution")["top1"]
    with_tokens = table[table["lr_tokens"] == str(checkpoint.resolve())]
    assert with_tokens["model"].unique().tolist() == ["lr0fm-tiny-ViT:none+lr-tokens:tokens"]
    pd.testing.assert_series_equal(with_tokens.set_index("resolution")["top1"], plain)  # zero tokens change nothing
    with pytest.raises(BenchError, match="trained for lr0fm-tiny-ViT"):
        run_sweep([TINY_BIDIR], [f"imagefolder:{folder}"], tokened, progress=False)


# ---------------------------------------------------------------- Ray

def test_ray_backend_equals_local_and_reports_failed_tasks(photos, tmp_path, monkeypatch):
    ray = pytest.importorskip("ray", reason="Ray is a test extra (pip install .[test])")
    from lr0fm_core.bench import ray_backend

    monkeypatch.setenv("LR0FM_OFFLINE", "1")  # pretrained weights fail fast: a task that fails
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # else Ray writes a token file into the home folder
    monkeypatch.setattr(ray_backend, "MAX_RETRIES", 1)
    first, second = photo_folder(photos, tmp_path / "a"), photo_folder(photos, tmp_path / "b", space="imagenet")
    datasets = [f"imagefolder:{first}", f"imagefolder:{second}"]
    models = [TINY, TINY_BIDIR, "ViT-B-32:openai"]
    local = run_sweep(models, datasets, config(tmp_path, db=tmp_path / "local.duckdb"), progress=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = run_sweep(models, datasets, config(tmp_path, db=tmp_path / "ray.duckdb"), backend="ray",
                           progress=False)
    finally:
        ray.shutdown()
    for summary in (local, remote):
        assert len(summary.written) == 4
        assert sorted((str(t.model), t.dataset) for t, _ in summary.failed) == sorted(
            (str(parse_model_choice("ViT-B-32:openai")), d) for d in datasets)
    assert "WeightsUnavailableError" in remote.failed[0][1]
    columns = [c for c in results_db.RUN_COLUMNS if c not in VOLATILE]
    pd.testing.assert_frame_equal(read_runs(tmp_path / "ray.duckdb")[columns],
                                  read_runs(tmp_path / "local.duckdb")[columns])


def test_ray_backend_without_ray_says_how_to_install_it(tmp_path, folder, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail as if Ray were not installed
    with pytest.raises(BenchError, match="needs Ray.*pip install"):
        run_sweep([TINY], [f"imagefolder:{folder}"], config(tmp_path), backend="ray", progress=False)
    with pytest.raises(BenchError, match="--address is for --backend ray"):
        run_sweep([TINY], [f"imagefolder:{folder}"], config(tmp_path), address="auto", progress=False)
    assert not (tmp_path / "results.duckdb").exists()
