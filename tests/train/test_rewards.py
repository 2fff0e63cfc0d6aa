"""Reward terms on hand-written completions with hand-computed values (docs/method.md §4)."""

import math

import numpy as np
import pytest

from genseg_lib.answer import Instance
from genseg_lib.masks import rle_encode
from genseg_lib.train.rewards import (
    PRESETS,
    REWARDS,
    build_rewards,
    completion_text,
    format_reward,
    make_box_iou_reward,
    make_box_l1_reward,
    make_points_reward,
    make_sam_mask_iou_reward,
    match,
    no_target_reward,
)

W = H = 100  # norm1000 coordinate c is pixel c / 10


def rect(y1, y2, x1, x2):
    m = np.zeros((H, W), bool)
    m[y1:y2, x1:x2] = True
    return m


A = {
    "box": [10.0, 10.0, 50.0, 50.0],
    "points": [[20.5, 20.5], [40.5, 40.5]],
    "mask": rect(10, 50, 10, 50),
}
B = {
    "box": [60.0, 60.0, 90.0, 80.0],
    "points": [[70.5, 65.5], [80.5, 75.5]],
    "mask": rect(60, 80, 60, 90),
}


def cols(*gts, n=1):
    """Dataset columns for n completions of one sample with GT instances ``gts``."""
    return {
        "width": [W] * n,
        "height": [H] * n,
        "gt_boxes": [[g["box"] for g in gts]] * n,
        "gt_points": [[g["points"] for g in gts]] * n,
        "gt_masks": [[rle_encode(g["mask"]) for g in gts]] * n,
        "no_target": [not gts] * n,
    }


def ans(*insts, think="t"):
    """A strictly formatted answer; instances as (box, points) in pixels (x10 for norm1000)."""
    items = []
    for box, pts in insts:
        b = [round(v * 10) for v in box]
        p = [[round(x * 10), round(y * 10)] for x, y in pts]
        items.append(f'{{"bbox_2d": {b}, "points": {p}}}')
    return [
        {
            "role": "assistant",
            "content": f"<think>{think}</think><answer>[{', '.join(items)}]</answer>",
        }
    ]


PERFECT = ((10, 10, 50, 50), ((20.5, 20.5), (40.5, 40.5)))
SHIFTED = ((20, 10, 60, 50), ((30, 20), (50, 40)))  # +10 px in x


def r(fn, completions, **columns):
    return fn(prompts=[None] * len(completions), completions=completions, **columns)


def test_perfect_answer_scores_one_everywhere():
    c = [ans(PERFECT)]
    for name in [
        "format",
        "box_iou",
        "box_l1",
        "points_in_mask",
        "points_distance",
        "no_target",
        "box_iou_gt0.5",
        "box_l1_lt10px840",
        "points_segzero_lt100px840",
        "points_segzero_lt30px840",
    ]:
        assert r(REWARDS[name](), c, **cols(A)) == [pytest.approx(1.0)], name


def test_shifted_box_hand_computed():
    c = [ans(SHIFTED)]
    # IoU: inter 30x40 = 1200, union 1600 + 1600 - 1200 = 2000
    assert r(make_box_iou_reward(), c, **cols(A)) == [pytest.approx(0.6)]
    assert r(make_box_iou_reward(0.5), c, **cols(A)) == [1.0]
    # L1: corner errors 10, 0, 10, 0 -> mean 5 px; 0.1 x diagonal = 14.142 px
    assert r(make_box_l1_reward(), c, **cols(A)) == [
        pytest.approx(1 - 5 / (0.1 * math.hypot(100, 100)))
    ]
    # in Seg-Zero's 840 frame 5 px is 42 px, above 10
    assert r(make_box_l1_reward(10.0), c, **cols(A)) == [0.0]
    # points (30, 20) and (50, 40): the first is inside the GT mask, the second on its edge (col 50 is outside)
    assert r(make_points_reward("inside"), c, **cols(A)) == [0.5]
    # best-pairing distances to (20.5, 20.5), (40.5, 40.5): both sqrt(9.5^2 + 0.5^2)
    d = math.hypot(9.5, 0.5)
    assert r(make_points_reward("distance"), c, **cols(A)) == [
        pytest.approx(1 - d / (0.1 * math.hypot(100, 100)))
    ]
    # 840 frame: d x 8.4 = 79.9 px: under 100 (Seg-Zero), over 30 (VisionReasoner); points inside the box
    assert r(make_points_reward("segzero", 100.0), c, **cols(A)) == [1.0]
    assert r(make_points_reward("segzero", 30.0), c, **cols(A)) == [0.0]


def test_swapped_instances_are_matched():
    c = [ans(((60, 60, 90, 80), ((70.5, 65.5), (80.5, 75.5))), PERFECT)]
    for name in ["box_iou", "box_l1", "points_in_mask", "points_distance"]:
        assert r(REWARDS[name](), c, **cols(A, B)) == [pytest.approx(1.0)], name
    assert match(
        [Instance((60, 60, 90, 80)), Instance((10, 10, 50, 50))], np.array([A["box"], B["box"]])
    ) == [(0, 1), (1, 0)]


def test_extra_and_missing_instances_cost():
    far = ((0, 90, 5, 95), ((1, 91), (2, 92)))
    extra = [ans(PERFECT, far)]
    assert r(make_box_iou_reward(), extra, **cols(A)) == [pytest.approx(0.5)]
    assert r(make_points_reward("inside"), extra, **cols(A)) == [pytest.approx(0.5)]
    missing = [ans(PERFECT)]
    assert r(make_box_iou_reward(), missing, **cols(A, B)) == [pytest.approx(0.5)]
    assert r(make_box_l1_reward(), missing, **cols(A, B)) == [pytest.approx(0.5)]


def test_no_target_right_and_wrong():
    empty = [[{"role": "assistant", "content": "<think>none</think><answer>[]</answer>"}]]
    assert r(no_target_reward, empty, **cols()) == [1.0]
    assert r(make_box_iou_reward(), empty, **cols()) == [1.0]  # both empty
    assert r(no_target_reward, [ans(PERFECT)], **cols()) == [0.0]
    assert r(make_box_iou_reward(), [ans(PERFECT)], **cols()) == [0.0]
    # a target sample answered with [] : the decision and all geometry score 0
    assert r(no_target_reward, empty, **cols(A)) == [0.0]
    for name in ["box_iou", "box_l1", "points_in_mask", "points_distance"]:
        assert r(REWARDS[name](), empty, **cols(A)) == [0.0]
    assert r(no_target_reward, [ans(SHIFTED)], **cols(A)) == [1.0]


@pytest.mark.parametrize(
    "text", ["", "no idea", "<think>x</think><answer>{oops</answer>", None, 42]
)
def test_malformed_scores_zero_never_raises(text):
    c = [[{"role": "assistant", "content": text}]] if text is not None else [None]
    for name, factory in REWARDS.items():
        assert r(factory(), c, **cols(A)) == [0.0], name
        assert r(factory(), c, **cols()) == [0.0], name  # no-target sample: unreadable still 0


def test_lenient_geometry_with_strict_format():
    text = '```json\n[{"bbox_2d": [100, 100, 500, 500], "points": [[205, 205], [405, 405]]}]\n```'
    c = [[{"role": "assistant", "content": text}]]
    assert r(format_reward, c, **cols(A)) == [0.0]
    assert r(make_box_iou_reward(), c, **cols(A)) == [1.0]


def test_batch_of_completions_and_plain_strings():
    c = [ans(PERFECT), ans(SHIFTED), "<think>t</think><answer>[]</answer>"]
    out = r(make_box_iou_reward(), c, **cols(A, n=3))
    assert out == [pytest.approx(1.0), pytest.approx(0.6), 0.0]
    assert completion_text("plain") == "plain"


class BoxMasks:
    """A segmenter whose mask is the prompt's box; records calls to check batching."""

    def __init__(self):
        self.calls = []

    def segment(self, images, prompts, keys=None):
        self.calls.append((len(images), sum(len(p) for p in prompts), list(keys or [])))
        out = []
        for plist in prompts:
            masks = []
            for p in plist:
                m = np.zeros((H, W), bool)
                x1, y1, x2, y2 = (int(v) for v in p.box)
                m[y1:y2, x1:x2] = True
                masks.append(m)
            out.append(masks)
        return out


def test_sam_mask_iou_reward_batched():
    seg = BoxMasks()
    fn = make_sam_mask_iou_reward(seg)
    assert fn.__name__ == "sam_mask_iou"
    c = [ans(PERFECT), ans(SHIFTED), "garbage", "<think>t</think><answer>[]</answer>"]
    img = np.zeros((H, W, 3), np.uint8)
    out = fn(
        prompts=[None] * 4, completions=c, image=[img] * 4, sample_id=["s0"] * 4, **cols(A, n=4)
    )
    assert out == [pytest.approx(1.0), pytest.approx(0.6), 0.0, 0.0]
    assert seg.calls == [(4, 2, ["s0"] * 4)]  # one call for the whole group
    nt = fn(
        prompts=[None] * 2,
        completions=c[3:] + c[:1],
        image=[img] * 2,
        sample_id=["s1"] * 2,
        **cols(n=2),
    )
    assert nt == [1.0, 0.0]


def test_registry_and_presets():
    names = {f.__name__ for f in build_rewards(PRESETS["genseg-r1"])}
    assert names == {"format", "box_iou", "box_l1", "points_in_mask"}
    assert [f.__name__ for f in build_rewards(PRESETS["genseg-r1-g"], BoxMasks())] == [
        "format",
        "no_target",
        "sam_mask_iou",
    ]
    with pytest.raises(ValueError, match="needs a segmenter"):
        build_rewards(["sam_mask_iou"])
    with pytest.raises(ValueError, match="unknown reward"):
        build_rewards(["iou"])
    for preset in PRESETS.values():
        assert len(build_rewards(preset, BoxMasks())) == len(preset)


def test_rewards_read_each_row_in_its_coordinate_frame():
    """A pixel-frame policy (Qwen2.5-VL style) answers in the resized image's pixels: the same
    box in the 0..1000 frame and in a 50 x 50 pixel frame of the 100 x 100 image scores alike,
    and reading a pixel answer as 0..1000 (the old bug) scores it wrong."""
    box = "[5, 5, 25, 25]"  # pixels of a 50 x 50 frame -> 10..50 in the 100 x 100 image
    pixel_answer = [
        {
            "role": "assistant",
            "content": f'<think>t</think><answer>[{{"bbox_2d": {box}, '
            '"points": [[10, 10], [20, 20]]}]</answer>',
        }
    ]
    pixel_cols = {**cols(A), "coord_frame": ["pixels"], "frame_size": [[50, 50]]}
    assert r(make_box_iou_reward(), [pixel_answer], **pixel_cols) == [pytest.approx(1.0)]
    assert r(make_points_reward("inside"), [pixel_answer], **pixel_cols) == [1.0]
    assert r(make_box_iou_reward(), [ans(PERFECT)], **cols(A)) == [pytest.approx(1.0)]
    as_norm = {**cols(A), "coord_frame": ["norm1000"], "frame_size": [[100, 100]]}
    assert r(make_box_iou_reward(), [pixel_answer], **as_norm)[0] < 0.05
