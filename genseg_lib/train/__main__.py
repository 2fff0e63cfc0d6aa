"""Command line of GRPO training — the one place a command line is parsed:

    python -m genseg_lib.train --recipe genseg-r1 --model ID_OR_PATH --dataset refcocog:train \
        --root DATA_ROOT --out runs/genseg-r1 [--lora true] [--any GRPOConfig field]
    accelerate launch --config_file configs/accelerate/zero3.yaml -m genseg_lib.train ...

Flags given on the command line override the recipe's values; flags not given leave them.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from genseg_lib.train.grpo import (
    GenSegArguments,
    recipe_names,
    recipe_settings,
    stage_settings,
    train,
    train_stages,
)
from genseg_lib.train.peer_rewards import PEER_REWARDS
from genseg_lib.train.rewards import NEEDS_SEGMENTER, PRESETS, REWARDS

LOG = logging.getLogger(__name__)


def command_line_overrides(argv: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """``(recipe, {field: value})`` for exactly the flags given (typed by the dataclasses)."""
    from transformers import HfArgumentParser
    from trl import GRPOConfig

    presets = "; ".join(f"{k}: {', '.join(v)}" for k, v in PRESETS.items())
    parser = HfArgumentParser(
        (GenSegArguments, GRPOConfig),
        prog="python -m genseg_lib.train",
        description="GRPO training of the prompter (GenSeg-R1 / GenSeg-R1-G).",
        epilog=(
            f"recipes (configs/recipes): {', '.join(recipe_names())}. "
            f"Reward presets: {presets}. "
            f"Reward terms: {', '.join(sorted([*REWARDS, *PEER_REWARDS, *NEEDS_SEGMENTER]))}."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for action in parser._actions:
        if action.dest != "help":
            action.default = argparse.SUPPRESS
    given = vars(parser.parse_args(list(argv)))
    return given.pop("recipe", "genseg-r1"), given


def main(argv: Sequence[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    recipe, overrides = command_line_overrides(sys.argv[1:] if argv is None else argv)
    args, grpo = recipe_settings(recipe, overrides)
    if args.stages:
        out = train_stages(args, stage_settings(args, overrides))
    else:
        out = train(args, grpo)
    LOG.info("finished: %s", out)


if __name__ == "__main__":
    main()
