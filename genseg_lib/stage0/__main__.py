"""Command line of the stage-0 warm start (one flag per `WarmStartConfig` field, and one
``--prompter-*`` flag per size of a fresh prompter, `PrompterSpec`):

python -m genseg_lib.stage0 --out checkpoints/synthref-prompter --steps 12500
python -m genseg_lib.stage0 --out wide --prompter-hidden-size 256 --prompter-num-hidden-layers 8
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Sequence
from dataclasses import fields

from genseg_lib.stage0.prompter import PrompterSpec
from genseg_lib.stage0.warmstart import PROMPTER_PREFIX, WarmStartConfig, flag_name, warm_start


def _int_list(text: str) -> list[int]:
    return [int(v) for v in text.split(",")]


def _parser_type(annotation: str) -> Callable[[str], object] | None:
    """How a flag of a field annotated ``annotation`` parses (None: not on the command line)."""
    base = str(annotation).split(" ")[0]
    return {"int": int, "float": float, "str": str, "list[int]": _int_list}.get(base)


def config_from_args(
    argv: Sequence[str] | None = None,
) -> tuple[WarmStartConfig, PrompterSpec | None]:
    """Parse the command line into a `WarmStartConfig` and the prompter sizes (None when no
    ``--prompter-*`` flag is given: the default sizes, or the ``--init`` checkpoint's)."""
    parser = argparse.ArgumentParser(
        prog="python -m genseg_lib.stage0",
        description="Stage-0 warm start of the SynthRef prompter (resumable).",
    )
    for f in fields(WarmStartConfig):
        kind = _parser_type(f.type) or float
        parser.add_argument(flag_name(f.name), type=kind, default=f.default)
    sizes = parser.add_argument_group("prompter sizes (a fresh prompter only; PrompterSpec)")
    for f in fields(PrompterSpec):
        kind = _parser_type(f.type)
        if kind is not None:
            sizes.add_argument(flag_name(f.name, PROMPTER_PREFIX), type=kind, default=None)
    args = vars(parser.parse_args(argv))
    given = {
        k.removeprefix(PROMPTER_PREFIX): args.pop(k)
        for k in list(args)
        if k.startswith(PROMPTER_PREFIX)
    }
    given = {k: v for k, v in given.items() if v is not None}
    return WarmStartConfig(**args), PrompterSpec(**given) if given else None


def main(argv: Sequence[str] | None = None) -> None:
    cfg, spec = config_from_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    warm_start(cfg, spec)


if __name__ == "__main__":
    main()
