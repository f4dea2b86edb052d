"""The "Inside the model" page renders under AppTest with the tiny random-init model."""

from __future__ import annotations

import io
import json

import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from lr0fm_core.lr_tokens import LRTokens, save_lr_tokens
from lr0fm_core.models.loading import load_model

from conftest import REPO

PAGE = REPO / "pages" / "4_Inside_the_model.py"
SCRIPT = f"""
import runpy
from lr0fm_core.ui import session
session.sidebar()
runpy.run_path({str(PAGE)!r}, run_name="__main__")
"""


@pytest.fixture
def app(monkeypatch):
    monkeypatch.setenv("LR0FM_RANDOM_INIT", "1")
    monkeypatch.setenv("LR0FM_APP_MODEL", "lr0fm-tiny-ViT")
    return AppTest.from_string(SCRIPT, default_timeout=120)


def problems(at: AppTest) -> list[str]:
    return [e.value for e in at.exception] + [e.value for e in at.error]


def test_layer_similarity_view(app):
    at = app.run()
    assert problems(at) == []
    # the tiny model takes 64 px: of the paper's resolutions only 16 and 32 are below it
    traces = {c.key: [trace["type"] for trace in json.loads(c.proto.spec)["data"]] for c in at.get("plotly_chart")}
    assert traces["inside_heatmap_16"] == traces["inside_heatmap_32"] == ["heatmap"]
    assert len(traces) == 3 and traces["inside_diagonal"] == ["scatter", "scatter"]  # one line per resolution
    assert "untrained" in " ".join(w.value for w in at.warning)
    assert any("early" in m.value and "deep" in m.value for m in at.markdown)
    assert [b.label for b in at.get("download_button")].count("CSV") == 3  # 2 matrices + the diagonal

    at.radio(key="inside_measure").set_value("cka").run()
    assert problems(at) == []
    assert "CKA" in " ".join(c.value for c in at.caption)

    buffer = io.BytesIO()
    Image.new("RGB", (90, 70), (200, 120, 40)).save(buffer, format="PNG")
    at.radio(key="inside_layers_source").set_value("Your photo").run()
    at.file_uploader(key="inside_upload").set_value(("mine.png", buffer.getvalue(), "image/png")).run()
    assert problems(at) == []
    assert len(at.get("plotly_chart")) == 3

    at.radio(key="inside_layers_source").set_value("Labeled image set").run()
    at.radio(key="inside_tokens").set_value("class").run()
    assert problems(at) == []
    assert len(at.get("plotly_chart")) == 3


def test_feature_tsne_view_with_a_class_folder(app, tmp_path):
    for label, color in (("red", (220, 30, 30)), ("blue", (30, 30, 220))):
        (tmp_path / label).mkdir()
        for i in range(4):
            Image.new("RGB", (40 + i, 40), color).save(tmp_path / label / f"{i}.png")
    at = app.run()
    at.radio(key="inside_view").set_value(at.radio(key="inside_view").options[1]).run()
    at.radio(key="inside_tsne_set_kind").set_value("Class folders").run()
    at.text_input(key="inside_tsne_set_path").input(str(tmp_path)).run()
    assert problems(at) == []
    assert len(at.get("plotly_chart")) == 3  # 16, 32 and HR
    scores = at.dataframe[0].value
    assert list(scores["resolution"]) == ["16×16", "32×32", "HR (64px)"]
    assert scores["silhouette"].between(-1, 1).all()

    at.text_input(key="inside_tsne_set_path").input(str(tmp_path / "missing")).run()
    assert any("is not a folder" in message for message in problems(at))


def test_lr_tokens_side_by_side(app, tmp_path):
    model = load_model("lr0fm-tiny-ViT", "none", device="cpu")
    tokens = LRTokens.for_model(model.model)
    with torch.no_grad():
        tokens.tokens.normal_(generator=torch.Generator().manual_seed(0))
    data = save_lr_tokens(tmp_path / "tokens.safetensors", tokens, model).read_bytes()
    at = app.run()
    at.file_uploader(key="inside_lr_tokens").set_value(("tokens.safetensors", data, "application/octet-stream")).run()
    assert problems(at) == []
    keys = [c.key for c in at.get("plotly_chart")]
    assert keys == ["inside_heatmap_16", "inside_heatmap_16_tokens", "inside_heatmap_32", "inside_heatmap_32_tokens",
                    "inside_diagonal"]
    verdicts = [m.value for m in at.markdown if "diagonal similarity of the first" in m.value]
    assert [v.split(":")[0] for v in verdicts] == ["Without tokens", "With LR tokens"]

    at.file_uploader(key="inside_lr_tokens").set_value(("junk.safetensors", b"not tokens", "application/octet-stream"))
    at.run()
    assert any(message.startswith("LR tokens:") for message in problems(at))


def test_dataset_tsne_view(app):
    at = app.run()
    at.radio(key="inside_view").set_value(at.radio(key="inside_view").options[2]).run()
    assert problems(at) == []
    assert any("results table" in i.value for i in at.info)

    rows = ["model,dataset,resolution,top1,n_classes"]
    for m in range(3):
        for d in range(6):
            rows += [f"m{m},d{d},hr,0.8,10", f"m{m},d{d},16,{0.1 + 0.1 * d - 0.02 * m:.2f},10"]
    at.file_uploader(key="inside_results").set_value(("results.csv", "\n".join(rows).encode(), "text/csv")).run()
    assert problems(at) == []
    [chart] = at.get("plotly_chart")
    points = json.loads(chart.proto.spec)["data"][0]
    assert sorted(points["text"]) == [f"d{d}" for d in range(6)]

    at.file_uploader(key="inside_results").set_value(("bad.csv", b"model,top1\na,2\n", "text/csv")).run()
    assert any("missing required column" in message for message in problems(at))
