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
    assert (smoke.grpo_learning_rate, smoke.grpo_beta) == (1e-4, 0.0)
    assert (smoke.grpo_stage1_learning_rate, paper.grpo_stage1_learning_rate) == (3e-5, None)
    assert get_profile("paper-dryrun").grpo_learning_rate is None
    with pytest.raises(ValueError, match="unknown profile"):
        get_profile("laptop")


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
