"""Batched vs one-by-one generation on the same prompts, measured in one run.

Builds the tiny random Qwen3-VL (offline) unless --model is given, answers N SynthRef queries
greedily both ways, checks the texts agree, and prints the throughput ratio.

    python benchmarks/generation.py [--model PATH] [--n 16 --batch-size 8 --max-new-tokens 64]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from genseg_lib.data.synthref import synthref_samples
from genseg_lib.models.build import build_tiny_qwen3vl
from genseg_lib.models.vlm import GenerationOptions, load_vlm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model id or folder (default: build the tiny model)")
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        vlm = load_vlm(args.model or build_tiny_qwen3vl(tmp), device=args.device)
    samples = synthref_samples("val", args.n, seed=0)
    images = [s.load_image() for s in samples]
    queries = [s.query for s in samples]
    opts = GenerationOptions(max_new_tokens=args.max_new_tokens)
    vlm.generate(images[:1], queries[:1], opts)  # warm-up
    t0 = time.perf_counter()
    single = [vlm.generate([im], [q], opts)[0][0] for im, q in zip(images, queries, strict=True)]
    t_single = time.perf_counter() - t0
    t0 = time.perf_counter()
    batched: list[str] = []
    for i in range(0, args.n, args.batch_size):
        batched += vlm.generate(
            images[i : i + args.batch_size], queries[i : i + args.batch_size], opts
        )[0]
    t_batch = time.perf_counter() - t0
    same = sum(a == b for a, b in zip(single, batched, strict=True))
    print(f"device {vlm.device}, {args.n} prompts, {args.max_new_tokens} new tokens each")
    print(f"one by one : {args.n / t_single:7.2f} samples/s ({t_single:.2f} s)")
    print(f"batch {args.batch_size:<4} : {args.n / t_batch:7.2f} samples/s ({t_batch:.2f} s)")
    print(f"throughput ratio: {t_single / t_batch:.2f}x   identical texts: {same}/{args.n}")


if __name__ == "__main__":
    main()
