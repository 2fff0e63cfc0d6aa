"""Resumable experiment runs for the notebooks: GRPO runs, the supervised control, and
metrics of a query-type subset of an evaluation (with spread over seeds)."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genseg_lib.evaluate import PREDICTIONS, read_predictions, summarize

LOG = logging.getLogger(__name__)
SINGLE_TARGET_TYPES = [
    "attribute",
    "spatial",
    "ordinal",
    "reasoning",
]  # SynthRef's single-target queries


@dataclass
class GRPOSettings:
    """The GRPO knobs the notebooks vary (everything else comes from the recipe)."""

    max_steps: int = 100
    num_generations: int = 8
    prompts_per_step: int = 8
    max_completion_length: int = 160  # SynthRef: one object 52-68 tokens, two 100-108
    learning_rate: float = 1e-4
    beta: float = 0.0
    temperature: float = 1.0
    cpu: bool = True
    extra: list[str] = field(default_factory=list)


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
    """Train one GRPO run into ``out`` (skipped when finished, resumed when interrupted)."""
    from genseg_lib.train import train

    if (out / "trainer_state.json").exists():
        return out
    argv = [
        "--recipe",
        recipe,
        "--model",
        model,
        "--dataset",
        dataset,
        "--root",
        str(root),
        "--out",
        str(out),
        "--segmenter",
        segmenter,
        "--seed",
        str(seed),
        "--max_steps",
        str(settings.max_steps),
        "--num_generations",
        str(settings.num_generations),
        "--per_device_train_batch_size",
        str(settings.num_generations * settings.prompts_per_step),
        "--gradient_accumulation_steps",
        "1",
        "--max_completion_length",
        str(settings.max_completion_length),
        "--learning_rate",
        str(settings.learning_rate),
        "--beta",
        str(settings.beta),
        "--temperature",
        str(settings.temperature),
        "--lr_scheduler_type",
        "constant",
        "--save_steps",
        str(max(1, settings.max_steps // 4)),
        "--report_to",
        "none",
        *settings.extra,
    ]
    if query_types:
        argv += ["--query_types", *query_types]
    if settings.cpu:
        argv += ["--use_cpu", "true", "--gradient_checkpointing", "false"]
    if sorted(out.glob("checkpoint-*")):
        argv += ["--resume_from_checkpoint", "true"]
    return train(argv)


def supervised_control(
    model: str, out: Path, steps: int, seed: int, learning_rate: float = 1e-4
) -> Path:
    """The control for GenSeg-R1 on SynthRef: the same number of extra optimizer steps of
    supervised training on single-target queries, from the same checkpoint."""
    from genseg_lib.warmstart import WarmStartConfig, warm_start

    if (out / "warmstart.json").exists():
        return out
    cfg = WarmStartConfig(
        out=str(out),
        steps=steps,
        single_object_steps=0,
        multi_share=0.0,
        no_target_share=0.0,
        lr=learning_rate,
        warmup=0,
        eval_every=max(steps, 1),
        eval_samples=16,
        save_every=max(1, steps // 4),
        seed=1000 + seed,
        init=model,
    )
    return warm_start(cfg)


def subset_summary(run_dir: Path, query_types: Sequence[str] | None = None) -> dict[str, Any]:
    """`summarize` over the records of an evaluation run whose query type is in ``query_types``."""
    records = list(read_predictions(Path(run_dir) / PREDICTIONS).values())
    if query_types is not None:
        records = [r for r in records if r.get("query_type") in query_types]
    meta = json.loads((Path(run_dir) / "summary.json").read_text())
    keep = {k: meta[k] for k in ("profile", "model", "segmenter", "dataset") if k in meta}
    return summarize(records, keep)


def mean_spread(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value; NaN-free values only)."""
    vals = [v for v in values if not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return math.nan, math.nan
    return float(np.mean(vals)), float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0


def seed_table(
    groups: dict[str, list[dict[str, Any]]], metrics: Sequence[str], section: str = "overall"
) -> pd.DataFrame:
    """A row per group of runs (seeds): ``metric`` mean and ``metric ±`` spread, in percent."""
    rows = []
    for name, summaries in groups.items():
        row: dict[str, Any] = {"run": name, "seeds": len(summaries), "n": summaries[0]["n_samples"]}
        for m in metrics:
            mean, sd = mean_spread([100 * s[section][m] for s in summaries])
            row[m], row[f"{m} ±"] = mean, sd
        rows.append(row)
    return pd.DataFrame(rows)


# issue 9's stage-0 targets on single-target SynthRef val queries (fractions)
STAGE0_TARGETS = {"box_mIoU": 0.60, "gIoU": 0.50}


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
    trained = (
        f"{vision[-1]['step'] if vision else 0} vision-pretraining steps + "
        f"{info['steps_done']} supervised steps ({cfg['single_object_steps']} single-object), "
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


def answers_from_runs(
    samples: Sequence[Any], run_dirs: dict[str, Path], segmenter: Any
) -> tuple[dict, dict]:
    """Each run's parsed answer and union mask for ``samples`` (from its predictions.jsonl),
    for galleries of answers before and after training."""
    from genseg_lib.answer import parse_answer
    from genseg_lib.segment.base import answer_masks

    answers, masks = {}, {}
    images = [s.load_image() for s in samples]
    for name, run_dir in run_dirs.items():
        records = read_predictions(Path(run_dir) / PREDICTIONS)
        answers[name] = [parse_answer(records[s.sample_id]["text"], s.image_size) for s in samples]
        masks[name] = answer_masks(segmenter, images, [a.instances for a in answers[name]])
    return answers, masks
