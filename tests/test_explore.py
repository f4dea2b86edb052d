"""The resolution explorer's logic (lr0fm_core.explore): stops, sweeps, traces, exports, previews, uploads."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from lr0fm_core import explore
from lr0fm_core.explore import Photo, ResolutionSweep
from lr0fm_core.resolution import HR
from lr0fm_core.zeroshot.labels import LabelSetError, default_templates, get_label_set


# --- slider stops ---------------------------------------------------------------------------------------------


def test_slider_stops_for_a_224_px_model_are_half_octaves_from_8_then_hr():
    assert explore.slider_stops(224) == [8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 224, HR]


@pytest.mark.parametrize("model_resolution", [8, 15, 16, 64, 100, 224, 256, 336, 378, 448])
def test_slider_stops_are_sorted_start_at_8_end_at_the_model_then_hr(model_resolution):
    stops = explore.slider_stops(model_resolution)
    numeric = stops[:-1]
    assert stops[-1] == HR and HR not in numeric
    assert numeric == sorted(set(numeric))
    assert numeric[0] == 8 and numeric[-1] == model_resolution
    assert {16, 32, 64, 128} & set(range(model_resolution + 1)) <= set(numeric)


@pytest.mark.parametrize("bad", [7, 0, -64, 64.0, "224", True, None])
def test_slider_stops_refuse_a_model_resolution_below_8_or_not_an_int(bad):
    with pytest.raises(ValueError, match="model resolution"):
        explore.slider_stops(bad)


def test_stop_labels_mark_the_papers_resolutions():
    assert [explore.stop_label(r) for r in (8, 16, 24, 32, 64, 128, 224, HR)] == \
        ["8", "16 ★", "24", "32 ★", "64 ★", "128 ★", "224", "HR"]


# --- sweeps built by hand -------------------------------------------------------------------------------------

CLASSES = ("cat", "dog", "fox", "owl")
# rows: 16, 32, 64, hr. HR's top-1 is "dog" (index 1).
PROBS = np.array([
    [0.10, 0.20, 0.30, 0.40],  # 16: owl > fox > dog -> dog rank 3, top-1 owl
    [0.15, 0.25, 0.50, 0.10],  # 32: fox > dog       -> dog rank 2, top-1 fox
    [0.20, 0.45, 0.30, 0.05],  # 64: dog on top      -> dog rank 1
    [0.10, 0.60, 0.20, 0.10],  # hr: dog on top
])


def hand_sweep(probs=PROBS, resolutions=(16, 32, 64, HR)) -> ResolutionSweep:
    return ResolutionSweep(resolutions, probs, CLASSES)


def test_hr_label_trace_follows_the_hr_top1_label_down():
    trace = hand_sweep().hr_label_trace()
    assert list(trace["resolution"]) == [16, 32, 64, HR]
    assert list(trace["prob"]) == [0.20, 0.25, 0.45, 0.60]
    assert list(trace["rank"]) == [3, 2, 1, 1]


def test_first_change_is_the_highest_resolution_whose_top1_differs_from_hr():
    assert hand_sweep().first_change() == 32  # 64 keeps "dog", 32 says "fox" (16 says "owl", but 32 comes first)


def test_first_change_ignores_the_order_the_resolutions_are_given_in():
    order = [3, 0, 2, 1]  # hr, 16, 64, 32
    sweep = hand_sweep(PROBS[order], tuple(np.array([16, 32, 64, HR], dtype=object)[order]))
    assert sweep.first_change() == 32


def test_first_change_is_none_when_the_top1_label_never_changes():
    steady = np.array([[0.1, 0.5, 0.2, 0.2], [0.1, 0.7, 0.1, 0.1], [0.2, 0.4, 0.3, 0.1]])
    assert ResolutionSweep((8, 64, HR), steady, CLASSES).first_change() is None


def test_rank_counts_only_strictly_more_probable_classes():
    tied = np.array([[0.3, 0.3, 0.3, 0.1], [0.1, 0.6, 0.2, 0.1]])
    trace = ResolutionSweep((16, HR), tied, CLASSES).hr_label_trace()
    assert list(trace["rank"]) == [1, 1]  # at 16 "dog" ties with two others: nobody is more probable


def test_topk_lists_labels_by_decreasing_probability():
    top = hand_sweep().topk(32, k=3)
    assert list(top["rank"]) == [1, 2, 3]
    assert list(top["label"]) == ["fox", "dog", "cat"]
    assert list(top["prob"]) == [0.50, 0.25, 0.15]


def test_topk_refuses_a_resolution_that_was_not_swept():
    with pytest.raises(ValueError, match="resolution 128 is not in this sweep"):
        hand_sweep().topk(128)


@pytest.mark.parametrize("resolutions, probs, message", [
    ((16, 32, 64), PROBS[:3], "HR row"),
    ((16, 16, 64, HR), PROBS, "repeat"),
    ((16, 32, HR), PROBS, "shape"),
])
def test_a_sweep_refuses_inconsistent_data(resolutions, probs, message):
    with pytest.raises(ValueError, match=message):
        ResolutionSweep(resolutions, probs, CLASSES)


def test_to_frame_is_the_topk_of_every_resolution():
    table = hand_sweep().to_frame(k=2)
    expected = pd.DataFrame({
        "resolution": [16, 16, 32, 32, 64, 64, HR, HR],
        "rank": [1, 2] * 4,
        "label": ["owl", "fox", "fox", "dog", "dog", "fox", "dog", "fox"],
        "prob": [0.40, 0.30, 0.50, 0.25, 0.45, 0.30, 0.60, 0.20],
    })
    pd.testing.assert_frame_equal(table, expected, check_dtype=False)


def test_csv_export_round_trips():
    sweep = hand_sweep(np.random.default_rng(0).dirichlet(np.ones(4), size=4))
    read = pd.read_csv(io.StringIO(sweep.to_csv()), dtype={"resolution": str})
    expected = sweep.to_frame().astype({"resolution": str})
    pd.testing.assert_frame_equal(read, expected, check_dtype=False)


def test_json_export_round_trips_and_matches_the_cli_records():
    sweep = hand_sweep(np.random.default_rng(1).dirichlet(np.ones(4), size=4))
    records = json.loads(sweep.to_json(k=3))
    assert [r["resolution"] for r in records] == [16, 32, 64, "hr"]
    for record in records:
        top = sweep.topk(record["resolution"], k=3)
        assert record["topk"] == [{"label": l, "prob": p} for l, p in zip(top["label"], top["prob"])]


def test_exports_carry_a_warning_when_given():
    sweep = hand_sweep()
    assert all(r["warning"] == "untrained" for r in json.loads(sweep.to_json(warning="untrained")))
    assert set(pd.read_csv(io.StringIO(sweep.to_csv(warning="untrained")))["warning"]) == {"untrained"}
    assert "warning" not in sweep.to_csv() and "warning" not in sweep.to_json()


# --- sweep with a model ---------------------------------------------------------------------------------------


def test_sweep_equals_predict_at_every_resolution(tiny_model, photo):
    from lr0fm_core.predict import predict
    from lr0fm_core.zeroshot.head import build_zero_shot_head
    from lr0fm_core.zeroshot.labels import custom_label_set

    head = build_zero_shot_head(tiny_model, custom_label_set(["cat", "dog", "bird", "car", "tree", "boat"],
                                                             ["a photo of a {c}."]))
    stops = explore.slider_stops(tiny_model.resolution)
    tiny_model.feature_cache.clear()
    sweep = explore.sweep(tiny_model, head, photo, stops)
    tiny_model.feature_cache.clear()  # predict encodes again, independently
    for expected in predict(tiny_model, head, photo, stops, topk=5):
        top = sweep.topk(expected.resolution, k=5)
        assert tuple(top["label"]) == expected.labels
        np.testing.assert_allclose(top["prob"], expected.probs, atol=2e-6)


# --- previews ---------------------------------------------------------------------------------------------------


def test_enlarge_nearest_turns_each_pixel_into_a_uniform_block():
    pixels = np.random.default_rng(0).integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    big = np.asarray(explore.enlarge_nearest(Image.fromarray(pixels), 30))
    assert big.shape == (20, 28, 3)  # factor 30 // 7 = 4
    blocks = big.reshape(5, 4, 7, 4, 3)
    assert (blocks == pixels[:, None, :, None, :]).all()


def test_enlarge_nearest_never_shrinks():
    image = Image.new("RGB", (300, 200))
    assert explore.enlarge_nearest(image, 100).size == (300, 200)


def test_camera_preview_shows_the_low_resolution_pixels(photo):
    preview = explore.camera_preview(photo, 16, 448)
    width, height = photo.size
    short = 16 * max(width, height) // min(width, height)
    factor = 448 // short
    assert sorted(preview.size) == sorted((16 * factor, short * factor))
    hr = explore.camera_preview(photo, HR, 100)
    assert max(hr.size) <= 100


# --- photos and labels ------------------------------------------------------------------------------------------


def named_bytes(name: str, data: bytes) -> io.BytesIO:
    file = io.BytesIO(data)
    file.name = name
    return file


def png_bytes(color=(200, 30, 30), size=(40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def test_load_uploads_keeps_good_files_and_names_the_bad_one():
    files = [named_bytes("red.png", png_bytes()), named_bytes("broken.jpg", b"\xff\xd8 not a jpeg"),
             named_bytes("empty.png", b"")]
    photos, errors = explore.load_uploads(files)
    assert [p.name for p in photos] == ["red.png"]
    assert photos[0].image.getpixel((0, 0)) == (200, 30, 30)
    assert len(errors) == 2 and "broken.jpg" in errors[0] and "empty.png" in errors[1]


def test_load_uploads_reads_a_file_again_from_its_start():
    file = named_bytes("red.png", png_bytes())
    file.read()  # e.g. read on an earlier rerun
    photos, errors = explore.load_uploads([file])
    assert not errors and photos[0].image.size == (40, 30)


def test_photo_digest_depends_on_pixels_not_on_the_name():
    a = Photo.of("a.png", Image.new("RGB", (4, 4), "red"))
    b = Photo.of("b.png", Image.new("RGB", (4, 4), "red"))
    c = Photo.of("a.png", Image.new("RGB", (4, 4), "blue"))
    assert a.digest == b.digest != c.digest


def test_label_set_for_a_dataset_and_for_a_custom_list():
    assert explore.label_set_for("eurosat") == get_label_set("eurosat")
    custom = explore.label_set_for(explore.CUSTOM_LABELS, "cat, dog,  red fox")
    assert custom.classnames == ("cat", "dog", "red fox") and custom.templates == default_templates()
    with pytest.raises(LabelSetError, match="at least 2"):
        explore.label_set_for(explore.CUSTOM_LABELS, "cat")


def test_true_label_index_finds_the_label_only_when_it_is_in_the_label_set():
    eagle = Photo.of("eagle", Image.new("RGB", (4, 4)), true_label="bald eagle")
    imagenet = get_label_set("imagenet").classnames
    assert explore.true_label_index(eagle, imagenet) == 22  # ImageNet class 22 is the bald eagle
    assert explore.true_label_index(eagle, ("cat", "dog")) is None
    assert explore.true_label_index(Photo.of("x", Image.new("RGB", (4, 4))), imagenet) is None


def test_export_name_is_a_safe_file_name():
    assert explore.export_name("my photo (1).JPG", "ViT-B-32", "csv") == "lr0fm_my_photo_1_ViT-B-32.csv"
