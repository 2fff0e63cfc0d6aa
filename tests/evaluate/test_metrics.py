"""Segmentation and box metrics against hand-computed values (docs/method.md §5)."""

import math

import numpy as np
import pytest

from genseg_lib.evaluate.metrics import (
    BoxAccumulator,
    SegmentationAccumulator,
    box_metrics,
    mask_counts,
    metrics_from_counts,
    sample_box_iou,
    sample_iou,
    segmentation_metrics,
)


def mask(h, w, cells):
    m = np.zeros((h, w), dtype=bool)
    for r, c in cells:
        m[r, c] = True
    return m


EMPTY = np.zeros((2, 2), bool)


def test_mixed_hand_computed():
    # sample 1: P has 2 px, G has 3 px, overlap 1 -> I=1, U=4, IoU 0.25
    p1, g1 = mask(2, 3, [(0, 0), (0, 1)]), mask(2, 3, [(0, 1), (1, 1), (1, 2)])
    # sample 2: perfect 1-px match -> I=1, U=1
    p2, g2 = mask(2, 2, [(1, 1)]), mask(2, 2, [(1, 1)])
    # sample 3: no-target, predicted empty -> IoU 1, contributes 0/0 to cIoU
    # sample 4: no-target, predicted 2 px -> I=0, U=2, IoU 0
    p4 = mask(2, 2, [(0, 0), (0, 1)])
    # sample 5: target (1 px) predicted empty -> I=0, U=1
    g5 = mask(2, 2, [(0, 0)])
    out = segmentation_metrics([p1, p2, EMPTY, p4, EMPTY], [g1, g2, EMPTY, EMPTY, g5])
    assert out["n"] == 5 and out["n_no_target"] == 2
    assert out["cIoU"] == pytest.approx((1 + 1 + 0 + 0 + 0) / (4 + 1 + 0 + 2 + 1))
    assert out["gIoU"] == pytest.approx((0.25 + 1 + 1 + 0 + 0) / 5)
    assert out["target_mIoU"] == pytest.approx((0.25 + 1 + 0) / 3)
    assert out["N_acc"] == pytest.approx(1 / 2)
    assert out["T_acc"] == pytest.approx(2 / 3)


def test_all_no_target():
    out = segmentation_metrics([EMPTY, mask(2, 2, [(0, 0)])], [EMPTY, EMPTY])
    assert out["N_acc"] == 0.5 and out["gIoU"] == 0.5
    assert math.isnan(out["target_mIoU"]) and math.isnan(out["T_acc"])
    assert out["cIoU"] == 0.0  # I=0 over U=1
    out = segmentation_metrics([EMPTY], [EMPTY])
    assert math.isnan(out["cIoU"]) and out["gIoU"] == 1.0 and out["N_acc"] == 1.0


def test_no_no_target_samples():
    g = mask(2, 2, [(0, 0), (1, 1)])
    out = segmentation_metrics([g, EMPTY], [g, g])
    assert math.isnan(out["N_acc"]) and out["n_no_target"] == 0
    assert out["T_acc"] == 0.5 and out["gIoU"] == 0.5 and out["cIoU"] == 0.5


def test_empty_input_is_nan():
    out = segmentation_metrics([], [])
    assert out["n"] == 0 and all(math.isnan(out[k]) for k in ("cIoU", "gIoU", "N_acc", "T_acc"))


def test_size_mismatch_names_sample():
    with pytest.raises(ValueError, match="sample 1: .*differ in size"):
        segmentation_metrics([EMPTY, EMPTY], [EMPTY, np.zeros((3, 2), bool)])
    with pytest.raises(ValueError, match="2 predictions for 1"):
        segmentation_metrics([EMPTY, EMPTY], [EMPTY])


def test_counts_and_sample_iou():
    assert mask_counts(mask(2, 2, [(0, 0), (0, 1)]), mask(2, 2, [(0, 1)])) == (1, 2, 1)
    assert sample_iou(0, 0, 0) == 1.0 and sample_iou(1, 2, 1) == 0.5
    with pytest.raises(ValueError, match="corrupt"):
        metrics_from_counts([3], [2], [5])


def test_accumulator_matches_batch_and_groups():
    rng = np.random.default_rng(0)
    preds, gts, groups = [], [], []
    acc = SegmentationAccumulator()
    for i in range(40):
        h, w = rng.integers(3, 12, size=2)
        p = rng.random((h, w)) < rng.choice([0.0, 0.3])
        g = rng.random((h, w)) < rng.choice([0.0, 0.4])
        grp = "a" if i % 3 else "b"
        preds.append(p), gts.append(g), groups.append(grp)
        iou = acc.add(p, g, group=grp)
        assert iou == pytest.approx(sample_iou(*mask_counts(p, g)))
    batch = segmentation_metrics(preds, gts)
    streamed = acc.result()
    for k in batch:
        assert batch[k] == pytest.approx(streamed[k], nan_ok=True)
    assert acc.groups() == ["b", "a"]
    sel = [i for i, g in enumerate(groups) if g == "b"]
    only_b = segmentation_metrics([preds[i] for i in sel], [gts[i] for i in sel])
    for k in only_b:
        assert acc.result("b")[k] == pytest.approx(only_b[k], nan_ok=True)


def test_accumulator_rejects_inconsistent_counts():
    with pytest.raises(ValueError, match="inconsistent"):
        SegmentationAccumulator().add_counts(5, 2, 9)


def test_box_metrics_union_boxes():
    # sample 1: two GT instances, union (0,0,4,4); prediction union (0,0,4,2) -> IoU 0.5
    # sample 2: prediction empty on a target -> 0
    # sample 3: no-target sample -> skipped
    # sample 4: exact -> 1
    out = box_metrics(
        [[[0, 0, 2, 2], [2, 0, 4, 2]], [], [[0, 0, 1, 1]], [[1, 1, 3, 3]]],
        [[[0, 0, 2, 2], [2, 2, 4, 4]], [[0, 0, 1, 1]], [], [[1, 1, 3, 3]]],
    )
    assert out["n_box"] == 3
    assert out["box_mIoU"] == pytest.approx((0.5 + 0 + 1) / 3)
    assert out["box_Acc@0.5"] == pytest.approx(1 / 3)  # 0.5 is not > 0.5
    assert sample_box_iou([], []) is None


def test_box_accumulator_groups_and_empty():
    acc = BoxAccumulator()
    assert math.isnan(acc.result()["box_mIoU"])
    acc.add([[0, 0, 1, 1]], [[0, 0, 1, 1]], group="x")
    acc.add([[0, 0, 1, 1]], [[2, 2, 3, 3]], group="y")
    assert acc.result("x")["box_mIoU"] == 1.0 and acc.result("y")["box_mIoU"] == 0.0
