"""Where a stage-0 step's time goes: batch building vs the model, and per-image vs packed
vision attention (`stage0.packed_attention`), measured side by side in one run.

Builds the random SynthRef prompter, then times (1) the batch loaders alone with N workers,
(2) a vision-pretraining step and (3) a warm-start step on one fixed batch, each with the
tower's per-image SDPA and with packed attention, checking that both give the same loss. Each
model step is timed twice: with every SDPA kernel allowed (PyTorch's default) and as training
runs, with the cuDNN kernel off (`genseg_lib.device.training_attention`).

    python benchmarks/stage0_step.py [--device auto --workers 0 --vision-batch-size 64 --steps 10]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import time
from collections.abc import Callable

import torch

from genseg_lib.device import autocast, resolve_device, training_attention
from genseg_lib.models.vlm import coord_frame_for
from genseg_lib.stage0.batches import step_loader
from genseg_lib.stage0.packed_attention import packed_vision_attention
from genseg_lib.stage0.prompter import build_synthref_prompter
from genseg_lib.stage0.vision_pretrain import (
    TokenHeads,
    TokenTargets,
    VisionBatches,
    VisionPretrainConfig,
)
from genseg_lib.stage0.warmstart import StepBatches, WarmStartConfig


def _rate(fn: Callable[[], object], steps: int, device: torch.device) -> float:
    """Calls per second of ``fn`` after one warm-up call."""
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - t0)


def _loader_rate(dataset: torch.utils.data.Dataset, workers: int, steps: int) -> float:
    loader = iter(step_loader(dataset, workers))
    next(loader)  # workers started
    t0 = time.perf_counter()
    for _ in itertools.islice(loader, steps):
        pass
    return steps / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--vision-batch-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    device = resolve_device(args.device)
    model, processor = build_synthref_prompter()
    model.to(device).train()
    vision_cfg = VisionPretrainConfig(steps=args.steps + 2, batch_size=args.vision_batch_size)
    warm_cfg = WarmStartConfig(
        steps=args.steps + 2, batch_size=args.batch_size, single_object_steps=0, pair_steps=0
    )
    vision_data = VisionBatches(vision_cfg, processor, 128, 0)
    warm_data = StepBatches(warm_cfg, processor, coord_frame_for(model.config.model_type), 0)

    item = vision_data[0]
    pixels = item.pop("pixel_values").to(device)
    grid = item.pop("image_grid_thw").to(device)
    targets = TokenTargets(**item).to(device)
    heads = TokenHeads(model.config.text_config.hidden_size).to(device)
    batch = {k: v.to(device) for k, v in warm_data[0].items() if k != "binding_targets"}

    def vision_step() -> float:
        with autocast(device):
            features = model.model.visual(pixels, grid_thw=grid).pooler_output
        loss = sum(heads.losses(features.float(), targets).values())
        loss.backward()
        model.zero_grad(set_to_none=True)
        return float(loss.detach())

    def warm_step() -> float:
        with autocast(device):
            loss = model(**batch).loss
        loss.backward()
        model.zero_grad(set_to_none=True)
        return float(loss.detach())

    print(f"device {device}, workers {args.workers}, {args.steps} timed steps each")
    print(f"vision batch {args.vision_batch_size} scenes, warm-start batch {args.batch_size}")
    rates = {}
    for name, dataset in (("vision", vision_data), ("warm start", warm_data)):
        rates[name, "loader"] = _loader_rate(dataset, args.workers, args.steps)
    attention_modes = {"all kernels": contextlib.nullcontext, "cuDNN off": training_attention}
    for name, step in (("vision", vision_step), ("warm start", warm_step)):
        for attention, attention_ctx in attention_modes.items():
            losses = {}
            for mode in ("per image", "packed"):
                packed = packed_vision_attention(model) if mode == "packed" else None
                with attention_ctx(), packed or contextlib.nullcontext():
                    torch.manual_seed(0)
                    losses[mode] = step()
                    rates[name, attention, mode] = _rate(step, args.steps, device)
            same = abs(losses["per image"] - losses["packed"]) <= 1e-3 * abs(losses["per image"])
            per_image, packed_rate = (
                rates[name, attention, "per image"],
                rates[name, attention, "packed"],
            )
            print(
                f"{name:10s} {attention:11s} loader {rates[name, 'loader']:7.1f} batches/s | "
                f"model step: per-image attention {per_image:7.1f}/s, packed {packed_rate:7.1f}/s"
                f" | packed/per-image {packed_rate / per_image:.2f}x | same loss: {same}"
            )
        off, on = rates[name, "cuDNN off", "packed"], rates[name, "all kernels", "packed"]
        print(f"{name:10s} packed, cuDNN off / all kernels: {off / on:.2f}x")


if __name__ == "__main__":
    main()
