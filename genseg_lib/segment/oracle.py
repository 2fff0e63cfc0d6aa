"""Oracle prompts from ground-truth masks (docs/method.md §3), for upper bounds and prompt
ablations."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from genseg_lib.answer import Instance
from genseg_lib.masks import box_from_mask, prompts_from_mask
from genseg_lib.segment.base import InstancePrompt

PROMPT_MODES = ("box", "box+1pt", "box+2pt", "2pt", "box+centre")
# the second box-only point: this fraction of the box height below the box centre
CENTRE_POINT_OFFSET = 0.1


def oracle_instances(gt_masks: Sequence[np.ndarray]) -> list[Instance]:
    """The answer a perfect prompter would give: tight box + two interior points per mask."""
    out = []
    for mask in gt_masks:
        box, points = prompts_from_mask(mask)
        out.append(Instance(box=box, points=points))
    return out


def box_centre_points(box: tuple[float, float, float, float]) -> tuple[tuple[float, float], ...]:
    """Two points placed from a box alone, as a model that knows boxes but not masks would
    guess them: the box centre and a point ``CENTRE_POINT_OFFSET`` of the box height below it.
    On shapes whose centre is off the object (ring, crescent, arc, cup, corner) they miss."""
    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return ((cx, cy), (cx, cy + CENTRE_POINT_OFFSET * (y2 - y1)))


def box_centre_instances(gt_masks: Sequence[np.ndarray]) -> list[Instance]:
    """Tight box + the two box-centre points per mask: no knowledge of the mask's shape."""
    out = []
    for mask in gt_masks:
        box = box_from_mask(mask)
        out.append(Instance(box=box, points=box_centre_points(box)))
    return out


def oracle_prompts(gt_masks: Sequence[np.ndarray], mode: str = "box+2pt") -> list[InstancePrompt]:
    """Prompts of one prompt type from GT masks: ``box``, ``box+1pt``, ``box+2pt`` (GT interior
    points), ``2pt`` (no box), ``box+centre`` (box + `box_centre_points`)."""
    if mode not in PROMPT_MODES:
        raise ValueError(f"unknown prompt mode {mode!r}; expected one of {PROMPT_MODES}")
    if mode == "box+centre":
        return [InstancePrompt(box=i.box, points=i.points) for i in box_centre_instances(gt_masks)]
    n_points = {"box": 0, "box+1pt": 1, "box+2pt": 2, "2pt": 2}[mode]
    return [
        InstancePrompt(box=None if mode == "2pt" else inst.box, points=inst.points[:n_points])
        for inst in oracle_instances(gt_masks)
    ]
