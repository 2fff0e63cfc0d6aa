"""Resumable experiment runs for the notebooks: GRPO runs from typed settings, the supervised
control, the evaluation of a trained model, and the stage-0 table."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genseg_lib.data import Sample
from genseg_lib.device import resolve_device
from genseg_lib.evaluate import EvalConfig, VLMPrompter, evaluate
from genseg_lib.models.vlm import GenerationOptions, load_vlm
from genseg_lib.runinfo import refuse_other_run
from genseg_lib.segment.base import PromptableSegmenter

LOG = logging.getLogger(__name__)
SINGLE_TARGET_TYPES = ["attribute", "spatial", "ordinal", "reasoning"]  # SynthRef's
MULTI_TARGET_TYPE = "multi"  # SynthRef's


@dataclass
class GRPOSettings:
    """The GRPO knobs the notebooks vary (everything else comes from the recipe)."""

    max_steps: int = 100
    num_generations: int = 8
    prompts_per_step: int = 8
    max_completion_length: int = 160  # SynthRef: one object 52-68 tokens, two 100-108
    learning_rate: float | None = None  # None: the recipe's (the paper's 1e-6)
    beta: float | None = None  # None: the recipe's KL weight (0.04)
    temperature: float = 1.0
    no_target_share: float | None = None  # oversample no-target prompts to this share
    multi_target_share: float | None = None  # ... and multi-target prompts to this one
    device: str = "auto"  # auto: CUDA when present, else CPU
    extra: dict[str, Any] = field(default_factory=dict)  # any other recipe field

    def overrides(self) -> dict[str, Any]:
        """These settings as recipe overrides (`genseg_lib.train.grpo.recipe_settings`)."""
        out: dict[str, Any] = {
            "max_steps": self.max_steps,
            "num_generations": self.num_generations,
            "per_device_train_batch_size": self.num_generations * self.prompts_per_step,
            "gradient_accumulation_steps": 1,
            "max_completion_length": self.max_completion_length,
            "temperature": self.temperature,
            "lr_scheduler_type": "constant",
            "save_steps": max(1, self.max_steps // 4),
            "report_to": "none",
        }
        for key in ("learning_rate", "beta", "no_target_share", "multi_target_share"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if resolve_device(self.device).type == "cpu":
            out.update(use_cpu=True, gradient_checkpointing=False)
        return {**out, **self.extra}


def stage1_plan(
    settings: GRPOSettings,
    single_types: Sequence[str] | None,
    multi_target_share: float | None = None,
) -> tuple[GRPOSettings, list[str] | None]:
    """Stage 1's settings and query types. By default its queries are ``single_types`` (None:
    the training set's all, as RefCOCOg, the paper's stage-1 set, holds single targets only).
    With ``multi_target_share`` SynthRef's multi-target queries join them, resampled to that
    share: the geometric rewards match each listed box to a target and divide by the larger
    count, so a list that finds two targets earns twice one box's reward (docs/method.md §7)."""
    if multi_target_share is None:
        return settings, None if single_types is None else list(single_types)
    types = None if single_types is None else [*single_types, MULTI_TARGET_TYPE]
    return replace(settings, multi_target_share=multi_target_share), types


def grpo_run(
    recipe: str,
    model: str,
    out: Path,
    dataset: str,
    root: Path,
    segmenter: str,
    settings: GRPOSettings,
    seed: int = 0,
    query_types: Sequence[str] | None = None,
) -> Path:
    """Train one GRPO run into ``out`` (skipped when finished with these settings, resumed when
    interrupted; a folder holding a run with other settings is an error, not reused)."""
    from genseg_lib.train.grpo import RUNTIME_FIELDS, grpo_run_info, recipe_settings, train

    overrides = {
        **settings.overrides(),
        "model": model,
        "dataset": dataset,
        "root": str(root),
        "out": str(out),
        "segmenter": segmenter,
        "seed": seed,
    }
    if query_types:
        overrides["query_types"] = list(query_types)
    if (out / "trainer_state.json").exists():
        info = grpo_run_info(*recipe_settings(recipe, overrides))
        refuse_other_run(out, info, depth=3, ignore=RUNTIME_FIELDS)
        return out
    if sorted(out.glob("checkpoint-*")):
        overrides["resume_from_checkpoint"] = "true"
    return train(*recipe_settings(recipe, overrides))


def supervised_control(
    model: str,
    out: Path,
    steps: int,
    seed: int,
    learning_rate: float = 1e-4,
    labels: str = "grounding",
    device: str = "auto",
    freeze_vision_tower: bool = False,
) -> Path:
    """Supervised continuation from the same checkpoint for the same number of optimizer
    steps as a GRPO run, on the stage-0 query mix: with ``labels="grounding"`` the control
    (stage-0 labels: does more supervised training give the same?), with ``labels="oracle"``
    the reference (privileged interior-point labels the paper never uses: an upper bound).
    ``freeze_vision_tower`` holds the same weights still as the GRPO option of that name."""
    from genseg_lib.stage0.warmstart import WarmStartConfig, run_record, warm_start

    cfg = WarmStartConfig(
        out=str(out),
        steps=steps,
        single_object_steps=0,
        labels=labels,
        device=device,
        lr=learning_rate,
        warmup=0,
        eval_every=max(steps, 1),
        eval_samples=16,
        save_every=max(1, steps // 4),
        seed=1000 + seed,
        init=model,
        vision_lr_scale=0.0 if freeze_vision_tower else 1.0,
    )
    if (out / "warmstart.json").exists():
        info = run_record(cfg)
        refuse_other_run(out, info, ignore=("settings.out", "settings.device", "settings.workers"))
        return out
    return warm_start(cfg)


def evaluate_model(
    model: str | Path,
    arm: str,
    samples: Sequence[Sample],
    segmenter: PromptableSegmenter,
    out: Path,
    cfg: EvalConfig,
    options: GenerationOptions,
    meta: dict[str, Any],
    coord_frame: str | None = None,
) -> Path:
    """Evaluate (or resume evaluating) ``model`` as ``arm`` into ``out``; returns ``out``.
    ``coord_frame`` overrides the model family's frame (a profile's choice)."""
    vlm = load_vlm(model, coord_frame=coord_frame)
    evaluate(
        samples,
        VLMPrompter(vlm, options),
        segmenter,
        out,
        cfg,
        {**meta, "arm": arm, "model": str(model), "config": asdict(cfg)},
    )
    return out


# stage-0 target on single-target SynthRef val queries (fraction): Qwen3-VL Instruct's
# grounding on RefCOCOg is about 0.52 box mIoU, so the stand-in should ground about as well
STAGE0_TARGETS = {"box_mIoU": 0.50}


def stage0_table(model_dir: Path, single_target: dict[str, Any]) -> pd.DataFrame | None:
    """The warm start's record beside its targets: what was trained (from the checkpoint's
    ``warmstart.json``) and the measured single-target scores; None for other checkpoints."""
    path = Path(model_dir) / "warmstart.json"
    if not path.is_file():
        return None
    info = json.loads(path.read_text())
    cfg, minutes = info["config"], info["history"][-1]["minutes"] if info["history"] else 0.0
    vision = info.get("vision_history") or []
    minutes += vision[-1]["minutes"] if vision else 0.0
    # the configured count: the history is logged every 100 steps, a run may stop between logs
    vision_steps = cfg.get("vision_steps", vision[-1]["step"] if vision else 0)
    vision_batch = cfg.get("vision_batch_size", cfg["batch_size"])
    trained = (
        f"{vision_steps} vision-pretraining steps (batch {vision_batch}) + "
        f"{info['steps_done']} supervised steps ({cfg['single_object_steps']} single-object, "
        f"{cfg.get('pair_steps', 0)} on 2-3-object scenes), "
        f"batch {cfg['batch_size']}, {minutes:.0f} min"
    )
    rows = []
    for metric, target in STAGE0_TARGETS.items():
        measured = single_target["overall"][metric]
        rows.append(
            {
                "metric": metric,
                "target": 100 * target,
                "measured": 100 * measured,
                "met": bool(measured >= target),
                "n": single_target["n_samples"],
                "trained": trained,
            }
        )
    return pd.DataFrame(rows)


def _mean_pct(summaries: Sequence[dict[str, Any]], metric: str) -> float:
    return 100 * float(np.mean([s["overall"][metric] for s in summaries]))


def grpo_goals(
    base: dict[str, dict[str, Any]],
    stage1: dict[str, list[dict[str, Any]]],
    stage2: dict[str, list[dict[str, Any]]],
    control: dict[str, list[dict[str, Any]]],
    points_inside: list[float],
) -> pd.DataFrame:
    """The miniature's claims beside their goals: each argument maps a query subset
    (``single``, ``no_target``, ``targets``, ``multi``) to evaluation summaries (one per seed;
    one for ``base``); ``points_inside`` is stage 1's points-inside-mask rate per seed."""
    rows = []

    def add(claim: str, measure: str, goal: str, measured: float, met: bool) -> None:
        rows.append(
            {"claim": claim, "measure": measure, "goal": goal, "measured": measured, "met": met}
        )

    b_single = base["single"]["overall"]
    add(
        "stage 0 grounds single objects",
        "single-target box mIoU",
        ">= 50",
        100 * b_single["box_mIoU"],
        100 * b_single["box_mIoU"] >= 50,
    )
    s1, b = _mean_pct(stage1["single"], "gIoU"), 100 * b_single["gIoU"]
    c = _mean_pct(control["single"], "gIoU")
    add(
        "GenSeg-R1 makes the prompts the segmenter needs",
        "single-target gIoU, GRPO - base",
        ">= +8",
        s1 - b,
        s1 - b >= 8,
    )
    add("", "single-target gIoU, GRPO - control A", ">= +5", s1 - c, s1 - c >= 5)
    rate = 100 * float(np.mean(points_inside))
    add("", "points inside the mask, stage 1", ">= 90 %", rate, rate >= 90)
    n0, n2 = 100 * base["no_target"]["overall"]["N_acc"], _mean_pct(stage2["no_target"], "N_acc")
    add("GenSeg-R1-G learns to abstain", "N-acc before", "<= 15", n0, n0 <= 15)
    add("", "N-acc after stage 2", ">= 80", n2, n2 >= 80)
    t2 = _mean_pct(stage2["targets"], "T_acc")
    add("", "T-acc after stage 2", ">= 90", t2, t2 >= 90)
    m0, m2 = (
        100 * base["multi"]["overall"]["target_mIoU"],
        _mean_pct(stage2["multi"], "target_mIoU"),
    )
    add(
        "... and to find all targets",
        "multi-target target mIoU, stage 2 - base",
        ">= +10",
        m2 - m0,
        m2 - m0 >= 10,
    )
    s2 = _mean_pct(stage2["single"], "gIoU")
    add(
        "segmenter in the loop beats geometry alone",
        "single-target gIoU, stage 2 - stage 1",
        ">= 0",
        s2 - s1,
        s2 - s1 >= 0,
    )
    return pd.DataFrame(rows)


def sweep_table(rows: dict[str, tuple[dict[str, Any], dict[str, dict[str, Any]]]]) -> pd.DataFrame:
    """One row per GRPO setting (label -> (trainer state, evaluation summaries by subset
    ``single``/``no_target``/``targets``)): N-acc, single-target gIoU and T-acc of its
    evaluation, and over training the share of prompt groups whose rewards were all equal
    (``frac_reward_zero_std``: groups that teach nothing) and the mean reward of the last 10
    steps."""
    out = []
    for label, (state, subsets) in rows.items():
        logs = [h for h in state["log_history"] if "reward" in h]
        if not logs:
            raise ValueError(f"sweep row {label!r}: its trainer state logged no reward")
        out.append(
            {
                "setting": label,
                "N-acc": 100 * subsets["no_target"]["overall"]["N_acc"],
                "single-target gIoU": 100 * subsets["single"]["overall"]["gIoU"],
                "T-acc": 100 * subsets["targets"]["overall"]["T_acc"],
                "frac_reward_zero_std": float(
                    np.mean([h.get("frac_reward_zero_std", 0.0) for h in logs])
                ),
                "reward, last 10 steps": float(np.mean([h["reward"] for h in logs[-10:]])),
            }
        )
    return pd.DataFrame(out)
