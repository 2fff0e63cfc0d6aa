"""Where a GRPO step's time goes: generation, each reward (SAM reward included), the
log-prob forward and the backward/optimizer remainder, measured in one run.

Runs a few steps of a recipe on the tiny Qwen3-VL (built offline) with SynthRef, timing with
TRL's own profiling hooks plus a step callback.

    python benchmarks/grpo_step.py [--recipe genseg-r1-g] [--segmenter classical|sam2-random:ID]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from genseg_lib.answer import format_answer
from genseg_lib.data.synthref import write_synthref
from genseg_lib.models.build import build_tiny_qwen3vl
from genseg_lib.train.grpo import build_trainer, recipe_settings
from genseg_lib.train.profiling import StepTimer, step_split, trl_sections


def time_sam_on_answers(trainer, n_prompts: int, n_generations: int) -> tuple[float, float] | None:
    """Time the SAM reward on readable answers (a random policy writes none), same batch shape;
    returns (seconds, mean reward)."""
    fn = next(
        (f for f in trainer.reward_funcs if getattr(f, "__name__", "") == "sam_mask_iou"), None
    )
    if fn is None:
        return None
    rng = np.random.default_rng(0)
    rows = [trainer.train_dataset[i] for i in range(n_prompts)]
    batch = [r for r in rows for _ in range(n_generations)]
    completions = []
    for r in batch:
        insts = [
            (np.add(box, rng.normal(0, 3, 4)).tolist(), pts)
            for box, pts in zip(r["gt_boxes"], r["gt_points"], strict=True)
        ]
        completions.append(format_answer(insts, (r["width"], r["height"]), think="t"))
    columns = {k: [r[k] for r in batch] for k in batch[0] if k != "prompt"}
    start = time.perf_counter()
    values = fn(prompts=[r["prompt"] for r in batch], completions=completions, **columns)
    return time.perf_counter() - start, float(np.mean(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="genseg-r1-g")
    parser.add_argument("--segmenter", default="sam2-random:facebook/sam2.1-hiera-tiny")
    parser.add_argument("--sam-image-size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--prompts", type=int, default=2, help="prompts per step")
    parser.add_argument("--generations", type=int, default=4)
    parser.add_argument("--max-completion-length", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, trl_sections() as sections:
        model = build_tiny_qwen3vl(Path(tmp) / "model")
        write_synthref(Path(tmp) / "data", 80, seed=0)
        gen_args, grpo = recipe_settings(
            args.recipe,
            {
                "model": str(model),
                "dataset": "synthref:train",
                "root": str(Path(tmp) / "data"),
                "out": str(Path(tmp) / "run"),
                "segmenter": args.segmenter,
                "sam_image_size": args.sam_image_size,
                "max_steps": args.steps,
                "num_generations": args.generations,
                "per_device_train_batch_size": args.prompts * args.generations,
                "gradient_accumulation_steps": 1,
                "max_completion_length": args.max_completion_length,
                "use_cpu": True,
                "gradient_checkpointing": False,
                "save_strategy": "no",
                "report_to": "none",
                "logging_steps": 1,
            },
        )
        trainer = build_trainer(gen_args, grpo)
        timer = StepTimer()
        trainer.add_callback(timer)
        trainer.train()
        sam_readable = time_sam_on_answers(trainer, args.prompts, args.generations)
    steps = timer.times[1:] or timer.times  # the first step pays one-off start-up
    n = len(steps)
    total = sum(steps) / n
    print(
        f"recipe {args.recipe}, segmenter {args.segmenter}, {args.prompts} prompts x "
        f"{args.generations} generations, {args.max_completion_length} tokens; mean of {n} steps"
    )
    for name, secs in step_split(sections, steps, gen_args.reward_funcs):
        print(f"  {name:30s} {secs:7.3f} s  {100 * secs / total:5.1f} %")
    print(f"  {'step':30s} {total:7.3f} s")
    if sam_readable is not None:
        secs, mean_reward = sam_readable
        print(
            f"SAM reward on a step's worth of readable answers ({args.prompts} x "
            f"{args.generations}, jittered GT prompts): {secs:.3f} s "
            f"({100 * secs / total:.1f} % of this step time), mean reward {mean_reward:.3f}"
        )


if __name__ == "__main__":
    main()
