"""GRPO reward terms (docs/method.md §4) as TRL reward functions.

Each term is ``fn(prompts, completions, **columns) -> list[float]`` with values in [0, 1]; the
dataset columns of `genseg_lib.train.dataset` arrive as keyword lists (``width``, ``height``,
``coord_frame``, ``frame_size``, ``gt_boxes``, ``gt_points``, ``gt_masks``, ``no_target``,
``image``, ``sample_id``). Completions are read in each row's ``coord_frame`` (0..1000 when the
column is absent), exactly as evaluation reads the same model's answers. Predicted
and GT instances are matched with the Hungarian algorithm on 1 − box IoU; per-term scores are
summed over matches and divided by max(#pred, #gt), so missing and extra instances both cost.
When GT and answer are both empty the geometric terms score 1 (nothing to find, nothing
claimed, as IoU of two empty masks is 1); when only one side is empty they score 0.

A completion that cannot be read at all (no JSON list, no explicit ``[]``) scores 0 on every
term and its reason is logged; a bug in this module raises. Factories keep a meaningful
``__name__`` because TRL logs each reward by it. `REWARDS` maps names to functions so that a
recipe lists ``reward_funcs`` and ``reward_weights``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from genseg_lib.answer import Answer, Instance, parse_answer
from genseg_lib.masks import box_iou, point_in_mask, rle_decode, union_masks
from genseg_lib.segment.base import InstancePrompt, PromptableSegmenter

LOG = logging.getLogger(__name__)
RewardFn = Callable[..., list[float]]
SEGZERO_SIDE = 840.0  # Seg-Zero / VisionReasoner resize images to 840x840


def completion_text(completion: Any) -> str:
    """Text of a TRL completion: a string, or conversational ``[{"role", "content"}]``."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        content = completion[-1].get("content", "")
        if isinstance(content, list):  # structured content blocks
            return "".join(p.get("text", "") for p in content if isinstance(p, dict))
        return str(content)
    return ""


@dataclass
class Scored:
    """One completion read against its ground truth."""

    answer: Answer
    pred: list[Instance]
    gt_boxes: np.ndarray  # (G, 4) pixel xyxy
    gt_points: list[list[tuple[float, float]]]
    width: int
    height: int
    readable: bool  # parsed to instances or an explicit no-target

    @property
    def diag(self) -> float:
        return math.hypot(self.width, self.height)


def read_completions(
    completions: Sequence[Any],
    width: Sequence[int],
    height: Sequence[int],
    gt_boxes: Sequence[Sequence[Sequence[float]]],
    gt_points: Sequence[Any] | None = None,
    coord_frame: Sequence[str] | None = None,
    frame_size: Sequence[Sequence[int]] | None = None,
    **_: Any,
) -> list[Scored]:
    """Parse every completion against its sample's size, coordinate frame and GT columns."""
    out = []
    for i, c in enumerate(completions):
        frame = coord_frame[i] if coord_frame is not None else "norm1000"
        fsize = tuple(frame_size[i]) if frame_size is not None else None
        ans = parse_answer(
            completion_text(c), (int(width[i]), int(height[i])), frame, frame_size=fsize
        )
        readable = ans.no_target or bool(ans.instances)
        if not readable:
            LOG.debug("unreadable completion scored 0: %s", ans.error)
        out.append(
            Scored(
                answer=ans,
                pred=ans.instances,
                gt_boxes=np.asarray(gt_boxes[i], dtype=np.float64).reshape(-1, 4),
                gt_points=[[tuple(p) for p in pts] for pts in (gt_points[i] if gt_points else [])],
                width=int(width[i]),
                height=int(height[i]),
                readable=readable,
            )
        )
    return out


def match(pred: Sequence[Instance], gt_boxes: np.ndarray) -> list[tuple[int, int]]:
    """Hungarian matching of predicted to GT instances on 1 − box IoU: ``(pred, gt)`` pairs."""
    if not len(pred) or not len(gt_boxes):
        return []
    cost = 1.0 - box_iou([p.box for p in pred], gt_boxes)
    rows, cols = linear_sum_assignment(cost)
    return list(zip(rows.tolist(), cols.tolist(), strict=True))


def matched_mean(s: Scored, term: Callable[[Instance, int], float]) -> float:
    """Σ term over Hungarian matches / max(#pred, #gt); both empty -> 1, unreadable -> 0."""
    if not s.readable:
        return 0.0
    n_pred, n_gt = len(s.pred), len(s.gt_boxes)
    if n_pred == 0 and n_gt == 0:
        return 1.0
    total = sum(term(s.pred[i], j) for i, j in match(s.pred, s.gt_boxes))
    return total / max(n_pred, n_gt)


def _per_completion(name: str, score: Callable[[Scored, int, dict], float]) -> RewardFn:
    """Wrap a per-completion scorer as a TRL reward function named ``name``."""

    def reward(prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float]:
        scored = read_completions(completions, **kwargs)
        return [float(score(s, i, kwargs)) for i, s in enumerate(scored)]

    reward.__name__ = reward.__qualname__ = name
    return reward


# ------------------------------------------------------------------------------ terms


def format_reward(prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """1 if the strict format held (think, then answer with a JSON list of instances)."""
    out = []
    for c in completions:
        text = completion_text(c)
        ok = parse_answer(text, (1000, 1000)).format_ok
        out.append(1.0 if ok else 0.0)
    return out


format_reward.__name__ = "format"


def make_box_iou_reward(threshold: float | None = None) -> RewardFn:
    """Matched box IoU (continuous), or 1 per match with IoU > ``threshold`` (Seg-Zero)."""

    def term(s: Scored) -> Callable[[Instance, int], float]:
        def f(p: Instance, j: int) -> float:
            iou = float(box_iou([p.box], s.gt_boxes[j : j + 1])[0, 0])
            return iou if threshold is None else float(iou > threshold)

        return f

    name = "box_iou" if threshold is None else f"box_iou_gt{threshold:g}"
    return _per_completion(name, lambda s, i, kw: matched_mean(s, term(s)))


def _corner_error(p: Instance, gt: np.ndarray, sx: float = 1.0, sy: float = 1.0) -> float:
    scale = np.array([sx, sy, sx, sy])
    return float(np.mean(np.abs((np.asarray(p.box) - gt) * scale)))


def make_box_l1_reward(max_px_840: float | None = None) -> RewardFn:
    """Continuous: 1 − min(1, mean |corner error| / (0.1 · image diagonal)). Thresholded
    (``max_px_840``): 1 when the mean corner error, in Seg-Zero's 840-px frame, is below it."""

    def score(s: Scored, i: int, kw: dict) -> float:
        if max_px_840 is None:
            scale = 0.1 * s.diag
            return matched_mean(
                s, lambda p, j: 1.0 - min(1.0, _corner_error(p, s.gt_boxes[j]) / scale)
            )
        sx, sy = SEGZERO_SIDE / s.width, SEGZERO_SIDE / s.height
        return matched_mean(
            s, lambda p, j: float(_corner_error(p, s.gt_boxes[j], sx, sy) < max_px_840)
        )

    return _per_completion(
        "box_l1" if max_px_840 is None else f"box_l1_lt{max_px_840:g}px840", score
    )


def _best_pair_distance(
    pred: Sequence[tuple[float, float]], gt: Sequence[tuple[float, float]], sx=1.0, sy=1.0
) -> float:
    """Mean distance between predicted and GT points under the best pairing."""
    a = np.asarray(pred, dtype=np.float64) * [sx, sy]
    b = np.asarray(gt, dtype=np.float64) * [sx, sy]
    d = np.hypot(a[:, None, 0] - b[None, :, 0], a[:, None, 1] - b[None, :, 1])
    rows, cols = linear_sum_assignment(d)
    return float(d[rows, cols].mean())


def make_points_reward(mode: str = "inside", max_px_840: float = 100.0) -> RewardFn:
    """Point terms. ``inside``: share of the two predicted points inside the matched GT mask
    (a missing point counts as outside). ``distance``: 1 − min(1, mean best-pairing distance
    to the GT keypoints / (0.1 · diagonal)). ``segzero``: 1 when both points lie in the
    predicted box and that distance, in the 840-px frame, is below ``max_px_840``."""
    if mode not in ("inside", "distance", "segzero"):
        raise ValueError(f"unknown points mode {mode!r}")

    def score(s: Scored, i: int, kw: dict) -> float:
        if mode == "inside":
            masks = [rle_decode(r) for r in kw["gt_masks"][i]]
            return matched_mean(
                s, lambda p, j: sum(point_in_mask(q, masks[j]) for q in p.points[:2]) / 2
            )
        if mode == "distance":
            scale = 0.1 * s.diag
            return matched_mean(
                s,
                lambda p, j: (
                    0.0
                    if not p.points
                    else 1.0 - min(1.0, _best_pair_distance(p.points, s.gt_points[j]) / scale)
                ),
            )
        sx, sy = SEGZERO_SIDE / s.width, SEGZERO_SIDE / s.height

        def hit(p: Instance, j: int) -> float:
            if len(p.points) < 2:
                return 0.0
            x1, y1, x2, y2 = p.box
            inside = all(x1 <= x <= x2 and y1 <= y <= y2 for x, y in p.points)
            return float(
                inside and _best_pair_distance(p.points, s.gt_points[j], sx, sy) < max_px_840
            )

        return matched_mean(s, hit)

    name = {"inside": "points_in_mask", "distance": "points_distance"}.get(
        mode, f"points_segzero_lt{max_px_840:g}px840"
    )
    return _per_completion(name, score)


def no_target_reward(
    prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any
) -> list[float]:
    """The target / no-target decision (our reading of docs/method.md §4): GT empty -> 1 for an
    explicit ``[]`` answer; GT non-empty -> 1 for an answer with instances, 0 for ``[]``."""
    out = []
    for s in read_completions(completions, **kwargs):
        if not s.readable:
            out.append(0.0)
        elif len(s.gt_boxes) == 0:
            out.append(1.0 if s.answer.no_target else 0.0)
        else:
            out.append(1.0 if s.pred else 0.0)
    return out


no_target_reward.__name__ = "no_target"


def make_sam_mask_iou_reward(segmenter: PromptableSegmenter) -> RewardFn:
    """IoU of the union of segmenter masks from the answer's prompts with the GT union mask
    (GenSeg-R1-G); 1 when both are empty. One call for the whole batch: the segmenter
    embeds each unique image once (keyed by ``sample_id``) and batches all prompts."""

    def sam_mask_iou(
        prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any
    ) -> list[float]:
        scored = read_completions(completions, **kwargs)
        images = kwargs["image"]
        keys = kwargs.get("sample_id")
        prompt_lists = [
            [InstancePrompt.from_instance(p) for p in s.pred] if s.readable else [] for s in scored
        ]
        masks = segmenter.segment(images, prompt_lists, keys=keys)
        out = []
        for i, (s, inst_masks) in enumerate(zip(scored, masks, strict=True)):
            if not s.readable:
                out.append(0.0)
                continue
            shape = (s.height, s.width)
            gt = union_masks([rle_decode(r) for r in kwargs["gt_masks"][i]], shape=shape)
            pred = union_masks(inst_masks, shape=shape)
            union = np.count_nonzero(pred | gt)
            out.append(1.0 if union == 0 else np.count_nonzero(pred & gt) / union)
        return out

    return sam_mask_iou


# ------------------------------------------------------------------------------ registry

REWARDS: dict[str, Callable[[], RewardFn]] = {
    "format": lambda: format_reward,
    "box_iou": lambda: make_box_iou_reward(),
    "box_iou_gt0.5": lambda: make_box_iou_reward(0.5),
    "box_l1": lambda: make_box_l1_reward(),
    "box_l1_lt10px840": lambda: make_box_l1_reward(10.0),
    "points_in_mask": lambda: make_points_reward("inside"),
    "points_distance": lambda: make_points_reward("distance"),
    "points_segzero_lt100px840": lambda: make_points_reward("segzero", 100.0),
    "points_segzero_lt30px840": lambda: make_points_reward("segzero", 30.0),
    "no_target": lambda: no_target_reward,
}
NEEDS_SEGMENTER = ("sam_mask_iou",)

# presets (docs/method.md §4): the paper's two recipes; the anchors' rewards scored strictly as
# their own code does, on answers in their own formats (`peer_rewards`, the default for their
# names); and "-like" versions of the anchors' thresholds on this project's answer format
PRESETS: dict[str, list[str]] = {
    "genseg-r1": ["format", "box_iou", "box_l1", "points_in_mask"],
    "genseg-r1-g": ["format", "no_target", "sam_mask_iou"],
    "segzero": [
        "think_format",
        "segzero_answer_format",
        "segzero_box_iou",
        "segzero_points",
        "segzero_box_l1",
    ],
    "visionreasoner": ["think_format", "vr_answer_format", "vr_accuracy", "vr_non_repeat"],
    "segzero-like": ["format", "box_iou_gt0.5", "box_l1_lt10px840", "points_segzero_lt100px840"],
    "visionreasoner-like": [
        "format",
        "box_iou_gt0.5",
        "box_l1_lt10px840",
        "points_segzero_lt30px840",
    ],
}


def build_rewards(
    names: Sequence[str], segmenter: PromptableSegmenter | None = None
) -> list[RewardFn]:
    """Reward functions by name (see `REWARDS` and `peer_rewards.PEER_REWARDS`;
    ``sam_mask_iou`` needs a segmenter)."""
    from genseg_lib.train.peer_rewards import PEER_REWARDS

    out = []
    for name in names:
        if name == "sam_mask_iou":
            if segmenter is None:
                raise ValueError("the sam_mask_iou reward needs a segmenter")
            out.append(make_sam_mask_iou_reward(segmenter))
        elif name in REWARDS:
            out.append(REWARDS[name]())
        elif name in PEER_REWARDS:
            out.append(PEER_REWARDS[name])
        else:
            known = sorted([*REWARDS, *PEER_REWARDS, *NEEDS_SEGMENTER])
            raise ValueError(f"unknown reward {name!r}; known: {known}")
    return out
