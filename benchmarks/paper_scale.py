"""Will the paper setting fit, and how long will it take? A random-initialised Qwen3-VL of a
released size (2B, 4B, 8B: layer sizes from the published configs,
`genseg_lib.models.build.QWEN3VL_PUBLISHED_SIZES`) and a random-initialised SAM 2.1 run a few
GRPO steps of a recipe through the project's own `train` driver, then `evaluate`; printed:
parameters, peak GPU memory, the step split (generation, each reward, log-prob forward,
backward), generation tokens/s and ms per decoding step, evaluation queries/s, and projected
times for one epoch and one evaluation at the paper's dataset sizes.

    python benchmarks/paper_scale.py --size 8b [--lora] [--cache-implementation static]
    python benchmarks/paper_scale.py --size tiny --segmenter classical  # CPU (a test runs it)

Random weights write random answers (few readable), so reward and SAM times reflect that; the
SAM bridge benchmark measures the SAM reward on readable answers. SynthRef images stand in for
RefCOCOg's, resized to --image-size.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from genseg_lib.data.synthref import SynthRefConfig, synthref_samples, write_synthref
from genseg_lib.device import resolve_device
from genseg_lib.evaluate import EvalConfig, VLMPrompter, evaluate
from genseg_lib.models.build import QWEN3VL_PUBLISHED_SIZES, Qwen3VLSizes, save_random_qwen3vl
from genseg_lib.models.vlm import GenerationOptions, load_vlm
from genseg_lib.segment.factory import build_segmenter
from genseg_lib.train.grpo import build_trainer, recipe_settings
from genseg_lib.train.profiling import StepTimer, step_split, trl_sections

SIZES = {"tiny": Qwen3VLSizes(), **QWEN3VL_PUBLISHED_SIZES}
# expressions per split (docs/method.md §6): RefCOCOg umd train and val
REFCOCOG_TRAIN, REFCOCOG_VAL = 80_512, 4_896
GENERATION_BACKENDS = ("hf",)  # where vLLM would plug in (docs/method.md §8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny")
    parser.add_argument("--recipe", default="genseg-r1-g")
    parser.add_argument("--lora", action="store_true", help="LoRA (default: full fine-tuning)")
    parser.add_argument(
        "--segmenter",
        help="default: classical for tiny, else sam2-random:facebook/sam2.1-hiera-large",
    )
    parser.add_argument("--sam-image-size", type=int, help="reduced SAM input (CPU checks)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--prompts", type=int, default=8, help="prompts per step")
    parser.add_argument("--generations", type=int, default=8)
    parser.add_argument("--max-completion-length", type=int, default=256)
    parser.add_argument("--image-size", type=int, default=640)
    parser.add_argument("--eval-queries", type=int, default=32)
    parser.add_argument("--cache-implementation", choices=["dynamic", "static"])
    parser.add_argument("--generation-backend", choices=GENERATION_BACKENDS, default="hf")
    parser.add_argument("--grefcoco-train", type=int, help="gRefCOCO train expressions to project")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    if args.segmenter is None:
        args.segmenter = (
            "classical" if args.size == "tiny" else "sam2-random:facebook/sam2.1-hiera-large"
        )
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        n_params = save_random_qwen3vl(
            tmp / "model", SIZES[args.size], 0, device, torch.bfloat16 if cuda else None
        )
        build_s = time.perf_counter() - t0
        write_synthref(tmp / "data", 400, seed=0, cfg=SynthRefConfig(image_size=args.image_size))
        overrides = {
            "model": str(tmp / "model"),
            "dataset": "synthref:train",
            "root": str(tmp / "data"),
            "out": str(tmp / "run"),
            "segmenter": args.segmenter,
            "sam_image_size": args.sam_image_size,
            "lora": args.lora,
            "max_steps": args.steps,
            "num_generations": args.generations,
            "per_device_train_batch_size": args.prompts * args.generations,
            "gradient_accumulation_steps": 1,
            "max_completion_length": args.max_completion_length,
            "save_strategy": "no",
            "report_to": "none",
            "logging_steps": 1,
            "bf16": cuda,
            "use_cpu": not cuda,
            "gradient_checkpointing": cuda,
        }
        if args.cache_implementation:
            overrides["cache_implementation"] = args.cache_implementation
        gen_args, grpo = recipe_settings(args.recipe, overrides)
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        with trl_sections() as sections:
            trainer = build_trainer(gen_args, grpo)
            trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
            timer = StepTimer()
            trainer.add_callback(timer)
            trainer.train()
        peak_train = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
        logs = [h for h in trainer.state.log_history if "completions/mean_length" in h]
        del trainer
        if cuda:
            torch.cuda.empty_cache()

        # evaluation: greedy answers + the segmenter, queries per second
        vlm = load_vlm(tmp / "model", device=str(device))  # bf16 on CUDA, fp32 on CPU
        samples = synthref_samples(
            "val", args.eval_queries, seed=0, cfg=SynthRefConfig(image_size=args.image_size)
        )
        segmenter = build_segmenter(args.segmenter, str(device), args.sam_image_size)
        options = GenerationOptions(max_new_tokens=args.max_completion_length)
        t0 = time.perf_counter()
        evaluate(
            samples, VLMPrompter(vlm, options), segmenter, tmp / "eval", EvalConfig(batch_size=8)
        )
        eval_qps = len(samples) / (time.perf_counter() - t0)

    steps = timer.times[1:] or timer.times  # the first step pays one-off start-up (compile)
    step_s = sum(steps) / len(steps)
    split = step_split(sections, steps, gen_args.reward_funcs)
    generation_s = dict(split)["generation"]
    batch = args.prompts * args.generations
    tokens = sum(h["completions/mean_length"] for h in logs[-len(steps) :]) / len(steps) * batch
    longest = max(h.get("completions/max_length", args.max_completion_length) for h in logs)
    print(
        f"paper_scale: Qwen3-VL {args.size} (random init, {n_params / 1e9:.3f} B parameters, "
        f"{trainable / 1e6:.1f} M trainable, {'LoRA' if args.lora else 'full'}), recipe "
        f"{args.recipe}, segmenter {args.segmenter}, device {device}, "
        f"{'bf16' if cuda else 'fp32'}, backend {args.generation_backend}, cache "
        f"{args.cache_implementation or 'dynamic'}"
    )
    print(
        f"batch: {args.prompts} prompts x {args.generations} generations, "
        f"{args.max_completion_length}-token completions, {args.image_size}-px images; "
        f"model built and saved in {build_s:.1f} s"
    )
    print(f"peak GPU memory (training): {f'{peak_train:.1f} GiB' if cuda else 'n/a (CPU)'}")
    print(f"first step (warm-up, compilation): {timer.times[0]:.2f} s")
    print(f"GRPO step, mean of {len(steps)} after the first:")
    for name, secs in split:
        print(f"  {name:30s} {secs:8.3f} s  {100 * secs / step_s:5.1f} %")
    print(f"  {'step':30s} {step_s:8.3f} s")
    print(
        f"generation: {tokens / generation_s:.0f} tokens/s, "
        f"{1000 * generation_s / max(longest, 1):.1f} ms per decoding step "
        f"(longest completion {longest:.0f} tokens)"
    )
    print(f"evaluation: {eval_qps:.2f} queries/s (greedy, batch 8, segmenter included)")
    hours = step_s / 3600
    print("projected (this setting):")
    print(
        f"  RefCOCOg umd train epoch ({REFCOCOG_TRAIN} expressions, {args.prompts} per step): "
        f"{REFCOCOG_TRAIN / args.prompts * hours:.1f} h"
    )
    if args.grefcoco_train:
        print(
            f"  gRefCOCO train epoch ({args.grefcoco_train} expressions): "
            f"{args.grefcoco_train / args.prompts * hours:.1f} h"
        )
    else:
        print(
            "  gRefCOCO train epoch: pass --grefcoco-train N (the count `python -m "
            "genseg_lib.data check grefcoco ROOT --split train` prints)"
        )
    eval_h = REFCOCOG_VAL / eval_qps / 3600
    print(f"  RefCOCOg val evaluation ({REFCOCOG_VAL} expressions): {eval_h:.2f} h")
    print(json.dumps({"step_s": step_s, "generation_share": generation_s / step_s}))


if __name__ == "__main__":
    main()
