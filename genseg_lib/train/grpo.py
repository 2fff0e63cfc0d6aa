"""GRPO training of the prompter (GenSeg-R1 / GenSeg-R1-G) on TRL's GRPOTrainer + PEFT.

A recipe is a YAML file in ``configs/recipes/`` whose keys fill `GenSegArguments` and TRL's
`GRPOConfig`; command-line flags override it. One launcher for one GPU, CPU, or many GPUs:

    python -m genseg_lib.train --recipe genseg-r1 --model ID_OR_PATH --dataset refcocog:train \
        --root DATA_ROOT --out runs/genseg-r1 [--lora]
    accelerate launch --config_file configs/accelerate/zero3.yaml -m genseg_lib.train ...

``--recipe genseg-r1-two-stage`` runs the geometric recipe, then SAM-in-the-loop GenSeg-R1-G
from the stage-one result. Checkpoints resume with ``--resume_from_checkpoint true``; LoRA
adapters save with the run and `load_vlm` merges them for evaluation.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from genseg_lib.data import load_dataset
from genseg_lib.data.hf import to_hf_dataset
from genseg_lib.evaluate import build_segmenter, select_samples
from genseg_lib.rewards import PRESETS, RewardFn, build_rewards

LOG = logging.getLogger(__name__)
RECIPE_DIR = Path(__file__).resolve().parent.parent / "configs" / "recipes"
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
    root: str | None = field(default=None, metadata={"help": "data root (SPEC §6 layout)"})
    out: str | None = field(default=None, metadata={"help": "run folder (sets output_dir)"})
    limit: int | None = field(
        default=None, metadata={"help": "train on a seeded subset of this many samples"}
    )
    query_types: list[str] | None = field(
        default=None, metadata={"help": "train only on these query types (e.g. SynthRef's spatial)"}
    )
    reward_funcs: list[str] = field(
        default_factory=lambda: list(PRESETS["genseg-r1"]),
        metadata={"help": "reward terms by name (genseg_lib.rewards.REWARDS, sam_mask_iou)"},
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


def recipe_path(recipe: str) -> Path:
    """A recipe name (``configs/recipes/NAME.yaml``) or a YAML path."""
    path = Path(recipe)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    named = RECIPE_DIR / f"{recipe}.yaml"
    if not named.is_file():
        known = sorted(p.stem for p in RECIPE_DIR.glob("*.yaml"))
        raise ValueError(f"unknown recipe {recipe!r}; known: {known}")
    return named


def parse_args(argv: Sequence[str]) -> tuple[GenSegArguments, Any]:
    """Recipe YAML as defaults, then command-line overrides -> (GenSegArguments, GRPOConfig)."""
    from trl import GRPOConfig, TrlParser

    argv = list(argv)
    recipe = _flag(argv, "--recipe") or "genseg-r1"
    # device policy: bf16 on CUDA, fp32 on CPU, decided before TrainingArguments validates it
    cpu = not torch.cuda.is_available() or _flag(argv, "--use_cpu") in ("true", "True", "1")
    parser = TrlParser((GenSegArguments, GRPOConfig))
    args, grpo = parser.parse_args_and_config(
        ["--config", str(recipe_path(recipe)), "--bf16", str(not cpu).lower(), *argv]
    )
    if args.out:
        grpo.output_dir = args.out
    if grpo.use_vllm and importlib.util.find_spec("vllm") is None:
        raise SystemExit(
            "use_vllm=True but vLLM is not installed: `pip install vllm` on a CUDA machine "
            "(vllm_mode=colocate runs it inside the trainer; vllm_mode=server needs "
            "`trl vllm-serve`)."
        )
    return args, grpo


def _flag(argv: Sequence[str], flag: str) -> str | None:
    return argv[argv.index(flag) + 1] if flag in argv and argv.index(flag) + 1 < len(argv) else None


def load_policy(model: str, grpo: Any, max_pixels: int | None) -> tuple[Any, Any]:
    """Model (bf16 on CUDA, fp32 on CPU) and processor for training."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    dtype = torch.bfloat16 if grpo.bf16 else torch.float32
    net = AutoModelForImageTextToText.from_pretrained(model, dtype=dtype)
    processor = AutoProcessor.from_pretrained(model)
    processor.tokenizer.padding_side = "left"
    if max_pixels:
        processor.image_processor.size = {
            **dict(processor.image_processor.size),
            "longest_edge": max_pixels,
        }
    return net, processor


def build_trainer(
    args: GenSegArguments,
    grpo: Any,
    extra_rewards: Sequence[Callable[..., list[float]]] = (),
) -> Any:
    """A configured `GRPOTrainer` (dataset, rewards, LoRA, special-token suppression)."""
    from peft import LoraConfig
    from trl import GRPOTrainer

    from genseg_lib.vlm import special_token_ids_to_suppress

    if not args.model:
        raise ValueError("--model is required (a hub id or a local folder)")
    name, _, split = args.dataset.partition(":")
    samples = load_dataset(name, args.root, split or "train")
    if args.query_types:
        samples = [s for s in samples if s.query_type in args.query_types]
    samples = select_samples(samples, args.limit, grpo.seed)
    dataset = to_hf_dataset(samples)
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
    model, processor = load_policy(args.model, grpo, args.max_pixels)
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
        "GRPO on %d samples of %s with rewards %s", len(dataset), args.dataset, args.reward_funcs
    )
    return GRPOTrainer(
        model=model,
        processing_class=processor,
        reward_funcs=rewards,
        args=grpo,
        train_dataset=dataset,
        peft_config=peft_config,
    )


def _resume_arg(grpo: Any) -> str | bool | None:
    value = grpo.resume_from_checkpoint
    if value in (None, "", "false", "False"):
        return None
    return True if value in ("true", "True", "auto") else value


def train(argv: Sequence[str], extra_rewards: Sequence[Callable[..., list[float]]] = ()) -> Path:
    """Run one recipe (or each stage of a multi-stage recipe); returns the final run folder."""
    args, grpo = parse_args(argv)
    if args.stages:
        return _train_stages(list(argv), args, grpo)
    trainer = build_trainer(args, grpo, extra_rewards)
    trainer.train(resume_from_checkpoint=_resume_arg(grpo))
    trainer.save_model(grpo.output_dir)
    trainer.save_state()  # trainer_state.json: the per-term reward curves
    if trainer.accelerator.is_main_process:
        trainer.processing_class.save_pretrained(grpo.output_dir)
    return Path(grpo.output_dir)


def _replace_flag(argv: list[str], flag: str, value: str) -> list[str]:
    out = list(argv)
    if flag in out:
        out[out.index(flag) + 1] = value
    else:
        out += [flag, value]
    return out


def _train_stages(argv: list[str], args: GenSegArguments, grpo: Any) -> Path:
    """Two-stage schedule: each stage's recipe, from the previous stage's saved model."""
    model = args.model
    out = Path(grpo.output_dir)
    for i, stage in enumerate(args.stages, 1):
        stage_argv = _replace_flag(argv, "--recipe", stage)
        stage_argv = _replace_flag(stage_argv, "--model", str(model))
        stage_argv = _replace_flag(stage_argv, "--out", str(out / f"stage{i}-{stage}"))
        LOG.info("stage %d/%d: %s from %s", i, len(args.stages), stage, model)
        model = train(stage_argv)
        if args.lora:  # the next stage starts from the merged stage result
            from genseg_lib.vlm import merge_lora

            model = merge_lora(model, out / f"stage{i}-{stage}-merged")
    return Path(model)


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    out = train(sys.argv[1:] if argv is None else argv)
    LOG.info("finished: %s", out)


if __name__ == "__main__":
    main()
