"""Command line of the stage-0 warm start (one flag per `WarmStartConfig` field):

python -m genseg_lib.stage0 --out checkpoints/synthref-prompter --steps 12500
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from dataclasses import fields

from genseg_lib.stage0.warmstart import WarmStartConfig, warm_start


def config_from_args(argv: Sequence[str] | None = None) -> WarmStartConfig:
    """Parse the command line into a `WarmStartConfig`."""
    parser = argparse.ArgumentParser(
        prog="python -m genseg_lib.stage0",
        description="Stage-0 warm start of the SynthRef prompter (resumable).",
    )
    for f in fields(WarmStartConfig):
        kind = {"int": int, "float": float, "str": str}.get(str(f.type).split(" ")[0], float)
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=kind, default=f.default)
    return WarmStartConfig(**vars(parser.parse_args(argv)))


def main(argv: Sequence[str] | None = None) -> None:
    cfg = config_from_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    warm_start(cfg)


if __name__ == "__main__":
    main()
