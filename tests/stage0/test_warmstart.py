"""Stage-0 warm start: labels only on the answer, a few steps run, the run resumes."""

import json
import shutil

import pytest
import torch

from genseg_lib.data.synthref import GENERATOR_VERSION, synthref_samples
from genseg_lib.stage0.labels import label_instances, label_text
from genseg_lib.stage0.prompter import PrompterSpec, build_synthref_prompter
from genseg_lib.stage0.warmstart import (
    STATE,
    WarmStartConfig,
    phase_config,
    step_samples,
    training_batch,
    warm_start,
)


def _tiny_run(out, **changes) -> WarmStartConfig:
    """A warm start of a few steps on two-scene batches, with ``changes``."""
    settings = dict(
        out=str(out),
        vision_steps=0,
        steps=2,
        single_object_steps=1,
        batch_size=2,
        eval_every=2,
        eval_samples=2,
        save_every=2,
    )
    return WarmStartConfig(**{**settings, **changes})


def test_labels_cover_exactly_the_answer():
    _, processor = build_synthref_prompter()
    samples = synthref_samples("val", 3, seed=0)
    tok = processor.tokenizer
    for kind in ("grounding", "oracle"):
        batch = training_batch(processor, samples, label_kind=kind)
        for row, s in enumerate(samples):
            labelled = batch["labels"][row][batch["labels"][row] != -100]
            assert tok.decode(labelled) == label_text(s, kind) + "<|im_end|>"
    assert label_text(samples[0]).startswith(f"<think>{samples[0].query}</think>")


def test_curriculum_phases():
    cfg = WarmStartConfig(single_object_steps=10, multi_share=0.1, no_target_share=0.05)
    first, later = phase_config(cfg, 0), phase_config(cfg, 10)
    assert first.max_objects == 1 and first.query_weights == {"attribute": 1.0}
    paired = WarmStartConfig(single_object_steps=10, pair_steps=5)
    assert phase_config(paired, 9).max_objects == 1
    pairs = phase_config(paired, 10)
    assert (pairs.min_objects, pairs.max_objects) == (2, 3)
    assert set(pairs.query_weights) == {"attribute", "reasoning"}
    assert phase_config(paired, 14) == pairs and phase_config(paired, 15).max_objects == 4
    assert later.query_weights["multi"] == 0.1 and later.query_weights["no_target"] == 0.05
    assert abs(sum(later.query_weights.values()) - 1) < 1e-9


def test_stream_labels_list_and_abstain_at_the_configured_shares():
    """Every step draws afresh, so the label choices must too: the realized shares of listed
    multi-target labels and of abstaining no-target labels match the settings (ids that repeat
    every step tie the choice to the batch position, and then they do not)."""
    cfg = WarmStartConfig(single_object_steps=0, multi_share=0.4, no_target_share=0.4)
    samples = [s for step in range(120) for s in step_samples(cfg, step)]
    assert len({s.sample_id for s in samples}) == len(samples) == 120 * cfg.batch_size
    position = {s.sample_id: i % cfg.batch_size for i, s in enumerate(samples)}
    multi = [s for s in samples if len(s.gt_masks) > 1]
    absent = [s for s in samples if s.no_target]
    assert min(len(multi), len(absent)) > 500
    for list_share, abstain_share in ((0.5, 0.3), (0.8, 0.6), (0.2, 0.1)):
        listed = [len(label_instances(s, "grounding", list_share)) > 1 for s in multi]
        abstained = [not label_instances(s, "grounding", 0.5, abstain_share) for s in absent]
        assert abs(sum(listed) / len(multi) - list_share) < 0.06, list_share
        assert abs(sum(abstained) / len(absent) - abstain_share) < 0.06, abstain_share
        # ... and not by batch position: each position lists some multi-target labels, not all
        by_position = [
            [x for s, x in zip(multi, listed, strict=True) if position[s.sample_id] == k]
            for k in range(cfg.batch_size)
        ]
        assert sum(0 < sum(p) < len(p) for p in by_position if len(p) >= 10) >= 12


def test_runs_saves_bf16_and_resumes(tmp_path):
    cfg = _tiny_run(tmp_path / "p", vision_steps=2, steps=4, single_object_steps=2, eval_every=4)
    warm_start(cfg)
    from transformers import Qwen3VLForConditionalGeneration

    model = Qwen3VLForConditionalGeneration.from_pretrained(tmp_path / "p")
    assert next(model.parameters()).dtype == torch.bfloat16
    info = json.loads((tmp_path / "p" / "warmstart.json").read_text())
    assert info["steps_done"] == 4 and info["history"][-1]["step"] == 4
    assert [h["step"] for h in info["vision_history"]] == [2]
    assert torch.load(tmp_path / "p-last" / STATE, weights_only=False)["step"] == 4
    cfg.steps = 6  # a rerun continues from step 4
    warm_start(cfg)
    info = json.loads((tmp_path / "p" / "warmstart.json").read_text())
    assert info["steps_done"] == 6 and [h["step"] for h in info["history"]] == [4, 6]
    # both commands that trained it are on record, each with the step it started from
    runs = info["invocations"]
    assert [r["from_step"] for r in runs] == [0, 4]
    assert {r["synthref_generator"] for r in runs} == {GENERATOR_VERSION}
    assert "--steps 4" in runs[0]["command"] and "--steps 6" in runs[1]["command"]


def test_stage0_trains_without_the_cudnn_attention_kernel(tmp_path, monkeypatch):
    """Both stage-0 loops run their forward passes with the cuDNN attention kernel off."""
    from genseg_lib.stage0 import vision_pretrain, warmstart

    seen = []
    for module in (vision_pretrain, warmstart):
        original = module.packed_vision_attention

        def recording(model, original=original, name=module.__name__):
            seen.append((name.rsplit(".", 1)[1], torch.backends.cuda.cudnn_sdp_enabled()))
            return original(model)

        monkeypatch.setattr(module, "packed_vision_attention", recording)
    torch.backends.cuda.enable_cudnn_sdp(True)
    warm_start(_tiny_run(tmp_path / "p", vision_steps=1))
    assert set(seen) == {("vision_pretrain", False), ("warmstart", False)}
    assert len(seen) == 3  # one vision step, two warm-start steps
    assert torch.backends.cuda.cudnn_sdp_enabled() is True


def test_vision_pretraining_takes_its_own_batch_size(tmp_path, monkeypatch):
    """A GPU run feeds the vision tower more scenes per step than the warm start's batch."""
    from genseg_lib.stage0 import warmstart as module

    class Stop(Exception):
        pass

    seen = {}

    def capture(model, processor, cfg, state_path, image_size):
        seen["cfg"] = cfg
        raise Stop

    monkeypatch.setattr(module, "pretrain_vision", capture)
    with pytest.raises(Stop):
        warm_start(
            WarmStartConfig(
                out=str(tmp_path / "p"), vision_steps=3, batch_size=2, vision_batch_size=5
            )
        )
    assert (seen["cfg"].batch_size, seen["cfg"].steps) == (5, 3)


def test_cli_command_parses_back_to_the_same_config():
    import shlex

    from genseg_lib.stage0.__main__ import config_from_args
    from genseg_lib.stage0.warmstart import cli_command

    cfg = WarmStartConfig(out="/tmp/a b/p", steps=12, lr=3e-4, time_limit_min=1.5)
    command = cli_command(cfg)
    assert command.startswith("python -m genseg_lib.stage0 --out")
    assert config_from_args(shlex.split(command)[3:]) == (cfg, None)
    assert cli_command(WarmStartConfig()) == "python -m genseg_lib.stage0"
    wide = PrompterSpec(hidden_size=256, head_dim=64, mrope_section=[16, 8, 8])
    command = cli_command(cfg, wide)
    assert command.endswith(
        "--prompter-hidden-size 256 --prompter-head-dim 64 --prompter-mrope-section 16,8,8"
    )
    assert config_from_args(shlex.split(command)[3:]) == (cfg, wide)
    # the default sizes written out are the default sizes, not "none given"
    assert config_from_args(["--prompter-hidden-size", "128"])[1] == PrompterSpec()


def test_prompter_sizes_that_cannot_build_are_refused_by_name():
    with pytest.raises(ValueError, match="mrope_section"):
        PrompterSpec(head_dim=64)
    with pytest.raises(ValueError, match="image_size"):
        PrompterSpec(image_size=120)
    with pytest.raises(ValueError, match="num_key_value_heads"):
        PrompterSpec(num_attention_heads=3)
    with pytest.raises(ValueError, match="deepstack"):
        PrompterSpec(vision_depth=2)


def test_a_fresh_prompter_takes_the_sizes_given_and_records_them(tmp_path):
    from transformers import AutoConfig

    spec = PrompterSpec(hidden_size=64, intermediate_size=96, num_hidden_layers=3)
    warm_start(_tiny_run(tmp_path / "p"), spec)
    text = AutoConfig.from_pretrained(tmp_path / "p").text_config
    assert (text.hidden_size, text.intermediate_size, text.num_hidden_layers) == (64, 96, 3)
    info = json.loads((tmp_path / "p" / "warmstart.json").read_text())
    run = json.loads((tmp_path / "p" / "run.json").read_text())
    assert info["spec"]["hidden_size"] == 64 == run["settings"]["prompter"]["hidden_size"]
    assert info["invocations"][0]["command"].endswith(
        "--prompter-hidden-size 64 --prompter-intermediate-size 96 --prompter-num-hidden-layers 3"
    )


def test_a_rerun_with_other_settings_or_sizes_is_refused_not_mixed(tmp_path):
    out = tmp_path / "p"
    warm_start(_tiny_run(out))
    with pytest.raises(ValueError, match=r"settings\.lr"):
        warm_start(_tiny_run(out, lr=3e-4, steps=4))
    with pytest.raises(ValueError, match=r"settings\.prompter"):
        warm_start(_tiny_run(out, steps=4), PrompterSpec(num_hidden_layers=2))
    assert json.loads((out / "warmstart.json").read_text())["steps_done"] == 2
    # a run started under other label rules or another SynthRef generator (or before either was
    # recorded) is not continued
    record = json.loads((out / "run.json").read_text())
    (out / "run.json").write_text(json.dumps({**record, "label_rules": 1}))
    with pytest.raises(ValueError, match=r"differs in \['label_rules'\]"):
        warm_start(_tiny_run(out, steps=4))
    older = {k: v for k, v in record.items() if k not in ("label_rules", "synthref_generator")}
    (out / "run.json").write_text(json.dumps(older))
    with pytest.raises(ValueError, match=r"differs in \['label_rules', 'synthref_generator'\]"):
        warm_start(_tiny_run(out, steps=4))
    (out / "run.json").write_text(json.dumps(record))
    # where, how fast, how often it reports and how far it goes may change
    warm_start(_tiny_run(out, steps=3, eval_every=1, save_every=1, device="cpu"))
    assert json.loads((out / "warmstart.json").read_text())["steps_done"] == 3


def test_an_interrupted_vision_pretraining_resumes_only_the_same_run(tmp_path):
    out = tmp_path / "p"
    warm_start(_tiny_run(out, vision_steps=2))
    shutil.rmtree(tmp_path / "p-last")  # as if stopped before the first warm-start save
    assert (tmp_path / "p-vision.pt").is_file()
    with pytest.raises(ValueError, match=r"settings\.vision_batch_size"):
        warm_start(_tiny_run(out, vision_steps=2, vision_batch_size=4))
    warm_start(_tiny_run(out, vision_steps=2))
    assert json.loads((out / "warmstart.json").read_text())["steps_done"] == 2


def test_a_continued_checkpoint_keeps_its_sizes(tmp_path):
    with pytest.raises(ValueError, match="sizes apply to a fresh prompter only"):
        warm_start(_tiny_run(tmp_path / "c", init=str(tmp_path / "p")), PrompterSpec())


@pytest.mark.slow
def test_cli_command_runs_a_few_steps(tmp_path):
    from genseg_lib.stage0.__main__ import main

    main(
        [
            "--out",
            str(tmp_path / "cli"),
            "--vision-steps",
            "1",
            "--steps",
            "2",
            "--single-object-steps",
            "1",
            "--batch-size",
            "2",
            "--eval-every",
            "2",
            "--eval-samples",
            "2",
            "--save-every",
            "2",
        ]
    )
    info = json.loads((tmp_path / "cli" / "warmstart.json").read_text())
    assert info["steps_done"] == 2 and info["config"]["batch_size"] == 2
    assert info["config"]["vision_steps"] == 1 and len(info["vision_history"]) == 1
    run = json.loads((tmp_path / "cli" / "run.json").read_text())
    assert run["kind"] == "warmstart" and run["settings"]["steps"] == 2 and run["seed"] == 0


def test_batches_are_the_same_with_workers_and_after_resume():
    from genseg_lib.stage0.batches import step_loader
    from genseg_lib.stage0.warmstart import StepBatches

    _, processor = build_synthref_prompter()
    cfg = WarmStartConfig(steps=5, single_object_steps=2, batch_size=2)
    inline = list(step_loader(StepBatches(cfg, processor, "norm1000", 0), workers=0))
    parallel = list(step_loader(StepBatches(cfg, processor, "norm1000", 0), workers=2))
    resumed = list(step_loader(StepBatches(cfg, processor, "norm1000", 3), workers=0))
    assert len(inline) == 5 and len(resumed) == 2
    for a, b in zip(inline, parallel, strict=True):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for a, b in zip(inline[3:], resumed, strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(inline[0]["input_ids"], inline[1]["input_ids"])


def test_parameter_groups_scale_or_freeze_the_pretrained_tower():
    from genseg_lib.stage0.prompter import build_synthref_prompter
    from genseg_lib.stage0.warmstart import parameter_groups

    model, _ = build_synthref_prompter()
    visual = model.model.visual
    deepstack = {id(p) for p in visual.deepstack_merger_list.parameters()}
    tower = {id(p) for p in visual.parameters()} - deepstack
    everything = {id(p) for p in model.parameters()}
    (one,) = parameter_groups(model, None, WarmStartConfig(lr=1e-3))
    assert {id(p) for p in one["params"]} == everything
    main, slow = parameter_groups(model, None, WarmStartConfig(lr=1e-3, vision_lr_scale=0.1))
    assert {id(p) for p in slow["params"]} == tower and slow["lr"] == pytest.approx(1e-4)
    assert {id(p) for p in main["params"]} == everything - tower and "lr" not in main
    assert deepstack and deepstack <= {id(p) for p in main["params"]}
    (main,) = parameter_groups(model, None, WarmStartConfig(vision_lr_scale=0.0))
    assert {id(p) for p in main["params"]} == everything - tower
    assert all(not p.requires_grad for p in visual.parameters() if id(p) in tower)


def test_a_frozen_tower_keeps_what_vision_pretraining_taught(tmp_path):
    from safetensors.torch import load_file

    cfg = _tiny_run(tmp_path / "p", vision_steps=1, vision_lr_scale=0.0)
    warm_start(cfg)
    pretrained = torch.load(tmp_path / "p-vision.pt", weights_only=False)["visual"]
    trained = load_file(tmp_path / "p-last" / "model.safetensors")
    prefix = next(k for k in trained if k.endswith("visual.blocks.0.attn.qkv.weight"))[
        : -len("blocks.0.attn.qkv.weight")
    ]
    blocks = [k for k in pretrained if k.startswith("blocks.") or k.startswith("patch_embed.")]
    assert blocks and all(torch.equal(trained[prefix + k], pretrained[k]) for k in blocks)
    # while the language model trained
    from genseg_lib.stage0.prompter import build_synthref_prompter

    fresh = build_synthref_prompter(seed=cfg.seed)[0].state_dict()
    suffix = "language_model.layers.0.mlp.up_proj.weight"
    key = next(k for k in trained if k.endswith(suffix))
    assert not torch.equal(trained[key], fresh[next(k for k in fresh if k.endswith(suffix))])
