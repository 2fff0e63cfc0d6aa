"""Referring-segmentation metrics (docs/method.md §5; definitions as in GRES/ReLA and Seg-Zero).

Per sample: predicted mask P (union of instance masks; empty when the answer says no target)
and ground truth G (empty for a no-target sample).

- IoU_i = |P∩G| / |P∪G|, and 1 when both are empty.
- gIoU = mean IoU_i (the paper's "mIoU" on RefCOCOg and ReasonSeg).
- cIoU = Σ|P∩G| / Σ|P∪G|.
- target_mIoU = mean IoU_i over samples with non-empty G.
- N_acc = share of no-target samples (empty G) predicted empty; T_acc = share of target
  samples predicted non-empty.

All values are fractions in [0, 1]; a metric without samples it is defined on is NaN. The
accumulators keep three integers per sample (|P∩G|, |P|, |G|), never masks, so evaluations of
any size stream through them and give exactly the numbers `segmentation_metrics` gives.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np

from genseg_lib.masks import box_iou

NAN = float("nan")


def mask_counts(pred: np.ndarray, gt: np.ndarray) -> tuple[int, int, int]:
    """``(|P∩G|, |P|, |G|)`` of two boolean masks of the same ``(H, W)`` shape."""
    pred = np.asarray(pred, dtype=bool)
    gt = np.asarray(gt, dtype=bool)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction mask {pred.shape} and ground truth {gt.shape} differ in size")
    return int(np.count_nonzero(pred & gt)), int(np.count_nonzero(pred)), int(np.count_nonzero(gt))


def sample_iou(inter: int, pred_area: int, gt_area: int) -> float:
    """IoU of one sample from its counts; 1.0 when prediction and ground truth are both empty."""
    union = pred_area + gt_area - inter
    return 1.0 if union == 0 else inter / union


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else NAN


def metrics_from_counts(
    inter: Sequence[int], pred_area: Sequence[int], gt_area: Sequence[int]
) -> dict[str, float | int]:
    """Metrics of docs/method.md §5 from per-sample counts (definitions: module docstring)."""
    inter_a = np.asarray(inter, dtype=np.int64)
    pred_a = np.asarray(pred_area, dtype=np.int64)
    gt_a = np.asarray(gt_area, dtype=np.int64)
    if not inter_a.shape == pred_a.shape == gt_a.shape:
        raise ValueError("count arrays differ in length")
    if np.any(inter_a > np.minimum(pred_a, gt_a)) or np.any(inter_a < 0):
        raise ValueError("intersection larger than a mask area (or negative): counts are corrupt")
    union = pred_a + gt_a - inter_a
    ious = np.where(union == 0, 1.0, inter_a / np.maximum(union, 1))
    target = gt_a > 0
    total_union = int(union.sum())
    return {
        "cIoU": float(inter_a.sum() / total_union) if total_union else NAN,
        "gIoU": _mean(ious),
        "target_mIoU": _mean(ious[target]),
        "N_acc": _mean((pred_a[~target] == 0).astype(float)),
        "T_acc": _mean((pred_a[target] > 0).astype(float)),
        "n": int(inter_a.size),
        "n_no_target": int((~target).sum()),
    }


def segmentation_metrics(
    pred_masks: Sequence[np.ndarray], gt_masks: Sequence[np.ndarray]
) -> dict[str, float | int]:
    """cIoU, gIoU, target_mIoU, N_acc, T_acc, n, n_no_target for paired boolean masks.

    ``pred_masks[i]`` and ``gt_masks[i]`` are the union masks of sample i, same ``(H, W)``
    (sizes may differ between samples). An all-False prediction is a "no target" answer.
    """
    if len(pred_masks) != len(gt_masks):
        raise ValueError(f"{len(pred_masks)} predictions for {len(gt_masks)} ground truths")
    acc = SegmentationAccumulator()
    for i, (pred, gt) in enumerate(zip(pred_masks, gt_masks, strict=True)):
        try:
            acc.add(pred, gt)
        except ValueError as exc:
            raise ValueError(f"sample {i}: {exc}") from exc
    return acc.result()


@dataclass
class SegmentationAccumulator:
    """Streams samples into per-sample counts; `result` gives `segmentation_metrics`' numbers.

    Each sample may carry a ``group`` label (query type, dataset split, ...) so that
    ``result(group=...)`` reports one slice.
    """

    inter: list[int] = field(default_factory=list)
    pred_area: list[int] = field(default_factory=list)
    gt_area: list[int] = field(default_factory=list)
    group: list[Hashable] = field(default_factory=list)

    def add(self, pred: np.ndarray, gt: np.ndarray, group: Hashable = None) -> float:
        """Add one sample's masks; returns its IoU."""
        return self.add_counts(*mask_counts(pred, gt), group=group)

    def add_counts(self, inter: int, pred_area: int, gt_area: int, group: Hashable = None) -> float:
        """Add one sample's ``(|P∩G|, |P|, |G|)``; returns its IoU."""
        if inter < 0 or inter > min(pred_area, gt_area):
            raise ValueError(f"inconsistent counts: |P∩G|={inter}, |P|={pred_area}, |G|={gt_area}")
        self.inter.append(int(inter))
        self.pred_area.append(int(pred_area))
        self.gt_area.append(int(gt_area))
        self.group.append(group)
        return sample_iou(inter, pred_area, gt_area)

    def __len__(self) -> int:
        return len(self.inter)

    def groups(self) -> list[Hashable]:
        """Distinct group labels in first-seen order."""
        return list(dict.fromkeys(self.group))

    def result(self, group: Hashable = None) -> dict[str, float | int]:
        """Metrics over all samples, or over those labelled ``group``."""
        idx = [i for i, g in enumerate(self.group) if group is None or g == group]
        return metrics_from_counts(
            [self.inter[i] for i in idx],
            [self.pred_area[i] for i in idx],
            [self.gt_area[i] for i in idx],
        )


def union_box(boxes: Sequence[Sequence[float]]) -> tuple[float, float, float, float] | None:
    """Smallest xyxy box holding all ``boxes``; None for no boxes."""
    if not len(boxes):
        return None
    arr = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return (
        float(arr[:, 0].min()),
        float(arr[:, 1].min()),
        float(arr[:, 2].max()),
        float(arr[:, 3].max()),
    )


def sample_box_iou(
    pred_boxes: Sequence[Sequence[float]], gt_boxes: Sequence[Sequence[float]]
) -> float | None:
    """IoU of the union box of predicted instances with the union box of GT instances.

    None when the ground truth has no instance (box metrics are defined on target samples);
    0.0 when the prediction is empty but the ground truth is not.
    """
    gt = union_box(gt_boxes)
    if gt is None:
        return None
    pred = union_box(pred_boxes)
    return 0.0 if pred is None else float(box_iou([pred], [gt])[0, 0])


@dataclass
class BoxAccumulator:
    """Box mIoU and Acc@0.5 over target samples (union box of instances vs GT union box)."""

    ious: list[float] = field(default_factory=list)
    group: list[Hashable] = field(default_factory=list)

    def add(
        self,
        pred_boxes: Sequence[Sequence[float]],
        gt_boxes: Sequence[Sequence[float]],
        group: Hashable = None,
    ) -> float | None:
        """Add one sample; returns its box IoU (None for a no-target sample, which is skipped)."""
        iou = sample_box_iou(pred_boxes, gt_boxes)
        if iou is not None:
            self.ious.append(iou)
            self.group.append(group)
        return iou

    def result(self, group: Hashable = None) -> dict[str, float | int]:
        """``box_mIoU``, ``box_Acc@0.5`` (share with IoU > 0.5, as Seg-Zero counts a hit) and
        ``n_box`` over all samples or one group."""
        ious = np.asarray(
            [v for v, g in zip(self.ious, self.group, strict=True) if group is None or g == group]
        )
        return {
            "box_mIoU": _mean(ious),
            "box_Acc@0.5": _mean((ious > 0.5).astype(float)),
            "n_box": int(ious.size),
        }


def box_metrics(
    pred_boxes: Sequence[Sequence[Sequence[float]]], gt_boxes: Sequence[Sequence[Sequence[float]]]
) -> dict[str, float | int]:
    """Box mIoU / Acc@0.5 for paired per-sample instance box lists (see `BoxAccumulator`)."""
    if len(pred_boxes) != len(gt_boxes):
        raise ValueError(f"{len(pred_boxes)} predictions for {len(gt_boxes)} ground truths")
    acc = BoxAccumulator()
    for pred, gt in zip(pred_boxes, gt_boxes, strict=True):
        acc.add(pred, gt)
    return acc.result()
