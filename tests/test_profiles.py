"""Profiles: defaults, overrides, preparation of the smoke inputs."""

import json

import pytest

from genseg_lib.profiles import SYNTHREF_PROMPTER, get_profile, prepare


def test_defaults_and_overrides(tmp_path):
    smoke = get_profile("smoke")
    assert (
        smoke.is_smoke and smoke.model == str(SYNTHREF_PROMPTER) and smoke.segmenter == "classical"
    )
    assert smoke.eval_sets == ["synthref:val"]
    paper = get_profile("paper", data_root=str(tmp_path), eval_limit=None)
    assert paper.model == "Qwen/Qwen3-VL-8B-Instruct" and paper.data_root == tmp_path
    assert "refcocog:val" in paper.eval_sets and paper.segmenter.startswith("sam2:")
    # notebook 02 trains the paper's models at the recipe's learning rate and KL weight; only
    # the from-scratch SynthRef prompter takes its own
    assert (paper.grpo_learning_rate, paper.grpo_beta) == (None, None)
    assert (smoke.grpo_learning_rate, smoke.grpo_beta) == (3e-5, 0.0)
    assert smoke.control_learning_rate == paper.control_learning_rate == 1e-4
    assert get_profile("paper-dryrun").grpo_learning_rate is None
    with pytest.raises(ValueError, match="unknown profile"):
        get_profile("laptop")


def test_stage2_settings_are_stage1_with_the_profiles_changes():
    smoke = get_profile("smoke")
    stage1 = smoke.grpo_settings(device="cpu")
    stage2 = smoke.stage2_settings(stage1, no_target_share=0.3)
    assert (stage2.num_generations, stage2.prompts_per_step) == (4, 16)
    assert stage2.num_generations * stage2.prompts_per_step == 64  # as many answers as stage 1
    assert (stage2.learning_rate, stage2.no_target_share, stage2.extra) == (3e-5, 0.3, stage1.extra)
    assert stage1.no_target_share is None and stage1.num_generations == 8  # untouched
    same = smoke.stage2_settings(stage1, {})
    assert (same.num_generations, same.prompts_per_step) == (8, 8)
    given = smoke.stage2_settings(stage1, {"temperature": 0.7})  # replaces the profile's changes
    assert (given.temperature, given.num_generations) == (0.7, 8)
    paper = get_profile("paper")
    assert paper.stage2_settings(paper.grpo_settings(device="cpu")) == paper.grpo_settings(
        device="cpu"
    )
    with pytest.raises(ValueError, match="group_size"):
        smoke.stage2_settings(stage1, {"group_size": 4})


def test_grpo_settings_fill_what_the_notebook_leaves_unset():
    from genseg_lib.train.grpo import recipe_settings

    smoke = get_profile("smoke").grpo_settings(device="cpu")
    assert (smoke.max_steps, smoke.num_generations, smoke.prompts_per_step) == (100, 8, 8)
    assert (smoke.learning_rate, smoke.beta) == (3e-5, 0.0)
    assert smoke.extra == {"freeze_vision_tower": True}  # as control A and reference B
    args, _ = recipe_settings("genseg-r1", {**smoke.overrides(), "model": "m"})
    assert args.freeze_vision_tower is True
    # a value given wins, zero included (not mistaken for unset)
    given = get_profile("smoke").grpo_settings(learning_rate=1e-3, max_steps=7)
    assert (given.learning_rate, given.max_steps) == (1e-3, 7)
    paper = get_profile("paper").grpo_settings(beta=0.0, max_completion_length=64, device="cpu")
    _, grpo = recipe_settings("genseg-r1-g", {**paper.overrides(), "model": "m"})
    assert (grpo.learning_rate, grpo.beta, grpo.max_completion_length) == (1e-6, 0.0, 64)
    # smoke GRPO runs where the shipped tables were made unless asked otherwise
    assert get_profile("smoke").grpo_settings().device == "cpu"
    assert get_profile("smoke").grpo_settings(device="auto").device == "auto"
    assert get_profile("paper").grpo_settings().device == "auto"
    dry = get_profile("paper-dryrun").grpo_settings(temperature=0.7)
    assert dry.extra == {"sam_image_size": 256} and dry.temperature == 0.7
    assert (dry.max_steps, dry.num_generations, dry.max_completion_length) == (2, 2, 24)


def test_prepare_smoke_writes_synthref(tmp_path, tiny_vlm_path):
    prof = get_profile(
        "smoke", data_root=tmp_path / "d", model=str(tiny_vlm_path), synthref_samples=40
    )
    prepare(prof)
    ann = tmp_path / "d" / "synthref" / "annotations.json"
    assert len(json.loads(ann.read_text())["samples"]) == 40
    stamp = ann.stat().st_mtime_ns
    prepare(prof)  # same size and seed: kept
    assert ann.stat().st_mtime_ns == stamp
    prepare(
        get_profile(
            "smoke", data_root=tmp_path / "d", model=str(tiny_vlm_path), synthref_samples=60
        )
    )
    assert len(json.loads(ann.read_text())["samples"]) == 60  # stale size: regenerated
    # a copy from an older generator version is regenerated, then kept
    prof_60 = get_profile(
        "smoke", data_root=tmp_path / "d", model=str(tiny_vlm_path), synthref_samples=60
    )
    data = json.loads(ann.read_text())
    ann.write_text(json.dumps({**data, "generator": data["generator"] - 1}))
    prepare(prof_60)
    assert json.loads(ann.read_text())["generator"] == data["generator"]
    stamp = ann.stat().st_mtime_ns
    prepare(prof_60)
    assert ann.stat().st_mtime_ns == stamp
    with pytest.raises(FileNotFoundError, match="data root"):
        prepare(get_profile("paper", data_root=tmp_path / "missing"))
