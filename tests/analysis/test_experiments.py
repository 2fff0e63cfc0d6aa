"""Experiment helpers: subset metrics from an evaluation, seed spread tables, galleries,
GRPO settings as typed recipe overrides."""

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from genseg_lib.analysis.experiments import SINGLE_TARGET_TYPES, sweep_table
from genseg_lib.analysis.runs import answers_from_runs, subset_summary
from genseg_lib.analysis.tables import mean_spread, seed_table
from genseg_lib.analysis.viz import answer_gallery
from genseg_lib.data.synthref import synthref_samples
from genseg_lib.evaluate import OraclePrompter, evaluate
from genseg_lib.segment.classical import GrabCutSegmenter


def test_subset_summary_and_gallery(tmp_path):
    samples = synthref_samples("val", 30, seed=0)
    evaluate(
        samples,
        OraclePrompter(),
        GrabCutSegmenter(),
        tmp_path / "run",
        meta={"dataset": "synthref:val"},
    )
    single = subset_summary(tmp_path / "run", SINGLE_TARGET_TYPES)
    assert single["n_samples"] == sum(s.query_type in SINGLE_TARGET_TYPES for s in samples)
    assert math.isnan(single["overall"]["N_acc"]) and single["dataset"] == "synthref:val"
    nt = subset_summary(tmp_path / "run", ["no_target"])
    assert nt["overall"]["N_acc"] == 1.0
    assert subset_summary(tmp_path / "run")["n_samples"] == 30
    answers, masks = answers_from_runs(
        samples[:3], {"oracle": tmp_path / "run"}, GrabCutSegmenter()
    )
    assert len(answers["oracle"]) == 3 and masks["oracle"][0].shape == (128, 128)
    assert len(answer_gallery(samples[:3], answers, masks).axes) == 3


def test_mean_spread_and_seed_table():
    assert mean_spread([1.0, 3.0]) == (2.0, pytest.approx(math.sqrt(2)))
    assert mean_spread([5.0]) == (5.0, 0.0)
    s = [{"n_samples": 4, "overall": {"gIoU": 0.5}}, {"n_samples": 4, "overall": {"gIoU": 0.7}}]
    t = seed_table({"r": s}, ["gIoU"])
    assert t.iloc[0]["gIoU"] == pytest.approx(60.0) and t.iloc[0]["seeds"] == 2
    assert t.iloc[0]["gIoU ±"] == pytest.approx(14.142, abs=1e-3)


def test_grpo_completions_fit_a_two_object_answer():
    """A completion cut at max_completion_length can never earn the multi-target rewards."""
    from genseg_lib.analysis.experiments import GRPOSettings
    from genseg_lib.stage0.labels import label_text
    from genseg_lib.stage0.prompter import build_domain_tokenizer

    tok = build_domain_tokenizer()
    two = [s for s in synthref_samples("val", 200, seed=0) if len(s.gt_masks) == 2]
    longest = max(len(tok.encode(label_text(s, "oracle"))) + 1 for s in two)  # + <|im_end|>
    assert two and longest <= GRPOSettings().max_completion_length


def test_grpo_settings_are_recipe_overrides():
    from genseg_lib.analysis.experiments import GRPOSettings
    from genseg_lib.train.grpo import recipe_settings

    settings = GRPOSettings(
        max_steps=40,
        num_generations=4,
        prompts_per_step=3,
        no_target_share=0.3,
        multi_target_share=0.35,
        device="cpu",
        extra={"beta": 0.2},
    )
    args, grpo = recipe_settings("genseg-r1-g", {**settings.overrides(), "model": "m"})
    assert grpo.per_device_train_batch_size == 12 and grpo.num_generations == 4
    assert grpo.save_steps == 10 and grpo.use_cpu and not grpo.gradient_checkpointing
    assert grpo.beta == 0.2 and grpo.lr_scheduler_type == "constant"
    assert args.reward_funcs == ["format", "no_target", "sam_mask_iou"]
    assert (args.no_target_share, args.multi_target_share) == (0.3, 0.35)
    # unset learning rate and KL weight leave the recipe's (the paper's) in place
    assert (grpo.learning_rate, args.recipe) == (1e-6, "genseg-r1-g")
    _, grpo = recipe_settings("genseg-r1", {**GRPOSettings(device="cpu").overrides(), "model": "m"})
    assert (grpo.learning_rate, grpo.beta) == (1e-6, 0.04)
    smoke = GRPOSettings(learning_rate=1e-4, beta=0.0, device="cpu").overrides()
    _, grpo = recipe_settings("genseg-r1", {**smoke, "model": "m"})
    assert (grpo.learning_rate, grpo.beta) == (1e-4, 0.0)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            GRPOSettings(device="cuda").overrides()
        assert GRPOSettings(device="auto").overrides()["use_cpu"] is True


def test_stage1_plan_adds_multi_target_queries_only_when_asked():
    from genseg_lib.analysis.experiments import SINGLE_TARGET_TYPES, GRPOSettings, stage1_plan

    settings = GRPOSettings(max_steps=40, device="cpu")
    same, types = stage1_plan(settings, SINGLE_TARGET_TYPES)
    assert same == settings and types == SINGLE_TARGET_TYPES
    assert same.multi_target_share is None
    planned, types = stage1_plan(settings, SINGLE_TARGET_TYPES, 0.3)
    assert types == ["attribute", "spatial", "ordinal", "reasoning", "multi"]
    assert planned.multi_target_share == 0.3 and planned.max_steps == 40
    assert planned.overrides()["multi_target_share"] == 0.3
    assert settings.multi_target_share is None  # stage 2, built from these, is unchanged
    # a profile whose stage-1 set is not filtered by type (paper: RefCOCOg) stays unfiltered
    planned, types = stage1_plan(settings, None, 0.3)
    assert types is None and planned.multi_target_share == 0.3


def test_finished_runs_are_reused_only_with_the_same_settings(tmp_path):
    """A finished GRPO or supervised folder is returned as is for the settings it was trained
    with (device aside), and is an error, naming the field, for any other."""
    from genseg_lib.analysis.experiments import GRPOSettings, grpo_run, supervised_control
    from genseg_lib.runinfo import run_info, write_run_info
    from genseg_lib.stage0.warmstart import WarmStartConfig, run_record
    from genseg_lib.train.grpo import grpo_run_info, recipe_settings

    out = tmp_path / "grpo"
    trained = GRPOSettings(max_steps=8, learning_rate=3e-5, device="cpu")
    place = dict(dataset="synthref:train", root=str(tmp_path), segmenter="classical")
    overrides = {**trained.overrides(), **place, "model": "m", "out": str(out), "seed": 1}
    write_run_info(out, grpo_run_info(*recipe_settings("genseg-r1-g", overrides)))
    (out / "trainer_state.json").write_text("{}")

    def run(settings, seed=1):
        return grpo_run(
            "genseg-r1-g", "m", out, place["dataset"], tmp_path, "classical", settings, seed=seed
        )

    assert run(trained) == out  # reused, no training
    with pytest.raises(ValueError, match=r"differs in \['settings.grpo.learning_rate'\]"):
        run(GRPOSettings(max_steps=8, learning_rate=1e-4, device="cpu"))
    with pytest.raises(ValueError, match=r"\['seed', 'settings.grpo.seed'\]"):
        run(trained, seed=0)

    control = tmp_path / "control"
    cfg = WarmStartConfig(
        out=str(control),
        steps=10,
        single_object_steps=0,
        labels="grounding",
        device="cuda",
        lr=1e-4,
        warmup=0,
        eval_every=10,
        eval_samples=16,
        save_every=2,
        seed=1002,
        init="m",
    )
    # a control made under earlier label rules (no record of them) is refused, not reused
    write_run_info(control, run_info("supervised", dataclasses.asdict(cfg), cfg.seed))
    (control / "warmstart.json").write_text("{}")
    with pytest.raises(ValueError, match=r"differs in \['label_rules', 'synthref_generator'\]"):
        supervised_control("m", control, 10, 2, 1e-4, "grounding", "cpu")
    write_run_info(control, run_record(cfg))
    assert supervised_control("m", control, 10, 2, 1e-4, "grounding", "cpu") == control
    with pytest.raises(ValueError, match=r"differs in \['settings.lr'\]"):
        supervised_control("m", control, 10, 2, 3e-5, "grounding", "cpu")
    with pytest.raises(ValueError, match=r"settings.labels"):
        supervised_control("m", control, 10, 2, 1e-4, "oracle", "cpu")
    # a frozen tower is another run: the warm start's vision_lr_scale 0
    with pytest.raises(ValueError, match=r"differs in \['settings.vision_lr_scale'\]"):
        supervised_control("m", control, 10, 2, 1e-4, "grounding", "cpu", True)


def test_stage0_table_sets_scores_beside_targets(tmp_path):
    import json

    from genseg_lib.analysis.experiments import stage0_table

    summary = {"n_samples": 435, "overall": {"box_mIoU": 0.64, "gIoU": 0.48}}
    assert stage0_table(tmp_path, summary) is None  # not a warm-started checkpoint
    info = {
        "config": {"single_object_steps": 1500, "batch_size": 16},
        "steps_done": 7500,
        "history": [{"step": 7500, "minutes": 27.0}],
        "vision_history": [{"step": 1500, "minutes": 2.5}],
    }
    (tmp_path / "warmstart.json").write_text(json.dumps(info))
    t = stage0_table(tmp_path, summary)
    assert t["metric"].tolist() == ["box_mIoU"]
    assert t["target"].tolist() == [50.0] and t["measured"].tolist() == [64.0]
    assert t["met"].tolist() == [True] and set(t["n"]) == {435}
    t = stage0_table(tmp_path, {"n_samples": 435, "overall": {"box_mIoU": 0.499}})
    assert t["met"].tolist() == [False]
    assert t["trained"][0].startswith(
        "1500 vision-pretraining steps (batch 16) + 7500 supervised steps"
    )
    assert "30 min" in t["trained"][0]
    # a GPU run feeds the tower more scenes per step; its last log (every 100) may precede
    # the configured last step
    info["config"].update(vision_batch_size=64, vision_steps=1550)
    (tmp_path / "warmstart.json").write_text(json.dumps(info))
    trained = stage0_table(tmp_path, summary)["trained"][0]
    assert trained.startswith("1550 vision-pretraining steps (batch 64) + 7500 supervised steps")
    assert "batch 16, 30 min" in trained


def summ(**overall):
    return {"n_samples": 10, "overall": overall}


def test_grpo_goals_hand_computed():
    from genseg_lib.analysis.experiments import grpo_goals

    base = {
        "single": summ(box_mIoU=0.52, gIoU=0.40),
        "no_target": summ(N_acc=0.10),
        "targets": summ(T_acc=0.99),
        "multi": summ(target_mIoU=0.30),
    }
    stage1 = {"single": [summ(gIoU=0.50), summ(gIoU=0.46)]}  # mean 48: +8 over base
    stage2 = {
        "single": [summ(gIoU=0.47), summ(gIoU=0.47)],
        "no_target": [summ(N_acc=0.9), summ(N_acc=0.7)],
        "targets": [summ(T_acc=0.95), summ(T_acc=0.93)],
        "multi": [summ(target_mIoU=0.45), summ(target_mIoU=0.35)],
    }
    control = {"single": [summ(gIoU=0.44), summ(gIoU=0.44)]}
    g = grpo_goals(base, stage1, stage2, control, [0.92, 0.90]).set_index("measure")
    assert (
        g.loc["single-target box mIoU", "measured"] == pytest.approx(52)
        and g.loc["single-target box mIoU", "met"]
    )
    assert g.loc["single-target gIoU, GRPO - base", "measured"] == pytest.approx(8)
    assert g.loc["single-target gIoU, GRPO - base", "met"]
    assert g.loc["single-target gIoU, GRPO - control A", "measured"] == pytest.approx(4)
    assert not g.loc["single-target gIoU, GRPO - control A", "met"]
    assert g.loc["points inside the mask, stage 1", "measured"] == pytest.approx(91)
    assert g.loc["N-acc before", "met"] and g.loc[
        "N-acc after stage 2", "measured"
    ] == pytest.approx(80)
    assert g.loc["T-acc after stage 2", "measured"] == pytest.approx(94)
    assert g.loc["multi-target target mIoU, stage 2 - base", "measured"] == pytest.approx(10)
    assert g.loc["single-target gIoU, stage 2 - stage 1", "measured"] == pytest.approx(-1)
    assert not g.loc["single-target gIoU, stage 2 - stage 1", "met"]


def test_points_inside_rate_counts_points_in_the_gt(tmp_path):
    from genseg_lib.analysis.runs import points_inside_by_group, points_inside_rate, target_shape

    samples = [s for s in synthref_samples("val", 40, seed=0) if len(s.gt_masks) == 1][:4]
    evaluate(samples, OraclePrompter(), GrabCutSegmenter(), tmp_path / "run")
    assert points_inside_rate(tmp_path / "run", samples) == 1.0  # oracle points are interior
    path = tmp_path / "run" / "predictions.jsonl"
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    lines[0]["instances"][0]["points"] = [[0.5, 0.5], [0.5, 0.5]]  # corner: background
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert points_inside_rate(tmp_path / "run", samples) == pytest.approx(6 / 8)
    # per target shape: only the edited sample's shape loses its points
    by_shape = points_inside_by_group(tmp_path / "run", samples, target_shape)
    edited = target_shape(next(s for s in samples if s.sample_id == lines[0]["sample_id"]))
    same = [s for s in samples if target_shape(s) == edited]
    assert by_shape[edited] == pytest.approx(1 - 2 / (2 * len(same)))
    assert set(by_shape) == {target_shape(s) for s in samples}
    assert all(v == 1.0 for k, v in by_shape.items() if k != edited)
    assert points_inside_by_group(tmp_path / "run", samples, target_shape, ["no_such_type"]) == {}
    multi = next(s for s in synthref_samples("val", 40, seed=0) if len(s.gt_masks) == 2)
    with pytest.raises(ValueError, match=f"sample {multi.sample_id}: 2 target shapes"):
        target_shape(multi)


def test_no_target_answers_by_query_opening(tmp_path):
    from genseg_lib.analysis.runs import no_target_answers_by_group, query_opening

    samples = synthref_samples("val", 60, seed=0)
    evaluate(samples, OraclePrompter(), GrabCutSegmenter(), tmp_path / "run")
    groups = {query_opening(s) for s in samples}
    assert {"all ... (target)", "all ... (no target)", "the ... (target)"} <= groups
    # the oracle abstains exactly on the no-target samples
    rates = no_target_answers_by_group(tmp_path / "run", samples, query_opening)
    assert rates == {g: float(g.endswith("(no target)")) for g in sorted(groups)}
    path = tmp_path / "run" / "predictions.jsonl"
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    plural = [i for i, x in enumerate(lines) if x["query"].startswith("all ") and x["instances"]]
    lines[plural[0]].update(no_target_answer=True, instances=[])  # a plural target: abstained
    # an unreadable answer has no instances either, but it does not say "no target"
    singular = next(
        i for i, x in enumerate(lines) if x["query"].startswith("the ") and x["instances"]
    )
    lines[singular].update(text="no idea", format_ok=False, instances=[], error="no <answer>")
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    rates = no_target_answers_by_group(tmp_path / "run", samples, query_opening)
    assert rates["all ... (target)"] == pytest.approx(1 / len(plural))
    assert rates["the ... (target)"] == 0.0 and rates["all ... (no target)"] == 1.0
    assert no_target_answers_by_group(tmp_path / "run", samples[:0], query_opening) == {}


def test_sweep_table_hand_computed():
    def summary(**overall):
        return {"overall": overall}

    state = {
        "log_history": [
            {"step": i, "reward": float(i), "frac_reward_zero_std": 0.5 if i < 2 else 0.0}
            for i in range(12)
        ]
        + [{"train_runtime": 1.0}]  # the final entry logs no reward
    }
    subsets = {
        "no_target": summary(N_acc=0.8),
        "single": summary(gIoU=0.25),
        "targets": summary(T_acc=0.9),
    }
    table = sweep_table({"T=0.7": (state, subsets)})
    row = table.iloc[0]
    assert row["setting"] == "T=0.7"
    assert (row["N-acc"], row["single-target gIoU"], row["T-acc"]) == (80.0, 25.0, 90.0)
    assert row["frac_reward_zero_std"] == pytest.approx(1 / 12)  # 2 of 12 steps at 0.5
    assert row["reward, last 10 steps"] == pytest.approx(np.mean(range(2, 12)))
    with pytest.raises(ValueError, match="no reward"):
        sweep_table({"empty": ({"log_history": [{"train_runtime": 1.0}]}, subsets)})
