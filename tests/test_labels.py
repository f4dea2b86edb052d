"""Label sets of the paper's 15 datasets (LR0.FM Tables 7-8) and user label lists."""

import json
from importlib import resources

import pytest

from lr0fm_core.metrics import PAPER_WAR16_WEIGHTS
from lr0fm_core.zeroshot.labels import (
    DATASET_IDS,
    LabelSet,
    LabelSetError,
    canonical_dataset_id,
    class_wnids,
    custom_label_set,
    dataset_info,
    default_templates,
    get_label_set,
    load_label_file,
    parse_label_list,
    resolve_label_set,
    subset_indices,
)

# Table 7 of the paper: display name, year, test size, # classes, focus.
TABLE7 = {
    "imagenet": ("ImageNet", 2009, 50_000, 1000, ("Generic",)),
    "imagenet_a": ("ImageNet-A", 2021, 7_500, 200, ("Generic",)),
    "imagenet_v2": ("ImageNet-V2", 2019, 10_000, 1000, ("Generic",)),
    "imagenet_r": ("ImageNet-R", 2021, 30_000, 200, ("Texture",)),
    "imagenet_sketch": ("ImageNet-Sketch", 2019, 50_000, 1000, ("Edges",)),
    "caltech101": ("Caltech101", 2004, 6_085, 101, ("Generic",)),
    "dtd": ("DTD split-1", 2014, 1_880, 47, ("Edges", "Texture")),
    "food101": ("Food101", 2014, 25_250, 101, ("Fine-grained",)),
    "sun397": ("SUN397", 2010, 19_850, 397, ("Scene understanding",)),
    "cars": ("Stanford Cars", 2013, 8_041, 196, ("Fine-grained",)),
    "fgvc_aircraft": ("FGVC-Aircraft", 2013, 3_333, 100, ("Fine-grained",)),
    "pets": ("Oxford Pets", 2012, 3_669, 37, ("Fine-grained",)),
    "flowers102": ("Oxford Flowers102", 2008, 6_149, 102, ("Fine-grained",)),
    "eurosat": ("EuroSAT", 2019, 5_000, 10, ("Texture",)),
    "ucf101": ("UCF101", 2012, 1_794, 101, ("Scene understanding",)),
}

# Table 8 of the paper: number of prompt templates and the sample templates it prints ([L] -> {c}).
TABLE8 = {
    "imagenet": (80, ["a low resolution photo of a {c}", "a photo of a small {c}", "art of a {c}"]),
    "imagenet_sketch": (80, ["a sketch of the {c}", "a rendering of a {c}", "a drawing of a {c}"]),
    "imagenet_a": (80, ["a sculpture of a {c}", "a close-up photo of the {c}", "the cartoon {c}"]),
    "imagenet_v2": (80, ["a black and white photo of a {c}", "a {c} in a video game", "a toy {c}"]),
    "imagenet_r": (80, ["a cropped photo of the {c}", "a blurry photo of the {c}", "graffiti of a {c}"]),
    "caltech101": (34, ["a photo of a {c}", "a painting of a {c}", "the origami {c}", "the toy {c}"]),
    "dtd": (8, ["a photo of a {c} texture", "a photo of a {c} pattern"]),
    "food101": (1, ["a photo of {c}, a type of food"]),
    "sun397": (2, ["a photo of a {c}", "a photo of the {c}"]),
    "cars": (8, ["a photo of a {c}", "a photo of my new {c}", "a photo of my dirty {c}"]),
    "fgvc_aircraft": (2, ["a photo of a {c}, a type of aircraft", "a photo of the {c}, a type of aircraft"]),
    "pets": (1, ["a photo of a {c}, a type of pet"]),
    "flowers102": (1, ["a photo of a {c}, a type of flower"]),
    "eurosat": (3, ["a centered satellite photo of the {c}", "a centered satellite photo of a {c}"]),
    "ucf101": (48, ["a video of a person doing {c}", "a example of a person practicing {c}"]),
}


def test_dataset_ids_are_the_papers_15_in_order():
    assert DATASET_IDS == (
        "imagenet", "imagenet_a", "imagenet_v2", "imagenet_r", "imagenet_sketch", "caltech101", "dtd",
        "food101", "sun397", "cars", "fgvc_aircraft", "pets", "flowers102", "eurosat", "ucf101",
    )
    # `lr0fm bench` stores results under these ids: the leaderboard's Table 11 preset must find them all
    assert set(DATASET_IDS) == set(PAPER_WAR16_WEIGHTS)


@pytest.mark.parametrize("dataset_id", sorted(TABLE7))
def test_dataset_info_and_class_count_match_table7(dataset_id):
    name, year, test_size, num_classes, focus = TABLE7[dataset_id]
    info = dataset_info(dataset_id)
    assert (info.id, info.name, info.year, info.test_size, info.num_classes, info.focus) == (
        dataset_id, name, year, test_size, num_classes, focus,
    )
    assert len(get_label_set(dataset_id).classnames) == num_classes


@pytest.mark.parametrize("dataset_id", sorted(TABLE8))
def test_templates_match_table8(dataset_id):
    count, samples = TABLE8[dataset_id]
    templates = get_label_set(dataset_id).templates
    assert len(templates) == count
    assert len(set(templates)) == count
    without_final_punctuation = {t.rstrip(".!") for t in templates}
    for sample in samples:
        assert sample in without_final_punctuation


@pytest.mark.parametrize("dataset_id", DATASET_IDS)
def test_every_template_has_one_placeholder_and_prompts_fill_it(dataset_id):
    label_set = get_label_set(dataset_id)
    assert all(t.count("{c}") == 1 for t in label_set.templates)
    classname = label_set.classnames[-1]
    prompts = label_set.prompts(classname)
    assert len(prompts) == len(label_set.templates)
    assert all(classname in p and "{" not in p for p in prompts)


@pytest.mark.parametrize("dataset_id", DATASET_IDS)
def test_class_names_are_unique_and_clean(dataset_id):
    names = get_label_set(dataset_id).classnames
    assert all(isinstance(n, str) and n == n.strip() and n for n in names)
    repeated = {n for n in names if names.count(n) > 1}
    # CLIP's ImageNet names (the paper's protocol, kept verbatim) repeat exactly these two.
    expected = {"missile", "sunglasses"} if len(names) == 1000 else set()
    assert repeated == expected


def test_data_files_name_their_dataset_and_source():
    data = resources.files("lr0fm_core.zeroshot").joinpath("data")
    documents = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in data.iterdir() if p.name.endswith(".json")}
    assert set(documents) == {f"{d}.json" for d in DATASET_IDS} | {"datasets.json"}
    for dataset_id in DATASET_IDS:
        doc = documents[f"{dataset_id}.json"]
        assert doc["id"] == dataset_id
        assert doc["name"] == TABLE7[dataset_id][0]
        assert len(doc["source"]) > 20
    assert "Table 7" in documents["datasets.json"]["source"]


def test_food101_prompt_is_the_papers_example():
    assert get_label_set("food101").prompts("pizza") == ["a photo of pizza, a type of food."]


def test_imagenet_variants_share_imagenet_classes_and_templates():
    imagenet = get_label_set("imagenet")
    for variant in ("imagenet_v2", "imagenet_sketch", "imagenet_a", "imagenet_r"):
        assert get_label_set(variant).templates == imagenet.templates
    for variant in ("imagenet_v2", "imagenet_sketch"):
        assert get_label_set(variant).classnames == imagenet.classnames
        assert class_wnids(variant) == class_wnids("imagenet")
        assert subset_indices(variant) is None


def test_imagenet_wnids_are_the_1000_sorted_synsets():
    wnids = class_wnids("imagenet")
    assert len(wnids) == 1000 and len(set(wnids)) == 1000
    assert list(wnids) == sorted(wnids)  # ImageNet's class order is sorted wnid order
    assert (wnids[0], wnids[-1]) == ("n01440764", "n15075141")  # tench ... toilet tissue
    names = get_label_set("imagenet").classnames
    assert (names[0], names[1], names[6], names[988]) == ("tench", "goldfish", "stingray", "acorn")


# Known starts of the 200-class masks (Hendrycks et al.'s evaluation code); both end with 988 (acorn).
SUBSET_STARTS = {
    "imagenet_a": ([6, 11, 13, 15, 17, 22, 23, 27, 30, 37], "n01498041", "stingray"),
    "imagenet_r": ([1, 2, 4, 6, 8, 9, 11, 13, 22, 23], "n01443537", "goldfish"),
}


@pytest.mark.parametrize("dataset_id", sorted(SUBSET_STARTS))
def test_imagenet_subsets_index_imagenet(dataset_id):
    indices = subset_indices(dataset_id)
    assert len(indices) == 200 and len(set(indices)) == 200
    assert list(indices) == sorted(indices) and 0 <= indices[0] and indices[-1] < 1000
    imagenet_names, imagenet_wnids = get_label_set("imagenet").classnames, class_wnids("imagenet")
    assert get_label_set(dataset_id).classnames == tuple(imagenet_names[i] for i in indices)
    assert class_wnids(dataset_id) == tuple(imagenet_wnids[i] for i in indices)
    start, first_wnid, first_name = SUBSET_STARTS[dataset_id]
    assert list(indices[:10]) == start and indices[-1] == 988
    assert class_wnids(dataset_id)[0] == first_wnid
    assert get_label_set(dataset_id).classnames[0] == first_name


def test_caltech101_has_no_background_class():
    names = get_label_set("caltech101").classnames
    assert "background" not in names
    assert names[:4] == ("off-center face", "centered face", "leopard", "motorbike")


def test_non_imagenet_datasets_have_no_wnids_or_subset():
    with pytest.raises(LabelSetError, match="pets.*no WordNet ids"):
        class_wnids("pets")
    assert subset_indices("pets") is None


@pytest.mark.parametrize("alias, dataset_id", [
    ("imagenet1k", "imagenet"), ("ImageNet-1k", "imagenet"), ("imagenet-a", "imagenet_a"),
    ("ImageNet-V2", "imagenet_v2"), ("imagenet-r", "imagenet_r"), ("sketch", "imagenet_sketch"),
    ("ImageNet-SK", "imagenet_sketch"), ("caltech", "caltech101"), ("DTD split-1", "dtd"), ("Food-101", "food101"),
    ("sun", "sun397"), ("stanford_cars", "cars"), ("Stanford Cars", "cars"), ("aircraft", "fgvc_aircraft"),
    ("FGVC Aircraft", "fgvc_aircraft"), ("oxford_pets", "pets"), ("flowers", "flowers102"),
    (" Oxford Flowers102 ", "flowers102"), ("EUROSAT", "eurosat"), ("UCF-101", "ucf101"),
])
def test_aliases_resolve(alias, dataset_id):
    assert canonical_dataset_id(alias) == dataset_id
    assert get_label_set(alias) is get_label_set(dataset_id)
    assert dataset_info(alias).id == dataset_id


def test_unknown_dataset_lists_known_ids():
    with pytest.raises(LabelSetError, match="unknown dataset 'cifar10'.*imagenet_a.*ucf101") as caught:
        get_label_set("cifar10")
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("text, expected", [
    ("cat\ndog\nbird\n", ["cat", "dog", "bird"]),
    ("cat, dog ,bird", ["cat", "dog", "bird"]),
    ("# my classes\ncat  # a pet\n\n  dog \n#bird\nfox", ["cat", "dog", "fox"]),
    ("cat\ncat\ndog\n  cat  \n", ["cat", "dog"]),
    ("tabby   cat, red  fox,", ["tabby cat", "red fox"]),
    ("Bonaire, Saint Eustatius and Saba\nSpain\n", ["Bonaire, Saint Eustatius and Saba", "Spain"]),
    ("# header\ncat, dog\n", ["cat", "dog"]),
])
def test_parse_label_list(text, expected):
    assert parse_label_list(text) == expected


@pytest.mark.parametrize("text", ["", "# only a comment\n", "cat", "cat\ncat\n", "cat, ,cat"])
def test_parse_label_list_needs_two_labels(text):
    with pytest.raises(LabelSetError, match="at least 2"):
        parse_label_list(text)


def test_custom_label_set_defaults_to_imagenet_templates():
    label_set = custom_label_set(["cat", "dog"])
    assert label_set.name == "custom"
    assert label_set.templates == get_label_set("imagenet").templates == default_templates()
    assert len(label_set.templates) == 80


def test_custom_label_set_from_text_and_own_templates():
    label_set = custom_label_set("cat, dog", templates=["a photo of a {c}.", "a pixelated {c}"], name="pets2")
    assert label_set == LabelSet("pets2", ("cat", "dog"), ("a photo of a {c}.", "a pixelated {c}"))
    assert label_set.prompts("cat") == ["a photo of a cat.", "a pixelated cat"]


@pytest.mark.parametrize("templates, message", [
    (["a photo of a {}."], r"'\{c\}' exactly once, found it 0 times \(CLIP-style"),
    (["a photo"], "exactly once, found it 0 times"),
    (["{c} next to {c}"], "found it 2 times"),
    ([], "no prompt templates"),
    ([3], "not a string"),
])
def test_custom_label_set_rejects_bad_templates(templates, message):
    with pytest.raises(LabelSetError, match=message):
        custom_label_set(["cat", "dog"], templates=templates)


@pytest.mark.parametrize("labels, message", [
    (["cat", "dog", "cat"], r"repeated class labels: \['cat'\]"),
    (["cat", " "], "#1"),
    (["cat", None], "#1"),
    (["cat"], "at least 2"),
    (5, "list of strings or text"),
])
def test_custom_label_set_rejects_bad_labels(labels, message):
    with pytest.raises(LabelSetError, match=message):
        custom_label_set(labels)


def test_label_set_validates_when_built_directly():
    with pytest.raises(LabelSetError, match="no class names"):
        LabelSet("x", (), ("a {c}",))
    with pytest.raises(LabelSetError, match="exactly once"):
        LabelSet("x", ("cat",), ("a cat",))
    with pytest.raises(LabelSetError, match="templates must be a sequence of strings, not one string"):
        LabelSet("x", ("cat", "dog"), "a {c}")


def test_load_label_files(tmp_path):
    text_file = tmp_path / "animals.txt"
    text_file.write_text("# zoo\ncat\ndog\n", encoding="utf-8")
    list_file = tmp_path / "birds.json"
    list_file.write_text(json.dumps(["robin", "crow"]), encoding="utf-8")
    object_file = tmp_path / "cars.JSON"
    object_file.write_text(json.dumps({"classnames": ["sedan", "truck"], "templates": ["a {c} on a road."]}))

    assert load_label_file(text_file) == LabelSet("animals", ("cat", "dog"), default_templates())
    assert load_label_file(str(list_file), templates=["a {c}."]) == LabelSet("birds", ("robin", "crow"), ("a {c}.",))
    assert load_label_file(object_file, templates=["ignored {c}"]).templates == ("a {c} on a road.",)


@pytest.mark.parametrize("filename, content, message", [
    ("bad.json", '["cat", "dog"', "invalid JSON at line 1"),
    ("obj.json", '{"labels": ["cat", "dog"]}', "'classnames' list"),
    ("num.json", "42", "JSON list of class names"),
    ("mixed.json", '["cat", 7]', r"label #1 \(7\)"),
    ("one.json", '["cat"]', "at least 2"),
    ("tmpl.json", '{"classnames": ["cat", "dog"], "templates": "a {c}"}', "'templates' must be a list"),
    ("one.txt", "cat\n", "at least 2"),
])
def test_load_label_file_errors_name_the_file(tmp_path, filename, content, message):
    path = tmp_path / filename
    path.write_text(content, encoding="utf-8")
    with pytest.raises(LabelSetError, match=message) as caught:
        load_label_file(path)
    assert filename in str(caught.value)


def test_load_label_file_missing_or_binary(tmp_path):
    with pytest.raises(LabelSetError, match="nope.txt.*does not exist"):
        load_label_file(tmp_path / "nope.txt")
    with pytest.raises(LabelSetError, match="does not exist or is not a file"):
        load_label_file(tmp_path)
    binary = tmp_path / "blob.txt"
    binary.write_bytes(b"\xff\xfe\x00cat\n")
    with pytest.raises(LabelSetError, match="blob.txt.*not UTF-8"):
        load_label_file(binary)


def test_resolve_label_set(tmp_path, monkeypatch):
    assert resolve_label_set("ImageNet") is get_label_set("imagenet")
    labels = tmp_path / "sun"
    labels.write_text("beach\nforest\n", encoding="utf-8")
    assert resolve_label_set(labels).classnames == ("beach", "forest")
    assert resolve_label_set(str(labels)).classnames == ("beach", "forest")
    monkeypatch.chdir(tmp_path)
    assert resolve_label_set("sun") is get_label_set("sun397")  # a dataset name wins over a same-named file
    assert resolve_label_set("./sun").classnames == ("beach", "forest")
    with pytest.raises(LabelSetError, match="'cifar100' is neither a known dataset .*imagenet.* nor an existing"):
        resolve_label_set("cifar100")
    with pytest.raises(LabelSetError, match="dataset name or a file path"):
        resolve_label_set(None)


def test_fingerprint_is_stable_and_tracks_content():
    base = LabelSet("a", ("cat", "dog"), ("a photo of a {c}.",))
    fingerprint = base.fingerprint()
    assert len(fingerprint) == 64 and int(fingerprint, 16) >= 0
    assert LabelSet("b", ["cat", "dog"], ["a photo of a {c}."]).fingerprint() == fingerprint  # name-independent
    changed = [
        LabelSet("a", ("cat", "dog"), ("a photo of the {c}.",)),
        LabelSet("a", ("cat", "dog"), ("a photo of a {c}.", "a photo of the {c}.")),
        LabelSet("a", ("cat", "wolf"), ("a photo of a {c}.",)),
        LabelSet("a", ("dog", "cat"), ("a photo of a {c}.",)),
        LabelSet("a", ("catdog",), ("a photo of a {c}.",)),  # boundaries between names matter
    ]
    assert len({fingerprint, *(c.fingerprint() for c in changed)}) == 1 + len(changed)
    imagenet = get_label_set("imagenet")
    assert imagenet.fingerprint() == LabelSet("x", imagenet.classnames, imagenet.templates).fingerprint()
    assert imagenet.fingerprint() != get_label_set("imagenet_a").fingerprint()
