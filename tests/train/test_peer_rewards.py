"""Strict anchor presets, hand-computed: each case is one of the rules where the peers' code
differs from this project's terms (docs/method.md §4.3). Images are 840 x 840 unless said, so
the peers' frame is the image's pixels."""

import json

import numpy as np
import pytest

from genseg_lib.train.peer_rewards import (
    segzero_box_iou,
    segzero_iou,
    segzero_points,
    think_answer_format,
    vr_accuracy,
    vr_answer_format,
    vr_iou_matrix,
    vr_non_repeat,
)
from genseg_lib.train.rewards import PRESETS, build_rewards

GT_BOX = [100, 100, 200, 200]
GT_POINTS = [[150, 120], [130, 180]]


def segzero_text(bbox, p1, p2, think="find it"):
    obj = json.dumps({"bbox": bbox, "points_1": p1, "points_2": p2})
    return f"<think>{think}</think>\n<answer>{obj}</answer>"


def vr_text(objects, think="find it"):
    return f"<think>{think}</think>\n<answer>{json.dumps(objects)}</answer>"


def score(preset, text, boxes, points, width=840, height=840, frame=None):
    cols = {"width": [width], "height": [height], "gt_boxes": [boxes], "gt_points": [points]}
    if frame:
        cols["coord_frame"] = [frame]
    return {f.__name__: f([None], [text], **cols)[0] for f in build_rewards(PRESETS[preset])}


def test_segzero_all_terms_on_a_good_answer():
    # inclusive IoU: inter 100 x 100 = 10000, areas 10000 and 101 x 101 = 10201 -> 0.980
    # L1: (0 + 0 + 1 + 1) / 4 = 0.5; points truncated to (150, 120), (130, 180): distance 0
    text = segzero_text([100, 100, 199, 199], [150.9, 120.2], [130, 180])
    assert segzero_iou([100, 100, 199, 199], GT_BOX) == pytest.approx(10000 / 10201)
    assert score("segzero", text, [GT_BOX], [GT_POINTS]) == {
        "think_format": 1.0,
        "segzero_answer_format": 1.0,
        "segzero_box_iou": 1.0,
        "segzero_points": 1.0,
        "segzero_box_l1": 1.0,
    }


def test_inclusive_extents_flip_a_box_at_iou_one_half():
    # exclusive: 100 / 200 = 0.5 (not > 0.5); inclusive: 11 x 11 / (121 + 231 - 121) = 0.524
    pred, gt = [0, 0, 10, 10], [0, 0, 10, 20]
    assert segzero_iou(pred, gt) == pytest.approx(121 / 231)
    assert vr_iou_matrix(np.array([pred]), np.array([gt]))[0, 0] == pytest.approx(121 / 231)
    text = segzero_text(pred, [5, 5], [6, 6])
    assert segzero_box_iou(text, gt) == 1.0
    like = f'<think>x</think><answer>[{{"bbox_2d": {pred}, "points": [[5, 5], [6, 6]]}}]</answer>'
    assert (
        score("segzero-like", like, [gt], [[[5, 5], [6, 6]]], frame="pixels")["box_iou_gt0.5"]
        == 0.0
    )


def test_broken_boxes_score_zero_as_written():
    # reversed corners: no ordered intersection -> IoU 0 for Seg-Zero (the -like preset's
    # parser reorders the box and pays it)
    text = segzero_text([199, 199, 100, 100], [150, 150], [160, 160])
    assert segzero_box_iou(text, GT_BOX) == 0.0
    assert segzero_points(text, GT_POINTS) == 0.0  # points cannot lie in a reversed box
    like = '<think>x</think><answer>[{"bbox_2d": [199, 199, 100, 100], "points": [[150, 150], [160, 160]]}]</answer>'
    assert (
        score("segzero-like", like, [GT_BOX], [GT_POINTS], frame="pixels")["box_iou_gt0.5"] == 1.0
    )


def test_segzero_reads_the_first_object_anywhere_and_truncates_points():
    decoy = '{"bbox": [0, 0, 5, 5], "points_1": [1, 1], "points_2": [2, 2]}'
    text = segzero_text([100, 100, 199, 199], [150, 120], [130, 180], think=f"not {decoy}")
    assert score("segzero", text, [GT_BOX], [GT_POINTS])["segzero_box_iou"] == 0.0
    # 199.9 lies outside [100, 199] but truncates to 199, inside
    assert (
        segzero_points(segzero_text([100, 100, 199, 199], [199.9, 150], [130, 180]), GT_POINTS)
        == 1.0
    )
    # mean distance over the better pairing: (0 + 100) / 2 = 50 < 100 -> 1; (0 + 200) / 2 -> 0
    tall = [100, 0, 400, 400]
    assert segzero_points(segzero_text(tall, [150, 120], [130, 80]), GT_POINTS) == 1.0
    far = segzero_text([0, 0, 400, 400], [150, 120], [330, 180])
    assert segzero_points(far, GT_POINTS) == 0.0


def test_segzero_has_no_target_case_and_scales_into_the_840_frame():
    text = segzero_text([100, 100, 199, 199], [150, 120], [130, 180])
    assert score("segzero", text, [], [])["segzero_box_iou"] == 0.0
    # a 420 x 420 image: the GT box [50, 50, 100, 100] is [100, 100, 200, 200] at 840
    half = score("segzero", text, [[50, 50, 100, 100]], [[[75, 60], [65, 90]]], 420, 420)
    assert half["segzero_box_iou"] == half["segzero_points"] == half["segzero_box_l1"] == 1.0


def test_visionreasoner_matches_once_on_the_sum_of_its_terms():
    """Both boxes fit both GT boxes (IoU > 0.5, L1 < 10); only the crossed pairing puts each
    single point_2d within 30 px of its GT point. VisionReasoner's matching finds it: 3 per
    pair. Matching on 1 - IoU first would pair the boxes straight and score 2 per pair."""
    gt_boxes = [[0, 0, 99, 99], [5, 0, 104, 99]]
    gt_points = [[[10, 10]], [[90, 90]]]
    objects = [
        {"bbox_2d": [0, 0, 99, 99], "point_2d": [90, 90]},
        {"bbox_2d": [5, 0, 104, 99], "point_2d": [10, 10]},
    ]
    assert vr_accuracy(vr_text(objects), gt_boxes, [[10, 10], [90, 90]]) == 3.0
    scores = score("visionreasoner", vr_text(objects), gt_boxes, gt_points)
    assert scores == {
        "think_format": 1.0,
        "vr_answer_format": 2.0,
        "vr_accuracy": 3.0,
        "vr_non_repeat": 1.0,
    }


def test_visionreasoner_divides_by_every_prediction_up_to_120():
    one = {"bbox_2d": [0, 0, 99, 99], "point_2d": [50, 50]}
    gt = [[0, 0, 99, 99]]
    assert vr_accuracy(vr_text([one]), gt, [[50, 50]]) == 3.0
    assert vr_accuracy(vr_text([one] * 20), gt, [[50, 50]]) == pytest.approx(3 / 20)
    assert vr_accuracy(vr_text([one] * 130), gt, [[50, 50]]) == pytest.approx(3 / 120)
    # a point outside its own box earns nothing, however close to the GT point
    off = {"bbox_2d": [0, 0, 40, 40], "point_2d": [50, 50]}
    # (IoU 41² / 100² = 0.17, L1 29.5: no box term either)
    assert vr_accuracy(vr_text([off]), gt, [[50, 50]]) == 0.0
    # nothing predicted, or no GT: 0 (the peer's array code fails on empty lists)
    assert vr_accuracy(vr_text([]), gt, [[50, 50]]) == 0.0
    assert vr_accuracy(vr_text([one]), [], []) == 0.0


def test_visionreasoner_format_and_repetition_terms():
    text = vr_text([{"bbox_2d": [0, 0, 1, 1]}, {"bbox_2d": [0, 0, 1, 1], "point_2d": [0, 0]}])
    assert vr_answer_format(text) == 0.5 + 1.0
    assert vr_answer_format(vr_text([])) == 0.0
    assert vr_answer_format("<answer>not json</answer>") == 0.0
    assert think_answer_format(text) == 1.0
    assert think_answer_format("preamble " + text) == 0.0
    assert vr_non_repeat("A. B. A. C.") == 1.0  # one repeat is allowed
    assert vr_non_repeat("A. B. A. B.") == 0.0
