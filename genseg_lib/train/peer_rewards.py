"""Strict anchor presets: the rewards of Seg-Zero and VisionReasoner as their own reward code
computes them, on answers in their own formats (docs/method.md §4.3).

Both peers resize images to 840x840 and score coordinates in that frame; the ground truth
columns (image pixels) are scaled into it here. Every rule follows the peer, including the
ones this project's own terms chose differently: their parsers (Seg-Zero reads the first
``{...}`` in the whole text; VisionReasoner the first ``<answer>`` block), inclusive pixel
extents in box IoU (+1 px), no clipping or reordering of broken boxes, integer truncation
of Seg-Zero's points, VisionReasoner's single ``point_2d``, its one Hungarian matching on
the sum of its thresholded terms, its cap of 120 objects and its per-object format and
no-repetition rewards. Whatever fails to read scores 0, as in the peers.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from genseg_lib.train.rewards import RewardFn, completion_text

PEER_SIDE = 840.0  # both peers resize images to 840x840 before the model sees them
THINK_ANSWER = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>", re.DOTALL)
FIRST_OBJECT = re.compile(r"{[^}]+}")  # Seg-Zero: the first brace pair anywhere in the text
ANSWER_BLOCK = re.compile(r"<answer>\s*(.*?)\s*</answer>", re.DOTALL)
VR_MAX_OBJECTS = 120


def to_peer_frame(
    boxes: Sequence[Sequence[float]], points: Sequence[Any], width: int, height: int
) -> tuple[list[list[float]], list[list[list[float]]]]:
    """GT boxes (xyxy) and per-instance point lists from image pixels to the 840 frame."""
    sx, sy = PEER_SIDE / width, PEER_SIDE / height
    out_boxes = [[b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy] for b in boxes]
    out_points = [[[p[0] * sx, p[1] * sy] for p in pts] for pts in points]
    return out_boxes, out_points


def think_answer_format(text: str) -> float:
    """1 when the whole text is ``<think>...</think>`` then ``<answer>...</answer>``."""
    return 1.0 if THINK_ANSWER.fullmatch(text) else 0.0


# ------------------------------------------------------------------------------ Seg-Zero


def _segzero_object(text: str) -> dict:
    """Seg-Zero's reading: the first ``{...}`` (no nested braces) in the text, as JSON."""
    found = FIRST_OBJECT.search(text)
    if not found:
        raise ValueError("no JSON object")
    return json.loads(found.group(0))


def segzero_answer_format(text: str) -> float:
    """1 when that object has ``bbox`` (4 values) and ``points_1``, ``points_2`` (2 each)."""
    try:
        data = _segzero_object(text)
        ok = all(k in data for k in ("bbox", "points_1", "points_2"))
        ok = ok and isinstance(data["bbox"], list) and len(data["bbox"]) == 4
        for key in ("points_1", "points_2"):
            ok = ok and isinstance(data[key], list) and len(data[key]) == 2
        return 1.0 if ok else 0.0
    except Exception:
        return 0.0


def segzero_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Seg-Zero's box IoU: inclusive extents (+1 px), no overlap unless the intersection's
    corners are strictly ordered."""
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = (x2 - x1 + 1) * (y2 - y1 + 1) if x1 < x2 and y1 < y2 else 0
    area_a = (a[2] - a[0] + 1) * (a[3] - a[1] + 1)
    area_b = (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
    return float(inter) / (area_a + area_b - inter)


def segzero_box_iou(text: str, gt_box: Sequence[float]) -> float:
    """1 when the answer's box has IoU > 0.5 with the (first) GT box."""
    try:
        box = _segzero_object(text)["bbox"]
        return 1.0 if len(box) == 4 and segzero_iou(box, gt_box) > 0.5 else 0.0
    except Exception:
        return 0.0


def segzero_box_l1(text: str, gt_box: Sequence[float]) -> float:
    """1 when the mean absolute corner difference is below 10 (840-frame pixels)."""
    try:
        box = _segzero_object(text)["bbox"]
        if len(box) != 4:
            return 0.0
        return 1.0 if sum(abs(box[k] - gt_box[k]) for k in range(4)) / 4 < 10 else 0.0
    except Exception:
        return 0.0


def segzero_points(text: str, gt_points: Sequence[Sequence[float]]) -> float:
    """1 when both points (truncated to integers) lie in the answer's own box and their mean
    distance to the two GT points, under the better of the two pairings, is below 100."""
    try:
        data = _segzero_object(text)
        box = data["bbox"]
        p1 = [int(data["points_1"][0]), int(data["points_1"][1])]
        p2 = [int(data["points_2"][0]), int(data["points_2"][1])]
        if not all(box[0] <= p[0] <= box[2] and box[1] <= p[1] <= box[3] for p in (p1, p2)):
            return 0.0
        g1, g2 = gt_points[0], gt_points[1]
        straight = math.dist(p1, g1) + math.dist(p2, g2)
        crossed = math.dist(p1, g2) + math.dist(p2, g1)
        return 1.0 if min(straight, crossed) / 2 < 100 else 0.0
    except Exception:
        return 0.0


# ------------------------------------------------------------------------------ VisionReasoner


def _vr_answer(text: str) -> Any:
    found = ANSWER_BLOCK.search(text)
    if not found:
        raise ValueError("no <answer> block")
    return json.loads(found.group(1))


def vr_answer_format(text: str) -> float:
    """Per listed object, +1 for a 4-value ``bbox_2d`` and +1 for a 2-value ``point_2d``,
    averaged over the objects (0 to 2); what reads before an error still counts."""
    total = 0.0
    try:
        data = _vr_answer(text)
        count = len(data)
        for item in data:
            got = 0.0
            if (
                "bbox_2d" in item
                and isinstance(item["bbox_2d"], list)
                and len(item["bbox_2d"]) == 4
            ):
                got += 1.0
            if (
                "point_2d" in item
                and isinstance(item["point_2d"], list)
                and len(item["point_2d"]) == 2
            ):
                got += 1.0
            total += got / count
    except Exception:
        pass
    return total


def vr_iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """VisionReasoner's pairwise box IoU: inclusive extents (+1 px), intersection clamped at
    0 per side (so touching boxes overlap by one pixel row or column)."""
    xa = np.maximum(a[:, None, 0], b[None, :, 0])
    ya = np.maximum(a[:, None, 1], b[None, :, 1])
    xb = np.minimum(a[:, None, 2], b[None, :, 2])
    yb = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.maximum(0, xb - xa + 1) * np.maximum(0, yb - ya + 1)
    area_a = ((a[:, 2] - a[:, 0] + 1) * (a[:, 3] - a[:, 1] + 1))[:, None]
    area_b = ((b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1))[None, :]
    return inter / (area_a + area_b - inter)


def vr_accuracy(text: str, gt_boxes: Sequence[Sequence[float]], gt_point: Sequence[Any]) -> float:
    """One Hungarian matching on the sum of three thresholded terms per pair — IoU > 0.5,
    mean corner L1 < 10, point within 30 of the GT point and inside its own box — summed
    over matches and divided by max(#pred, #GT) after capping both at 120 (0 to 3)."""
    try:
        data = _vr_answer(text)
        pred_boxes = [item["bbox_2d"] for item in data][:VR_MAX_OBJECTS]
        pred_points = [item["point_2d"] for item in data][:VR_MAX_OBJECTS]
        boxes = np.array(pred_boxes)
        points = np.array(pred_points)
        gt_b = np.array(list(gt_boxes)[:VR_MAX_OBJECTS])
        gt_p = np.array(list(gt_point)[:VR_MAX_OBJECTS])
        if boxes.ndim != 2 or gt_b.ndim != 2 or points.ndim != 2 or gt_p.ndim != 2:
            return 0.0  # nothing predicted, or no GT: the peer's array code fails -> 0
        iou = vr_iou_matrix(boxes, gt_b)
        l1 = np.mean(np.abs(boxes[:, None, :] - gt_b[None, :, :]), axis=2)
        dist = np.sqrt(np.sum((points[:, None, :] - gt_p[None, :, :]) ** 2, axis=2))
        inside = (
            (points[:, 0] >= boxes[:, 0])
            & (points[:, 0] <= boxes[:, 2])
            & (points[:, 1] >= boxes[:, 1])
            & (points[:, 1] <= boxes[:, 3])
        )
        reward = (iou > 0.5) + (l1 < 10).astype(float) + ((dist < 30) & inside[:, None])
        cost = 3.0 - reward
        rows, cols = linear_sum_assignment(cost)
        total = len(rows) * 3.0 - cost[rows, cols].sum()
        return float(total / max(len(boxes), len(gt_b)))
    except Exception:
        return 0.0


def vr_non_repeat(text: str) -> float:
    """0 once two sentences (split on '.') repeat an earlier one, else 1."""
    seen: set[str] = set()
    repeats = 0
    for sentence in (s.strip() for s in text.split(".")):
        if not sentence:
            continue
        if sentence in seen:
            repeats += 1
        if repeats >= 2:
            return 0.0
        seen.add(sentence)
    return 1.0


# ------------------------------------------------------------------------------ as TRL rewards


def _peer_term(name: str, score: Callable[[str, list, list], float]) -> RewardFn:
    """A TRL reward: ``score(text, gt_boxes, gt_points)`` with the GT in the 840 frame."""

    def reward(prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float]:
        n = len(completions)
        frames = kwargs.get("coord_frame") or [None] * n
        gt_points = kwargs.get("gt_points") or [[]] * n
        out = []
        for i, c in enumerate(completions):
            if frames[i] not in (None, "pixels840"):
                raise ValueError(
                    f"{name}: the strict peer presets read 840x840-frame pixels "
                    f"(coord_frame 'pixels840'), got {frames[i]!r}"
                )
            boxes, points = to_peer_frame(
                kwargs["gt_boxes"][i],
                gt_points[i],
                int(kwargs["width"][i]),
                int(kwargs["height"][i]),
            )
            out.append(float(score(completion_text(c), boxes, points)))
        return out

    reward.__name__ = reward.__qualname__ = name
    return reward


def _first(values: list, fallback: Any) -> Any:
    return values[0] if values else fallback


PEER_REWARDS: dict[str, RewardFn] = {
    "think_format": _peer_term("think_format", lambda t, b, p: think_answer_format(t)),
    "segzero_answer_format": _peer_term(
        "segzero_answer_format", lambda t, b, p: segzero_answer_format(t)
    ),
    # Seg-Zero is single-object: its GT is the first instance (none -> 0, as its code fails)
    "segzero_box_iou": _peer_term(
        "segzero_box_iou", lambda t, b, p: segzero_box_iou(t, b[0]) if b else 0.0
    ),
    "segzero_box_l1": _peer_term(
        "segzero_box_l1", lambda t, b, p: segzero_box_l1(t, b[0]) if b else 0.0
    ),
    "segzero_points": _peer_term(
        "segzero_points", lambda t, b, p: segzero_points(t, p[0]) if p else 0.0
    ),
    "vr_answer_format": _peer_term("vr_answer_format", lambda t, b, p: vr_answer_format(t)),
    # VisionReasoner's GT point per object: the first of our two GT points
    "vr_accuracy": _peer_term(
        "vr_accuracy", lambda t, b, p: vr_accuracy(t, b, [_first(q, [math.nan] * 2) for q in p])
    ),
    "vr_non_repeat": _peer_term("vr_non_repeat", lambda t, b, p: vr_non_repeat(t)),
}
