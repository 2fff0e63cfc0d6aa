"""GRPO recipes on the tiny Qwen3-VL (CPU): terms logged, parameters move, resume, LoRA, stages."""

import json
import logging
import os
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from genseg_lib.data.synthref import write_synthref
from genseg_lib.train.__main__ import command_line_overrides
from genseg_lib.train.grpo import (
    RECIPE_DIR,
    build_trainer,
    recipe_settings,
    stage_settings,
    train,
    train_stages,
)

ROOT = Path(__file__).resolve().parents[2]
FAST = {
    "per_device_train_batch_size": 2,
    "num_generations": 2,
    "gradient_accumulation_steps": 1,
    "max_completion_length": 12,
    "use_cpu": True,
    "gradient_checkpointing": False,
    "learning_rate": 1e-2,
    "logging_steps": 1,
    "report_to": "none",
    "dataloader_num_workers": 0,
}


def pseudo_random(prompts, completions, **kwargs):
    """A deterministic, varied score so that a random policy gets a non-zero advantage."""
    return [zlib.crc32(str(c).encode()) % 1000 / 1000 for c in completions]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_synthref(root, 60, seed=0)
    return root


def overrides_for(model, data, out, **extra):
    return {
        "model": str(model),
        "dataset": "synthref:train",
        "root": str(data),
        "out": str(out),
        "limit": 8,
        **FAST,
        **extra,
    }


def settings_for(recipe, model, data, out, **extra):
    return recipe_settings(recipe, overrides_for(model, data, out, **extra))


def as_argv(recipe, overrides):
    argv = ["--recipe", recipe]
    for k, v in overrides.items():
        argv += [f"--{k}", str(v).lower() if isinstance(v, bool) else str(v)]
    return argv


def logged_keys(run):
    state = json.loads(sorted(Path(run).glob("checkpoint-*/trainer_state.json"))[-1].read_text())
    return state, {k for h in state["log_history"] for k in h}


def test_recipes_parse_and_override():
    names = {p.stem for p in RECIPE_DIR.glob("*.yaml")}
    assert {"genseg-r1", "genseg-r1-g", "genseg-r1-two-stage", "segzero", "visionreasoner"} <= names
    args, grpo = recipe_settings("genseg-r1", {"model": "m", "out": "/tmp/x", "beta": 0.1})
    assert args.reward_funcs == ["format", "box_iou", "box_l1", "points_in_mask"]
    assert grpo.num_generations == 8 and grpo.beta == 0.1 and grpo.output_dir == "/tmp/x"
    assert grpo.bf16 == torch.cuda.is_available()
    args, _ = recipe_settings("genseg-r1-g", {"model": "m"})
    assert (
        args.reward_funcs == ["format", "no_target", "sam_mask_iou"]
        and args.dataset == "grefcoco:train"
    )
    assert recipe_settings("genseg-r1-two-stage", {"model": "m"})[0].stages == [
        "genseg-r1",
        "genseg-r1-g",
    ]
    with pytest.raises(ValueError, match="unknown recipe"):
        recipe_settings("nope")
    with pytest.raises(ValueError, match="not_a_field"):
        recipe_settings("genseg-r1", {"not_a_field": 1})


def test_command_line_gives_only_the_flags_it_names():
    recipe, overrides = command_line_overrides(
        ["--recipe", "genseg-r1-g", "--model", "m", "--beta", "0.2", "--lora", "true"]
    )
    assert recipe == "genseg-r1-g"
    assert overrides == {"model": "m", "beta": 0.2, "lora": True}
    recipe, overrides = command_line_overrides(["--query_types", "spatial", "ordinal"])
    assert recipe == "genseg-r1" and overrides == {"query_types": ["spatial", "ordinal"]}


def test_help_lists_recipes_and_presets(capsys):
    with pytest.raises(SystemExit):
        command_line_overrides(["--help"])
    text = capsys.readouterr().out
    assert "genseg-r1-two-stage" in text and "visionreasoner" in text
    assert "points_segzero_lt30px840" in text


def test_stages_are_typed_settings_per_recipe():
    args, _ = recipe_settings("genseg-r1-two-stage", {"model": "m", "out": "/tmp/two"})
    stages = stage_settings(args, {"model": "m", "beta": 0.3})
    assert [(a.recipe, g.output_dir, g.beta) for a, g in stages] == [
        ("genseg-r1", "/tmp/two/stage1-genseg-r1", 0.3),
        ("genseg-r1-g", "/tmp/two/stage2-genseg-r1-g", 0.3),
    ]
    assert stages[1][0].reward_funcs == ["format", "no_target", "sam_mask_iou"]


def test_vllm_missing_is_a_clear_error():
    pytest.importorskip("trl")
    if __import__("importlib").util.find_spec("vllm") is not None:
        pytest.skip("vLLM installed")
    with pytest.raises(SystemExit, match="vLLM is not installed"):
        recipe_settings("genseg-r1", {"model": "m", "use_vllm": True})


def test_special_tokens_suppressed_in_sampling(tiny_vlm_path, data, tmp_path):
    args, grpo = settings_for("genseg-r1", tiny_vlm_path, data, tmp_path, max_steps=1)
    trainer = build_trainer(args, grpo)
    suppressed = set(trainer.generation_kwargs["suppress_tokens"])
    assert {151655, 151652, 151644, 151643} <= suppressed and 151645 not in suppressed


def test_genseg_r1_full_logs_terms_changes_weights_and_resumes(
    tiny_vlm_path, data, tmp_path, caplog
):
    before = load_file(tiny_vlm_path / "model.safetensors")
    run = tmp_path / "r1"
    train(
        *settings_for("genseg-r1", tiny_vlm_path, data, run, max_steps=1, save_steps=1),
        [pseudo_random],
    )
    info = json.loads((run / "run.json").read_text())
    assert (info["kind"], info["recipe"], info["seed"]) == ("grpo", "genseg-r1", 42)
    assert info["settings"]["grpo"]["max_steps"] == 1 and info["code_version"]
    state, keys = logged_keys(run)
    for term in ["format", "box_iou", "box_l1", "points_in_mask", "pseudo_random"]:
        assert f"rewards/{term}/mean" in keys
    after = load_file(run / "model.safetensors")
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed, "no parameter moved"
    # resume: a second invocation continues from checkpoint-1 to step 2
    train(
        *settings_for(
            "genseg-r1",
            tiny_vlm_path,
            data,
            run,
            max_steps=2,
            save_steps=1,
            resume_from_checkpoint="true",
        ),
        [pseudo_random],
    )
    state, _ = logged_keys(run)
    assert state["global_step"] == 2
    assert [h["step"] for h in state["log_history"] if "loss" in h] == [1, 2]
    assert "holds no optimizer state" not in caplog.text
    # a checkpoint without its optimizer state resumes, and says what that costs
    (run / "checkpoint-2" / "optimizer.pt").unlink()
    with caplog.at_level(logging.WARNING, logger="genseg_lib.train.grpo"):
        train(
            *settings_for(
                "genseg-r1",
                tiny_vlm_path,
                data,
                run,
                max_steps=3,
                save_steps=1,
                resume_from_checkpoint="true",
            ),
            [pseudo_random],
        )
    assert f"resuming from {run / 'checkpoint-2'}, which holds no optimizer state" in caplog.text


def test_a_frozen_vision_tower_stays_while_the_rest_trains(tiny_vlm_path, data, tmp_path):
    before = load_file(tiny_vlm_path / "model.safetensors")
    run = tmp_path / "frozen"
    train(
        *settings_for("genseg-r1", tiny_vlm_path, data, run, max_steps=1, freeze_vision_tower=True),
        [pseudo_random],
    )
    after = load_file(run / "model.safetensors")
    tower = [k for k in before if ".visual." in k and "deepstack_merger_list" not in k]
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert len(tower) > 10 and not changed & set(tower)
    assert any("deepstack_merger_list" in k for k in changed)  # they feed the language model
    assert any("language_model" in k for k in changed)


@pytest.mark.parametrize("lora", [False, True])
def test_bf16_runs_keep_fp32_weights_wherever_they_train(tiny_vlm_path, data, tmp_path, lora):
    args, grpo = settings_for(
        "genseg-r1", tiny_vlm_path, data, tmp_path / "run", bf16=True, lora=lora
    )
    model = build_trainer(args, grpo, [pseudo_random]).model
    dtypes = {p.dtype for p in model.parameters() if p.requires_grad}
    frozen = {p.dtype for p in model.parameters() if not p.requires_grad}
    assert dtypes == {torch.float32}  # AdamW on bf16 weights rounds small updates away
    assert frozen == ({torch.bfloat16} if lora else set())


def test_training_runs_without_the_cudnn_attention_kernel(tiny_vlm_path, data, tmp_path):
    """Its backward gave NaN gradients on H100/H200 (README); the flag is back after."""
    seen = []

    def record_kernel_flag(prompts, completions, **kwargs):
        seen.append(torch.backends.cuda.cudnn_sdp_enabled())
        return pseudo_random(prompts, completions)

    torch.backends.cuda.enable_cudnn_sdp(True)
    train(
        *settings_for("genseg-r1", tiny_vlm_path, data, tmp_path / "run", max_steps=2),
        [record_kernel_flag],
    )
    assert seen == [False, False]
    assert torch.backends.cuda.cudnn_sdp_enabled() is True


def test_a_nan_gradient_stops_the_run_before_the_weights_change(tiny_vlm_path, data, tmp_path):
    from genseg_lib.train.guards import NonFiniteGradientError

    trainer = build_trainer(
        *settings_for("genseg-r1", tiny_vlm_path, data, tmp_path / "nan", max_steps=2),
        [pseudo_random],
    )
    param = next(p for n, p in trainer.model.named_parameters() if "embed_tokens" in n)
    before = param.detach().clone()
    param.register_hook(lambda grad: grad * float("nan"))
    with pytest.raises(NonFiniteGradientError, match="at step 1;"):
        trainer.train()
    assert all(bool(torch.isfinite(p).all()) for p in trainer.model.parameters())
    assert torch.equal(param.detach(), before)


def test_genseg_r1_g_lora_with_sam_reward_and_merge(tiny_vlm_path, data, tmp_path):
    from genseg_lib.models.vlm import load_vlm, merge_lora

    run = tmp_path / "r1g"
    train(
        *settings_for(
            "genseg-r1-g",
            tiny_vlm_path,
            data,
            run,
            max_steps=2,
            save_steps=2,
            segmenter="classical",
            lora=True,
            lora_r=4,
        ),
        [pseudo_random],
    )
    _, keys = logged_keys(run)
    for term in ["format", "no_target", "sam_mask_iou"]:
        assert f"rewards/{term}/mean" in keys
    adapter = load_file(run / "adapter_model.safetensors")
    assert adapter and all("lora" in k for k in adapter)
    assert any(v.abs().sum() > 0 for k, v in adapter.items() if "lora_B" in k)  # B starts at 0
    merged = merge_lora(run, tmp_path / "merged")
    base = load_file(tiny_vlm_path / "model.safetensors")
    merged_w = load_file(merged / "model.safetensors")
    assert any(not torch.equal(base[k], merged_w[k]) for k in base if k in merged_w)
    vlm = load_vlm(run, device="cpu")  # an adapter folder loads merged for evaluation
    assert (
        vlm.model.num_parameters() == load_vlm(tiny_vlm_path, device="cpu").model.num_parameters()
    )


def test_two_stage_schedule(tiny_vlm_path, data, tmp_path):
    overrides = overrides_for(
        tiny_vlm_path, data, tmp_path / "two", max_steps=1, save_steps=1, segmenter="classical"
    )
    args, _ = recipe_settings("genseg-r1-two-stage", overrides)
    out = train_stages(args, stage_settings(args, overrides))
    assert out == tmp_path / "two" / "stage2-genseg-r1-g"
    assert (tmp_path / "two" / "stage1-genseg-r1" / "model.safetensors").exists()
    state = json.loads((out / "checkpoint-1" / "trainer_state.json").read_text())
    assert any("rewards/sam_mask_iou/mean" in h for h in state["log_history"])


@pytest.mark.slow
def test_two_cpu_processes_with_accelerate(tiny_vlm_path, data, tmp_path):
    run = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(ROOT / "configs/accelerate/cpu2.yaml"),
        "-m",
        "genseg_lib.train",
        *as_argv("genseg-r1", overrides_for(tiny_vlm_path, data, run, max_steps=2, save_steps=2)),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    state, keys = logged_keys(run)
    assert state["global_step"] == 2 and "rewards/box_iou/mean" in keys


def test_a_finished_run_folder_is_not_clobbered(tiny_vlm_path, data, tmp_path):
    run = tmp_path / "done"
    run.mkdir()
    (run / "trainer_state.json").write_text("{}")
    args, grpo = settings_for("genseg-r1", tiny_vlm_path, data, run, max_steps=1)
    with pytest.raises(RuntimeError, match="already holds a run.*resume_from_checkpoint"):
        train(args, grpo)
    assert (run / "trainer_state.json").read_text() == "{}" and not (run / "run.json").exists()


def test_a_resume_with_other_settings_is_refused(tiny_vlm_path, data, tmp_path):
    """Resuming a partial run with another learning rate would mix two runs in one folder."""
    from genseg_lib.runinfo import write_run_info
    from genseg_lib.train.grpo import grpo_run_info

    run = tmp_path / "partial"
    (run / "checkpoint-1").mkdir(parents=True)
    first = settings_for("genseg-r1", tiny_vlm_path, data, run, max_steps=2, learning_rate=1e-5)
    record = write_run_info(run, grpo_run_info(*first)).read_text()
    other = settings_for(
        "genseg-r1",
        tiny_vlm_path,
        data,
        run,
        max_steps=2,
        learning_rate=1e-4,
        resume_from_checkpoint="true",
    )
    with pytest.raises(ValueError, match=r"differs in \['settings.grpo.learning_rate'\]"):
        train(*other)
    assert (run / "run.json").read_text() == record


def test_two_runs_on_one_folder_refuse(tmp_path):
    from genseg_lib.runinfo import run_lock

    with run_lock(tmp_path):
        with pytest.raises(RuntimeError, match="in use by another run"):
            with run_lock(tmp_path):
                pass
    with run_lock(tmp_path):  # released: usable again
        pass
