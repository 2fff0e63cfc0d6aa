"""Command line of one evaluation (settings are parsed here and nowhere else):

    python -m genseg_lib.evaluate --model ID_OR_PATH|oracle --segmenter sam2:ID|classical \
        --dataset NAME:SPLIT --root DIR --out DIR [--limit N --seed S --batch-size B]
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from genseg_lib.cli import model_source, positive_int
from genseg_lib.data import load_dataset
from genseg_lib.device import resolve_device
from genseg_lib.evaluate.prompters import OraclePrompter, Prompter, VLMPrompter
from genseg_lib.evaluate.runner import EvalConfig, evaluate
from genseg_lib.evaluate.summary import results_markdown
from genseg_lib.models.vlm import GenerationOptions
from genseg_lib.segment.factory import build_segmenter


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m genseg_lib.evaluate",
        description="Resumable evaluation: samples -> prompter -> segmenter -> metrics.",
    )
    parser.add_argument(
        "--model",
        required=True,
        type=lambda t: t if t == "oracle" else model_source(t),
        help="hub id or folder of a Qwen-VL model, or 'oracle'",
    )
    parser.add_argument(
        "--segmenter", default="classical", help="classical | sam2:ID | sam2-random:ID"
    )
    parser.add_argument("--dataset", required=True, help="NAME:SPLIT, e.g. refcocog:val")
    parser.add_argument(
        "--root", required=True, type=Path, help="data root (docs/method.md §6 layout)"
    )
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--limit", type=positive_int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=positive_int, default=8)
    parser.add_argument(
        "--max-new-tokens", type=positive_int, default=GenerationOptions.max_new_tokens
    )
    parser.add_argument(
        "--skip-missing",
        action="store_true",
        help="skip (and count) samples whose image is missing",
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--max-pixels", type=positive_int)
    parser.add_argument(
        "--coord-frame",
        choices=["norm1000", "pixels"],
        help="override the frame the model's family answers in",
    )
    parser.add_argument(
        "--sam-image-size", type=positive_int, help="reduced SAM input size (tests only)"
    )
    parser.add_argument("--profile", default="paper", help="label written into the summary")
    parser.add_argument("--arm", help="what the run stands for in reports (e.g. baseline)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    resolve_device(args.device)  # a device that is not there fails every path, oracle included
    name, _, split = args.dataset.partition(":")
    samples = load_dataset(name, args.root, split or "val")
    if args.model == "oracle":
        prompter: Prompter = OraclePrompter()
    else:
        from genseg_lib.models.vlm import load_vlm

        vlm = load_vlm(
            args.model, device=args.device, max_pixels=args.max_pixels, coord_frame=args.coord_frame
        )
        prompter = VLMPrompter(vlm, GenerationOptions(max_new_tokens=args.max_new_tokens))
    segmenter = build_segmenter(args.segmenter, args.device, args.sam_image_size)
    cfg = EvalConfig(
        batch_size=args.batch_size, limit=args.limit, seed=args.seed, skip_missing=args.skip_missing
    )
    meta = {
        "profile": args.profile,
        "arm": args.arm or ("oracle" if args.model == "oracle" else None),
        "model": args.model,
        "segmenter": args.segmenter,
        "dataset": f"{name}:{split or 'val'}",
        "config": asdict(cfg),
    }
    summary = evaluate(samples, prompter, segmenter, args.out, cfg, meta)
    print(results_markdown(summary))
    return summary


if __name__ == "__main__":
    main()
