"""GRPO training of the prompter (GenSeg-R1 / GenSeg-R1-G) on TRL's GRPOTrainer + PEFT.

Settings are typed end to end: a recipe (``configs/recipes/NAME.yaml``) plus overrides become
a `GenSegArguments` and a TRL `GRPOConfig` (`recipe_settings`); `train` takes those two
objects, and a multi-stage recipe is a list of such pairs (`stage_settings`), each stage
starting from the previous one's result. Only ``python -m genseg_lib.train`` parses a command
line. Every run folder gets a ``run.json`` (kind ``grpo``, recipe, settings, seed, code
version). Checkpoints resume with ``resume_from_checkpoint``; LoRA adapters save with the run
and `load_model_and_processor` merges them for evaluation.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from genseg_lib.data import load_dataset, select_samples
from genseg_lib.device import training_attention
from genseg_lib.models.vlm import (
    coord_frame_for,
    load_model_and_processor,
    vision_tower_parameters,
)
from genseg_lib.runinfo import refuse_other_run, run_info, run_lock, write_run_info
from genseg_lib.segment.factory import build_segmenter
from genseg_lib.train.dataset import oversample_kinds, to_hf_dataset
from genseg_lib.train.rewards import PRESETS, RewardFn, build_rewards

LOG = logging.getLogger(__name__)
RECIPE_DIR = Path(__file__).resolve().parents[2] / "configs" / "recipes"
LM_LORA_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


@dataclass
class GenSegArguments:
    """What to train on and with which rewards (TRL's `GRPOConfig` holds the optimisation)."""

    recipe: str = field(
        default="genseg-r1", metadata={"help": "recipe name in configs/recipes/ or a YAML path"}
    )
    model: str | None = field(
        default=None, metadata={"help": "hub id or folder of the Qwen-VL model to train"}
    )
    dataset: str = field(default="synthref:train", metadata={"help": "NAME:SPLIT to train on"})
    root: str | None = field(default=None, metadata={"help": "data root (docs/method.md §6)"})
    out: str | None = field(default=None, metadata={"help": "run folder (sets output_dir)"})
    limit: int | None = field(
        default=None, metadata={"help": "train on a seeded subset of this many samples"}
    )
    query_types: list[str] | None = field(
        default=None, metadata={"help": "train only on these query types (e.g. SynthRef's spatial)"}
    )
    no_target_share: float | None = field(
        default=None,
        metadata={"help": "resample so that no-target queries are this share of the prompts"},
    )
    multi_target_share: float | None = field(
        default=None,
        metadata={"help": "resample so that multi-target queries are this share of the prompts"},
    )
    reward_funcs: list[str] = field(
        default_factory=lambda: list(PRESETS["genseg-r1"]),
        metadata={"help": "reward terms by name (genseg_lib.train.rewards.REWARDS, sam_mask_iou)"},
    )
    segmenter: str = field(
        default="classical",
        metadata={"help": "segmenter for sam_mask_iou: classical | sam2:ID | sam2-random:ID"},
    )
    sam_image_size: int | None = field(
        default=None, metadata={"help": "reduced SAM input size (tests only)"}
    )
    max_pixels: int | None = field(
        default=None, metadata={"help": "max image pixels fed to the vision tower"}
    )
    coord_frame: str | None = field(
        default=None,
        metadata={"help": "norm1000 | pixels; default: the model family's (docs/method.md §2)"},
    )
    freeze_vision_tower: bool = field(
        default=False,
        metadata={
            "help": "keep the vision tower's weights fixed (the deepstack mergers still train), "
            "as the warm start's --vision-lr-scale 0 does"
        },
    )
    lora: bool = field(
        default=False, metadata={"help": "train LoRA adapters on the language model (peft)"}
    )
    lora_r: int = field(default=16, metadata={"help": "LoRA rank"})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha"})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout"})
    lora_target_modules: str = field(
        default=LM_LORA_TARGETS, metadata={"help": "regex of modules to adapt"}
    )
    stages: list[str] | None = field(
        default=None,
        metadata={"help": "run these recipes in sequence, each from the previous result"},
    )
    overwrite: bool = field(
        default=False,
        metadata={"help": "train into a run folder that already holds a run, replacing it"},
    )


def recipe_path(recipe: str) -> Path:
    """A recipe name (``configs/recipes/NAME.yaml``) or a YAML path."""
    path = Path(recipe)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    named = RECIPE_DIR / f"{recipe}.yaml"
    if not named.is_file():
        raise ValueError(f"unknown recipe {recipe!r}; known: {recipe_names()}")
    return named


def recipe_names() -> list[str]:
    """The recipes shipped in ``configs/recipes/``."""
    return sorted(p.stem for p in RECIPE_DIR.glob("*.yaml"))


def recipe_settings(
    recipe: str, overrides: Mapping[str, Any] | None = None
) -> tuple[GenSegArguments, Any]:
    """A recipe's values, then ``overrides`` (field name -> value) -> `GenSegArguments` and
    `GRPOConfig`. An unknown key is an error. Device policy: bf16 compute on CUDA, fp32 on CPU
    (or with ``use_cpu``), unless ``bf16`` is given; `policy_dtype` picks the weights' dtype."""
    from transformers import HfArgumentParser
    from trl import GRPOConfig

    values = yaml.safe_load(recipe_path(recipe).read_text()) or {}
    values = {**values, **(overrides or {}), "recipe": recipe}
    cpu = not torch.cuda.is_available() or bool(values.get("use_cpu"))
    values.setdefault("bf16", not cpu)
    parser = HfArgumentParser((GenSegArguments, GRPOConfig))
    args, grpo = parser.parse_dict(values)
    if args.out:
        grpo.output_dir = args.out
    if grpo.use_vllm and importlib.util.find_spec("vllm") is None:
        raise SystemExit(
            "use_vllm=True but vLLM is not installed: `pip install vllm` on a CUDA machine "
            "(vllm_mode=colocate runs it inside the trainer; vllm_mode=server needs "
            "`trl vllm-serve`)."
        )
    return args, grpo


def stage_settings(
    args: GenSegArguments, overrides: Mapping[str, Any] | None = None
) -> list[tuple[GenSegArguments, Any]]:
    """One (arguments, config) pair per stage of a multi-stage recipe: each stage's recipe with
    the same ``overrides``, writing to ``<out>/stageN-<recipe>``; `train_stages` fills in each
    stage's starting model."""
    if not args.stages:
        raise ValueError(f"recipe {args.recipe!r} has no stages")
    out = Path(args.out or "runs/stages")
    return [
        recipe_settings(stage, {**(overrides or {}), "out": str(out / f"stage{i}-{stage}")})
        for i, stage in enumerate(args.stages, 1)
    ]


def policy_dtype(bf16: bool, lora: bool) -> torch.dtype:
    """The dtype the policy's weights load in. bf16 only for a LoRA run's frozen base (PEFT keeps
    the adapters in fp32); a full fine-tune keeps fp32 master weights and computes under the
    Trainer's bf16 autocast, since AdamW on bf16 weights rounds small updates away (a step of
    3e-5 on a weight of 0.05 is under bf16's resolution)."""
    return torch.bfloat16 if bf16 and lora else torch.float32


def build_trainer(
    args: GenSegArguments,
    grpo: Any,
    extra_rewards: Sequence[Callable[..., list[float]]] = (),
) -> Any:
    """A configured `GRPOTrainer` (dataset in the policy's frame, rewards, LoRA, special-token
    suppression)."""
    from peft import LoraConfig
    from trl import GRPOTrainer

    from genseg_lib.models.vlm import special_token_ids_to_suppress
    from genseg_lib.train.guards import StopOnNonFiniteGradients

    if not args.model:
        raise ValueError("--model is required (a hub id or a local folder)")
    model, processor = load_model_and_processor(
        args.model, policy_dtype(grpo.bf16, args.lora), max_pixels=args.max_pixels
    )
    frame = args.coord_frame or coord_frame_for(model.config.model_type)
    if args.freeze_vision_tower:
        frozen = vision_tower_parameters(model)
        for p in frozen:
            p.requires_grad_(False)
        LOG.info("vision tower frozen: %d parameters", sum(p.numel() for p in frozen))
    name, _, split = args.dataset.partition(":")
    samples = load_dataset(name, args.root, split or "train")
    if args.query_types:
        samples = [s for s in samples if s.query_type in args.query_types]
    samples = select_samples(samples, args.limit, grpo.seed)
    shares = {"no_target": args.no_target_share, "multi_target": args.multi_target_share}
    shares = {kind: share for kind, share in shares.items() if share is not None}
    if shares:
        samples = oversample_kinds(samples, shares, grpo.seed)
    dataset = to_hf_dataset(samples, frame, processor.image_processor)
    segmenter = None
    if "sam_mask_iou" in args.reward_funcs:
        device = "cpu" if grpo.use_cpu else "auto"
        segmenter = build_segmenter(args.segmenter, device, args.sam_image_size)
    rewards: list[RewardFn] = build_rewards(args.reward_funcs, segmenter) + list(extra_rewards)
    if grpo.reward_weights is not None and extra_rewards:  # extra terms (experiments) weigh 1
        grpo.reward_weights = [
            *grpo.reward_weights[: len(args.reward_funcs)],
            *[1.0] * len(extra_rewards),
        ]
    if grpo.reward_weights is not None and len(grpo.reward_weights) != len(rewards):
        raise ValueError(
            f"{len(grpo.reward_weights)} reward_weights for {len(rewards)} rewards "
            f"{args.reward_funcs}"
        )
    # chat/vision control tokens sampled mid-answer break the log-prob forward pass
    grpo.generation_kwargs = {
        **(grpo.generation_kwargs or {}),
        "suppress_tokens": special_token_ids_to_suppress(processor.tokenizer),
    }
    peft_config = None
    if args.lora:
        peft_config = LoraConfig(
            r=args.lora_r,
            lora_alpha=args.lora_alpha,
            lora_dropout=args.lora_dropout,
            target_modules=args.lora_target_modules,
            task_type="CAUSAL_LM",
        )
    LOG.info(
        "GRPO on %d samples of %s (%s frame) with rewards %s",
        len(dataset),
        args.dataset,
        frame,
        args.reward_funcs,
    )
    return GRPOTrainer(
        model=model,
        processing_class=processor,
        reward_funcs=rewards,
        args=grpo,
        train_dataset=dataset,
        peft_config=peft_config,
        callbacks=[StopOnNonFiniteGradients()],
    )


def _resume_arg(grpo: Any) -> str | bool | None:
    value = grpo.resume_from_checkpoint
    if value in (None, "", "false", "False"):
        return None
    return True if value in ("true", "True", "auto") else value


# what a resumed or reused GRPO run may change without changing its results (the folder's
# own path included: a folder is the run it holds, wherever it was reached from)
RUNTIME_FIELDS = (
    "settings.args.out",
    "settings.grpo.output_dir",
    "settings.args.overwrite",
    "settings.grpo.resume_from_checkpoint",
    "settings.grpo.use_cpu",
    "settings.grpo.gradient_checkpointing",
    "settings.grpo.local_rank",
)
# a resume may also extend a run to more steps (all else as it started)
RESUME_FIELDS = (*RUNTIME_FIELDS, "settings.grpo.max_steps", "settings.grpo.save_steps")


def grpo_run_info(args: GenSegArguments, grpo: Any) -> dict[str, Any]:
    """The ``run.json`` of a GRPO run: recipe, both settings objects, seed, code version."""
    return run_info(
        "grpo",
        {"args": dataclasses.asdict(args), "grpo": grpo.to_dict()},
        grpo.seed,
        recipe=args.recipe,
    )


def train(
    args: GenSegArguments,
    grpo: Any,
    extra_rewards: Sequence[Callable[..., list[float]]] = (),
) -> Path:
    """Run one recipe into ``grpo.output_dir`` (a multi-stage recipe goes to `train_stages`)."""
    if args.stages:
        raise ValueError(
            f"{args.recipe!r} has stages {args.stages}: run train_stages(args, "
            "stage_settings(args, overrides))"
        )
    out = Path(grpo.output_dir)
    main_process = int(os.environ.get("RANK", "0")) == 0  # accelerate: one lock per run
    with run_lock(out) if main_process else contextlib.nullcontext():
        _refuse_to_clobber(out, args, grpo)
        if main_process:
            write_run_info(out, grpo_run_info(args, grpo))
        trainer = build_trainer(args, grpo, extra_rewards)
        _warn_if_no_optimizer_state(out, grpo)
        with training_attention():
            trainer.train(resume_from_checkpoint=_resume_arg(grpo))
        trainer.save_model(grpo.output_dir)
        trainer.save_state()  # trainer_state.json: the per-term reward curves
        if trainer.accelerator.is_main_process:
            trainer.processing_class.save_pretrained(grpo.output_dir)
    return out


def _warn_if_no_optimizer_state(out: Path, grpo: Any) -> None:
    """Say so when the checkpoint a resume starts from holds no optimizer state (saved with
    ``save_only_model``, or copied without it): the Trainer then quietly restarts AdamW's
    moments, so the resumed run is not the uninterrupted one."""
    from transformers.trainer_utils import get_last_checkpoint

    resume = _resume_arg(grpo)
    if resume is None:
        return
    checkpoint = Path(get_last_checkpoint(str(out)) or "") if resume is True else Path(resume)
    if not checkpoint.name or not checkpoint.is_dir():
        return  # the Trainer names a missing checkpoint itself
    names = [p.name for p in checkpoint.iterdir()]
    if not any("optimizer" in n or n.startswith("global_step") for n in names):
        LOG.warning(
            "resuming from %s, which holds no optimizer state: the optimizer starts afresh "
            "(its moments are lost), so this run will differ from an uninterrupted one",
            checkpoint,
        )


def _refuse_to_clobber(out: Path, args: GenSegArguments, grpo: Any) -> None:
    """A folder that holds a finished or partial run is only trained into when told to
    resume it with the same settings, or extend it to more steps (``resume_from_checkpoint``),
    or to replace it (``overwrite``)."""
    held = sorted(p.name for p in out.glob("checkpoint-*")) + [
        name for name in ("trainer_state.json", "model.safetensors") if (out / name).exists()
    ]
    if not held or args.overwrite:
        return
    if _resume_arg(grpo) is None:
        raise RuntimeError(
            f"{out} already holds a run ({', '.join(held[:4])}): pass "
            "resume_from_checkpoint=true to continue it or overwrite=true to replace it"
        )
    refuse_other_run(out, grpo_run_info(args, grpo), depth=3, ignore=RESUME_FIELDS)


def train_stages(args: GenSegArguments, stages: Sequence[tuple[GenSegArguments, Any]]) -> Path:
    """Each stage from the previous stage's saved model (merged first when training LoRA)."""
    model = args.model
    for i, (stage_args, stage_grpo) in enumerate(stages, 1):
        stage_args = dataclasses.replace(stage_args, model=str(model))
        LOG.info("stage %d/%d: %s from %s", i, len(stages), stage_args.recipe, model)
        model = train(stage_args, stage_grpo)
        if stage_args.lora:  # the next stage starts from the merged stage result
            from genseg_lib.models.vlm import merge_lora

            model = merge_lora(model, Path(f"{model}-merged"))
    return Path(model)
