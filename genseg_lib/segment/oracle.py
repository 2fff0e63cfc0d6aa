"""Oracle prompts from ground-truth masks (docs/method.md §3), for upper bounds and prompt
ablations."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from genseg_lib.answer import Instance
from genseg_lib.masks import prompts_from_mask
from genseg_lib.segment.base import InstancePrompt

PROMPT_MODES = ("box", "box+1pt", "box+2pt", "2pt")


def oracle_instances(gt_masks: Sequence[np.ndarray]) -> list[Instance]:
    """The answer a perfect prompter would give: tight box + two interior points per mask."""
    out = []
    for mask in gt_masks:
        box, points = prompts_from_mask(mask)
        out.append(Instance(box=box, points=points))
    return out


def oracle_prompts(gt_masks: Sequence[np.ndarray], mode: str = "box+2pt") -> list[InstancePrompt]:
    """Prompts of one prompt type from GT masks: ``box``, ``box+1pt``, ``box+2pt``, ``2pt``."""
    if mode not in PROMPT_MODES:
        raise ValueError(f"unknown prompt mode {mode!r}; expected one of {PROMPT_MODES}")
    n_points = {"box": 0, "box+1pt": 1, "box+2pt": 2, "2pt": 2}[mode]
    return [
        InstancePrompt(box=None if mode == "2pt" else inst.box, points=inst.points[:n_points])
        for inst in oracle_instances(gt_masks)
    ]
