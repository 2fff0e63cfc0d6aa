"""SAM reward workload two ways in one run: a naive loop vs the batched, cached bridge.

Workload (default): 4 images x 8 sampled answers x 2 instances, as in one GRPO step of the
SAM-in-the-loop reward. Naive = what a reward written without the bridge does: for every
answer, ``set_image`` then one ``predict`` per instance. Prints the speedup ratio and the
largest mask disagreement (1 - IoU) between the two; on CUDA also masks/s and peak memory.

    python benchmarks/sam_bridge.py [--image-size 1024] [--images 4 --answers 8 --instances 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from genseg_lib.data.synthref import SynthRefConfig, synthref_samples
from genseg_lib.device import inference_context
from genseg_lib.segment import InstancePrompt
from genseg_lib.segment.oracle import oracle_instances
from genseg_lib.segment.sam2_bridge import Sam2Bridge


def workload(n_images: int, n_answers: int, n_instances: int, seed: int = 0):
    """Images and, per answer, jittered oracle prompts (sampled answers scatter around GT)."""
    rng = np.random.default_rng(seed)
    samples = synthref_samples("val", 400, seed=seed, cfg=SynthRefConfig(image_size=256))
    chosen, seen = [], set()
    for s in samples:  # distinct scenes with enough objects
        scene = s.source["scene_id"]
        if scene not in seen and s.source["targets"]:
            seen.add(scene)
            chosen.append(s)
        if len(chosen) == n_images:
            break
    images, prompts = [], []
    for s in chosen:
        base = oracle_instances(s.instance_masks())
        while len(base) < n_instances:
            base = base + base
        for _ in range(n_answers):
            answer = []
            for inst in base[:n_instances]:
                j = rng.normal(0, 4, size=4)
                box = tuple(float(v) for v in np.add(inst.box, j))
                pts = tuple(
                    (x + float(rng.normal(0, 2)), y + float(rng.normal(0, 2)))
                    for x, y in inst.points
                )
                answer.append(InstancePrompt(box=box, points=pts))
            images.append(s.image)
            prompts.append(answer)
    return images, prompts


def naive(bridge: Sam2Bridge, images, prompts) -> list[list[np.ndarray]]:
    pred = bridge.predictor
    out = []
    with inference_context(bridge.device):
        for image, answer in zip(images, prompts, strict=True):
            pred.set_image(image)
            masks = []
            for p in answer:
                m, _, _ = pred.predict(
                    point_coords=np.array(p.points),
                    point_labels=np.array(p.labels),
                    box=np.array(p.box),
                    multimask_output=False,
                )
                masks.append(m[0] > 0)
            out.append(masks)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="facebook/sam2.1-hiera-tiny")
    parser.add_argument(
        "--pretrained", action="store_true", help="load hub weights (else random init)"
    )
    parser.add_argument("--image-size", type=int, default=1024, help="SAM input resolution")
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--answers", type=int, default=8)
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    torch.manual_seed(0)
    bridge = Sam2Bridge.from_pretrained(
        args.model,
        random_init=not args.pretrained,
        device=args.device,
        image_size=None if args.image_size == 1024 else args.image_size,
    )
    images, prompts = workload(args.images, args.answers, args.instances)
    n_masks = sum(len(p) for p in prompts)
    weights = "pretrained" if args.pretrained else "random init"
    print(
        f"device {bridge.device}, {args.model} ({weights}), "
        f"input {args.image_size}px; {args.images} images x {args.answers} answers x "
        f"{args.instances} instances = {n_masks} masks"
    )
    bridge.segment(images[:1], prompts[:1])  # warm-up (allocations, lazy init)
    bridge.clear_cache()
    if bridge.device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    slow = naive(bridge, images, prompts)
    t_naive = time.perf_counter() - t0
    bridge.clear_cache()
    t0 = time.perf_counter()
    fast = bridge.segment(images, prompts)
    if bridge.device.type == "cuda":
        torch.cuda.synchronize()
    t_bridge = time.perf_counter() - t0
    worst = 0.0
    for a_list, b_list in zip(slow, fast, strict=True):
        for a, b in zip(a_list, b_list, strict=True):
            union = (a | b).sum()
            worst = max(worst, 0.0 if union == 0 else 1 - (a & b).sum() / union)
    print(f"naive  (set_image + predict per answer): {t_naive:8.2f} s")
    print(f"bridge (cached embeddings, batched decode): {t_bridge:8.2f} s")
    print(f"speedup: {t_naive / t_bridge:.1f}x   max mask disagreement (1 - IoU): {worst:.2e}")
    if bridge.device.type == "cuda":
        print(
            f"bridge throughput: {n_masks / t_bridge:.1f} masks/s; "
            f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB"
        )


if __name__ == "__main__":
    main()
