"""Tests of the backbone registry against open_clip itself and the paper's printed numbers."""
import re

import open_clip
import pytest
import torch

from lr0fm_core.models.registry import (
    DEFAULT_MODEL_KEY,
    FAMILIES,
    UnknownFamilyError,
    UnknownModelError,
    get_model_spec,
    list_models,
    models_table,
)

# LR0.FM Table 10: "# Params" of the CLIP backbones, printed in whole millions.
PAPER_TABLE10_PARAMS_M = {
    "clip-rn50": 102, "clip-rn101": 120, "clip-rn50x4": 178, "clip-rn50x16": 291, "clip-rn50x64": 623,
    "clip-vit-b-16": 150, "clip-vit-b-32": 151, "clip-vit-l-14": 428, "clip-vit-l-14-336": 428,
}
# LR0.FM Table 2: "# Param" of EVA-B/16, Meta-B/16 (2.5B) and OC-B/16, printed to 0.1M.
PAPER_TABLE2_PARAMS_M = {
    "eva02-b-16": 149.7, "metaclip-vit-b-16-2.5b": 149.6,
    "openclip-vit-b-16-laion2b": 149.6, "openclip-vit-b-16-datacomp": 149.6,
}
# LR0.FM Table 1: "#Backbones" of the families open_clip carries completely.
PAPER_TABLE1_BACKBONES = {"CLIP": 9, "MetaCLIP": 8, "CLIPA": 7, "SigLIP": 8}


def _spec_ids(specs):
    return [spec.key for spec in specs]


def _first_token_sees_last_token(open_clip_name: str) -> bool:
    """Build a 1-layer text tower from the model's text config and probe it: does changing the
    last input token change the output at the first position? (causal: no, bidirectional: yes)"""
    text_cfg = {**open_clip.get_model_config(open_clip_name)["text_cfg"],
                "width": 32, "heads": 2, "layers": 1, "output_tokens": True}
    torch.manual_seed(0)
    tower = open_clip.model._build_text_tower(embed_dim=16, text_cfg=text_cfg).eval()
    tokens = torch.randint(1, 1000, (1, text_cfg["context_length"]))
    changed = tokens.clone()
    changed[0, -1] += 1
    with torch.no_grad():
        _, before = tower(tokens)
        _, after = tower(changed)
    return not torch.allclose(before[0, 0], after[0, 0])


@pytest.mark.parametrize("spec", list_models(), ids=_spec_ids(list_models()))
def test_every_row_is_a_loadable_open_clip_pretrained_pair(spec):
    assert (spec.open_clip_name, spec.pretrained_tag) in open_clip.list_pretrained()


@pytest.mark.parametrize("spec", list_models(), ids=_spec_ids(list_models()))
def test_every_row_builds_the_activation_its_weights_were_trained_with(spec):
    config = open_clip.get_model_config(spec.open_clip_name)
    weights = open_clip.get_pretrained_cfg(spec.open_clip_name, spec.pretrained_tag)
    assert config.get("quick_gelu", False) == weights.get("quick_gelu", False)


@pytest.mark.parametrize("spec", list_models(), ids=_spec_ids(list_models()))
def test_resolution_is_the_open_clip_config_image_size(spec):
    assert spec.resolution == open_clip.get_model_config(spec.open_clip_name)["vision_cfg"]["image_size"]


def test_keys_labels_and_pairs_are_unique_and_keys_are_slugs():
    specs = list_models()
    assert len({s.key for s in specs}) == len(specs)
    assert len({s.label for s in specs}) == len(specs)
    assert len({(s.open_clip_name, s.pretrained_tag) for s in specs}) == len(specs)
    for spec in specs:
        assert re.fullmatch(r"[a-z0-9][a-z0-9.-]*", spec.key), spec.key


@pytest.mark.parametrize("key", ["clip-rn50", "clip-vit-b-32"])
def test_parameter_counts_equal_a_cpu_instantiation(key):
    spec = get_model_spec(key)
    torch.manual_seed(0)
    model = open_clip.create_model(spec.open_clip_name, pretrained=None, device="cpu")
    total = sum(p.numel() for _, p in model.named_parameters())
    image = sum(p.numel() for _, p in model.visual.named_parameters())
    assert spec.params_m == pytest.approx(total / 1e6, abs=5e-4)
    assert spec.image_params_m == pytest.approx(image / 1e6, abs=5e-4)


@pytest.mark.parametrize("key,paper_m", sorted(PAPER_TABLE10_PARAMS_M.items()))
def test_clip_parameter_counts_match_paper_table10(key, paper_m):
    assert round(get_model_spec(key).params_m) == paper_m


@pytest.mark.parametrize("key,paper_m", sorted(PAPER_TABLE2_PARAMS_M.items()))
def test_parameter_counts_match_paper_table2(key, paper_m):
    assert round(get_model_spec(key).params_m, 1) == paper_m


def test_image_tower_is_a_proper_part_of_the_model():
    for spec in list_models():
        assert 0 < spec.image_params_m < spec.params_m, spec.key


def test_families_cover_the_seven_open_clip_families_with_table1_counts():
    assert set(FAMILIES) == {"CLIP", "OpenCLIP", "MetaCLIP", "CLIPA", "SigLIP", "CoCa", "EVA-CLIP"}
    assert {spec.family for spec in list_models()} == set(FAMILIES)
    for family, count in PAPER_TABLE1_BACKBONES.items():
        assert len(list_models(family)) == count, family
    assert sum(len(list_models(family)) for family in FAMILIES) == len(list_models())


def test_family_filter_ignores_case_and_rejects_unknown_families():
    assert [s.family for s in list_models("siglip")] == ["SigLIP"] * 8
    with pytest.raises(UnknownFamilyError, match="BLIP"):
        list_models("BLIP")


def test_default_model_is_openai_clip_vit_b_32():
    spec = get_model_spec(DEFAULT_MODEL_KEY)
    assert (spec.open_clip_name, spec.pretrained_tag) == ("ViT-B-32-quickgelu", "openai")
    assert spec.label == "CLIP ViT-B/32 · WIT-400M · 151M · 224px"


def test_lookup_by_open_clip_pair_and_by_key_in_any_case():
    assert get_model_spec("EVA02-B-16", "merged2b_s8b_b131k").key == "eva02-b-16"
    assert get_model_spec("CLIP-ViT-B-32") is get_model_spec("clip-vit-b-32")
    assert get_model_spec("ViT-B-32", "laion400m_e32") is None  # loadable, but not registered


def test_unknown_key_error_suggests_a_close_match():
    with pytest.raises(UnknownModelError, match="clip-vit-b-32") as excinfo:
        get_model_spec("clip-vit-b-23")
    assert isinstance(excinfo.value, ValueError)
    with pytest.raises(UnknownModelError, match="openclip-vit-b-32-laion2b"):
        get_model_spec("ViT-B-32")


@pytest.mark.parametrize("key", ["clip-vit-b-32", "siglip-vit-b-16", "clipa-vit-l-14-datacomp", "eva02-b-16"])
def test_text_tower_kind_matches_an_instantiated_tiny_tower(key):
    spec = get_model_spec(key)
    expected = "bidirectional" if _first_token_sees_last_token(spec.open_clip_name) else "causal"
    assert spec.text_tower == expected


def test_text_tower_probe_agrees_with_the_known_architectures():
    assert not _first_token_sees_last_token("ViT-B-32-quickgelu")  # CLIP: causal (Radford et al.)
    assert _first_token_sees_last_token("ViT-B-16-SigLIP")  # SigLIP: bidirectional encoder


def test_models_table_has_one_row_per_spec():
    table = models_table()
    assert list(table["key"]) == [spec.key for spec in list_models()]
    assert {"label", "params_m", "resolution", "family"} <= set(table.columns)
