"""Dataset loaders of `lr0fm bench`: standard layouts rebuilt in tmp_path, classes matched by name."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image

from lr0fm_core.datasets import DatasetError, build_dataset, build_datasets, class_index_map
from lr0fm_core.datasets.builder import CALTECH101_ALIASES, EUROSAT_ALIASES
from lr0fm_core.zeroshot.labels import class_wnids, get_label_set, subset_indices

# The datasets' own class folders (Caltech101's 101_ObjectCategories, EuroSAT's 2750, UCF-101), as
# listed by tensorflow-datasets 4.9.10 (caltech101_labels.txt, eurosat.py, ucf101_labels.txt).
CALTECH101_FOLDERS = (
    "BACKGROUND_Google Faces Faces_easy Leopards Motorbikes accordion airplanes anchor ant barrel bass beaver "
    "binocular bonsai brain brontosaurus buddha butterfly camera cannon car_side ceiling_fan cellphone chair "
    "chandelier cougar_body cougar_face crab crayfish crocodile crocodile_head cup dalmatian dollar_bill dolphin "
    "dragonfly electric_guitar elephant emu euphonium ewer ferry flamingo flamingo_head garfield gerenuk gramophone "
    "grand_piano hawksbill headphone hedgehog helicopter ibis inline_skate joshua_tree kangaroo ketch lamp laptop "
    "llama lobster lotus mandolin mayfly menorah metronome minaret nautilus octopus okapi pagoda panda pigeon pizza "
    "platypus pyramid revolver rhino rooster saxophone schooner scissors scorpion sea_horse snoopy soccer_ball "
    "stapler starfish stegosaurus stop_sign strawberry sunflower tick trilobite umbrella watch water_lilly "
    "wheelchair wild_cat windsor_chair wrench yin_yang").split()
EUROSAT_FOLDERS = ("AnnualCrop Forest HerbaceousVegetation Highway Industrial Pasture PermanentCrop Residential "
                   "River SeaLake").split()
UCF101_FOLDERS = (
    "ApplyEyeMakeup ApplyLipstick Archery BabyCrawling BalanceBeam BandMarching BaseballPitch Basketball "
    "BasketballDunk BenchPress Biking Billiards BlowDryHair BlowingCandles BodyWeightSquats Bowling "
    "BoxingPunchingBag BoxingSpeedBag BreastStroke BrushingTeeth CleanAndJerk CliffDiving CricketBowling "
    "CricketShot CuttingInKitchen Diving Drumming Fencing FieldHockeyPenalty FloorGymnastics FrisbeeCatch "
    "FrontCrawl GolfSwing Haircut Hammering HammerThrow HandstandPushups HandstandWalking HeadMassage HighJump "
    "HorseRace HorseRiding HulaHoop IceDancing JavelinThrow JugglingBalls JumpingJack JumpRope Kayaking Knitting "
    "LongJump Lunges MilitaryParade Mixing MoppingFloor Nunchucks ParallelBars PizzaTossing PlayingCello "
    "PlayingDaf PlayingDhol PlayingFlute PlayingGuitar PlayingPiano PlayingSitar PlayingTabla PlayingViolin "
    "PoleVault PommelHorse PullUps Punch PushUps Rafting RockClimbingIndoor RopeClimbing Rowing SalsaSpin "
    "ShavingBeard Shotput SkateBoarding Skiing Skijet SkyDiving SoccerJuggling SoccerPenalty StillRings "
    "SumoWrestling Surfing Swing TableTennisShot TaiChi TennisSwing ThrowDiscus TrampolineJumping Typing "
    "UnevenBars VolleyballSpiking WalkingWithDog WallPushups WritingOnBoard YoYo").split()


def write_image(path, size=(40, 30), color=(200, 30, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


def classnames_of(images):
    return [images.label_set.classnames[images[i][1]] for i in range(len(images))]


# ---------------------------------------------------------------- class matching on real class lists

def test_caltech101_folders_in_sorted_order_are_clips_class_order():
    # torchvision sorts the folders and drops BACKGROUND_Google; CLIP's names follow that order
    folders = sorted(f for f in CALTECH101_FOLDERS if f != "BACKGROUND_Google")
    assert class_index_map(folders, get_label_set("caltech101"), CALTECH101_ALIASES) == list(range(101))


def test_eurosat_folders_map_to_clips_rewritten_names():
    indices = class_index_map(EUROSAT_FOLDERS, get_label_set("eurosat"), EUROSAT_ALIASES)
    names = [get_label_set("eurosat").classnames[i] for i in indices]
    assert names[0] == "annual crop land" and names[2] == "brushland or shrubland" and names[-1] == "lake or sea"
    assert indices == list(range(10))


def test_ucf101_camel_case_folders_match_in_ascii_order():
    assert class_index_map(sorted(UCF101_FOLDERS), get_label_set("ucf101")) == list(range(101))


def test_unknown_and_duplicate_native_classes_are_named():
    label_set = get_label_set("dtd")
    with pytest.raises(DatasetError, match="'plaid_ish'"):
        class_index_map(["banded", "plaid_ish"], label_set, where="dtd here")
    with pytest.raises(DatasetError, match="name the same class"):
        class_index_map(["banded", "Banded"], label_set)


# ---------------------------------------------------------------- users' data

def test_imagefolder_classes_are_sorted_folder_names(tmp_path):
    write_image(tmp_path / "zebra" / "a.png")
    write_image(tmp_path / "apple" / "b.jpg")
    write_image(tmp_path / "apple" / "sub" / "c.png")
    write_image(tmp_path / ".hidden" / "d.png")
    (tmp_path / "apple" / "notes.txt").write_text("not an image")
    images = build_dataset(f"imagefolder:{tmp_path}")
    assert images.label_set.classnames == ("apple", "zebra")
    assert len(images) == 3
    assert classnames_of(images) == ["apple", "apple", "zebra"]
    assert images.name == f"imagefolder:{tmp_path.resolve()}"
    image, _ = images[0]
    assert image.mode == "RGB"


def test_imagefolder_with_an_empty_class_folder_names_it(tmp_path):
    write_image(tmp_path / "cat" / "a.png")
    (tmp_path / "dog").mkdir()
    with pytest.raises(DatasetError, match="'dog'"):
        build_dataset(f"imagefolder:{tmp_path}")


def test_csv_paths_are_relative_to_the_csv_and_labels_sorted(tmp_path):
    write_image(tmp_path / "img" / "1.png")
    write_image(tmp_path / "img" / "2.png")
    (tmp_path / "data.csv").write_text("path,label\nimg/1.png,tabby cat\nimg/2.png,beagle\n")
    images = build_dataset(f"csv:{tmp_path / 'data.csv'}")
    assert images.label_set.classnames == ("beagle", "tabby cat")
    assert classnames_of(images) == ["tabby cat", "beagle"]


@pytest.mark.parametrize("text, message", [
    ("file,label\nimg/1.png,cat\n", "columns 'path' and 'label'"),
    ("path,label\nimg/missing.png,cat\nimg/1.png,dog\n", "missing.png"),
    ("path,label\nimg/1.png,\n", "line\\(s\\) 2"),
])
def test_malformed_csv_is_explained(tmp_path, text, message):
    write_image(tmp_path / "img" / "1.png")
    (tmp_path / "data.csv").write_text(text)
    with pytest.raises(DatasetError, match=message):
        build_dataset(f"csv:{tmp_path / 'data.csv'}")


# ---------------------------------------------------------------- the paper's datasets, standard layouts

def test_imagenet_a_folders_map_by_wnid_to_its_200_class_subset(tmp_path):
    wnids = class_wnids("imagenet_a")
    for wnid in (wnids[5], wnids[0]):
        write_image(tmp_path / "imagenet-a" / wnid / "x.jpg")
    images = build_dataset("imagenet_a", tmp_path)
    imagenet = get_label_set("imagenet").classnames
    subset = subset_indices("imagenet_a")
    assert len(images.label_set.classnames) == 200
    # the class of each image is the ImageNet class of its folder's wnid
    assert classnames_of(images) == [imagenet[subset[0]], imagenet[subset[5]]]


def test_wnid_folder_that_is_not_a_class_is_named(tmp_path):
    write_image(tmp_path / "imagenet-r" / "n99999999" / "x.jpg")
    with pytest.raises(DatasetError, match="'n99999999'"):
        build_dataset("imagenet_r", tmp_path)


def test_imagenet_v2_folders_are_class_indices(tmp_path):
    write_image(tmp_path / "imagenetv2-matched-frequency-format-val" / "7" / "a.jpeg")
    write_image(tmp_path / "imagenetv2-matched-frequency-format-val" / "999" / "b.jpeg")
    images = build_dataset("imagenet_v2", tmp_path)
    imagenet = get_label_set("imagenet").classnames
    assert classnames_of(images) == [imagenet[7], imagenet[999]]


def test_sun397_reads_the_partition_1_test_list(tmp_path):
    root = tmp_path / "SUN397"
    (root / "ClassName.txt").parent.mkdir(parents=True)
    (root / "ClassName.txt").write_text("/a/abbey\n/a/apartment_building/outdoor\n")
    write_image(root / "a" / "abbey" / "sun_aaa.jpg")
    write_image(root / "a" / "abbey" / "sun_train.jpg")  # not in the test list
    write_image(root / "a" / "apartment_building" / "outdoor" / "sun_bbb.jpg")
    (root / "Partitions").mkdir()
    (root / "Partitions" / "Testing_01.txt").write_text(
        "/a/apartment_building/outdoor/sun_bbb.jpg\n/a/abbey/sun_aaa.jpg\n")
    images = build_dataset("sun397", tmp_path)
    assert classnames_of(images) == ["apartment building outdoor", "abbey"]


def test_sun397_without_the_test_list_says_where_it_looked(tmp_path):
    (tmp_path / "SUN397").mkdir()
    (tmp_path / "SUN397" / "ClassName.txt").write_text("/a/abbey\n")
    with pytest.raises(DatasetError, match="Testing_01.txt"):
        build_dataset("sun397", tmp_path)


def _ucf101_split(root):
    (root / "ucfTrainTestlist").mkdir(parents=True)
    (root / "ucfTrainTestlist" / "testlist01.txt").write_text(
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\nYoYo/v_YoYo_g02_c03.avi\n")


def test_ucf101_middle_frames_in_either_class_folder_naming(tmp_path):
    root = tmp_path / "ucf101"
    _ucf101_split(root)
    write_image(root / "UCF-101-midframes" / "Apply_Eye_Makeup" / "v_ApplyEyeMakeup_g01_c01.jpg")  # CoOp's naming
    write_image(root / "UCF-101-midframes" / "YoYo" / "v_YoYo_g02_c03.jpg")
    images = build_dataset("ucf101", tmp_path)
    assert classnames_of(images) == ["Apply Eye Makeup", "Yo Yo"]


def test_ucf101_missing_frame_is_named(tmp_path):
    root = tmp_path / "ucf101"
    _ucf101_split(root)
    write_image(root / "UCF-101-midframes" / "YoYo" / "v_YoYo_g02_c03.jpg")
    with pytest.raises(DatasetError, match="v_ApplyEyeMakeup_g01_c01"):
        build_dataset("ucf101", tmp_path)


def test_ucf101_videos_without_pyav_say_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)  # as if PyAV were not installed
    root = tmp_path / "ucf101"
    _ucf101_split(root)
    (root / "UCF-101" / "YoYo").mkdir(parents=True)
    with pytest.raises(DatasetError, match="PyAV"):
        build_dataset("ucf101", tmp_path)


FRAME_COLORS = [(20 + 25 * i, 230 - 25 * i, 60 + 15 * i) for i in range(9)]  # one solid colour per frame


def write_video(path, colors=FRAME_COLORS, size=(64, 48)):
    """An MPEG-4 Part 2 AVI (UCF101's own codec family), one solid-colour frame per colour, with PyAV."""
    av = pytest.importorskip("av")
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        stream.bit_rate = 4_000_000
        for color in colors:
            frame = av.VideoFrame.from_image(Image.new("RGB", size, color))
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def test_ucf101_from_videos_takes_each_videos_middle_frame(tmp_path):
    root = tmp_path / "ucf101"
    _ucf101_split(root)
    write_video(root / "UCF-101" / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g01_c01.avi")
    write_video(root / "UCF-101" / "YoYo" / "v_YoYo_g02_c03.avi", colors=FRAME_COLORS[:4])
    images = build_dataset("ucf101", tmp_path)
    assert classnames_of(images) == ["Apply Eye Makeup", "Yo Yo"]
    for index, middle in ((0, 4), (1, 2)):  # frame n // 2 of n = 9 and n = 4
        image, _ = images[index]
        assert image.mode == "RGB" and image.size == (64, 48)
        mean = np.asarray(image, dtype=float).reshape(-1, 3).mean(axis=0)
        distances = [np.abs(mean - color).max() for color in FRAME_COLORS]
        assert int(np.argmin(distances)) == middle and distances[middle] < 8, (index, mean)


def test_an_unreadable_video_is_named(tmp_path):
    pytest.importorskip("av")
    root = tmp_path / "ucf101"
    _ucf101_split(root)
    write_video(root / "UCF-101" / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g01_c01.avi")
    broken = root / "UCF-101" / "YoYo" / "v_YoYo_g02_c03.avi"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"RIFF\x00\x00not a video")
    images = build_dataset("ucf101", tmp_path)
    with pytest.raises(DatasetError, match="cannot read video .*v_YoYo_g02_c03.avi"):
        images[1]


def test_torchvision_dtd_split_1_test_maps_folder_classes(tmp_path):
    base = tmp_path / "dtd" / "dtd"
    write_image(base / "images" / "banded" / "banded_0001.jpg")
    write_image(base / "images" / "zigzagged" / "zigzagged_0001.jpg")
    write_image(base / "images" / "banded" / "banded_0002.jpg")  # a training image
    (base / "labels").mkdir()
    (base / "labels" / "test1.txt").write_text("banded/banded_0001.jpg\nzigzagged/zigzagged_0001.jpg\n")
    images = build_dataset("dtd", tmp_path)
    assert classnames_of(images) == ["banded", "zigzagged"]


def test_torchvision_eurosat_and_caltech101_use_the_alias_tables(tmp_path):
    write_image(tmp_path / "eurosat" / "2750" / "SeaLake" / "SeaLake_1.jpg")
    write_image(tmp_path / "eurosat" / "2750" / "AnnualCrop" / "AnnualCrop_1.jpg")
    for folder in ("BACKGROUND_Google", "Faces_easy", "yin_yang"):
        write_image(tmp_path / "caltech101" / "101_ObjectCategories" / folder / "image_0001.jpg", color=(9, 9, 9))
    eurosat, caltech = build_datasets(["eurosat", "caltech101"], tmp_path)
    assert classnames_of(eurosat) == ["annual crop land", "lake or sea"]
    assert classnames_of(caltech) == ["centered face", "yin and yang symbol"]
    image, _ = caltech[0]
    assert image.mode == "RGB"


def test_missing_datasets_are_all_named_in_one_message(tmp_path):
    with pytest.raises(DatasetError) as error:
        build_datasets(["dtd", "imagenet_a", "pets"], tmp_path)
    message = str(error.value)
    assert message.startswith("3 datasets cannot be used")
    for path in ("dtd/dtd", "imagenet-a", "oxford-iiit-pet"):
        assert str(tmp_path / path) in message


def test_missing_data_root_and_unknown_names(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        build_datasets(["dtd", "eurosat"], tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="needs --data-root"):
        build_dataset("dtd")
    with pytest.raises(DatasetError, match="unknown dataset 'imagenet-z'.*imagefolder:PATH"):
        build_dataset("imagenet-z", tmp_path)
