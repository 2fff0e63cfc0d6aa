"""Stage-0 label rules: boxes and box-only points (never from the segmenter or the mask's
interior), one object for most multi-target queries, the near miss's box for most no-target
queries and [] for a few; oracle labels for the reference."""

import numpy as np
import pytest

from genseg_lib.answer import parse_answer
from genseg_lib.data import Sample
from genseg_lib.data.synthref.scenes import SceneObject, render_shape
from genseg_lib.masks import rle_encode
from genseg_lib.segment.oracle import oracle_instances
from genseg_lib.stage0.labels import in_share, label_instances, label_text


def sample(masks, sid="s/0", source=None):
    return Sample(
        sample_id=sid,
        query="q",
        gt_masks=[rle_encode(m) for m in masks],
        width=100,
        height=100,
        image=np.zeros((100, 100, 3), np.uint8),
        no_target=not masks,
        source=source or {},
    )


def rect(y1, y2, x1, x2):
    m = np.zeros((100, 100), bool)
    m[y1:y2, x1:x2] = True
    return m


def test_grounding_points_come_from_the_box_alone():
    # an L-shaped mask whose box is 10..50 x 20..60: points at the box centre and 0.1 x the
    # box height below it, wherever the mask is
    m = rect(20, 60, 10, 20) | rect(50, 60, 10, 50)
    (inst,) = label_instances(sample([m]), "grounding", 0.5)
    assert inst.box == (10.0, 20.0, 50.0, 60.0)
    assert inst.points == ((30.0, 40.0), (30.0, 44.0))
    assert not any(m[int(y), int(x)] for x, y in inst.points)  # both miss the L
    (oracle,) = label_instances(sample([m]), "oracle", 0.5)
    assert oracle.box == inst.box and all(m[int(y), int(x)] for x, y in oracle.points)


def test_off_centre_shapes_have_their_box_centre_off_the_mask():
    for shape in ("ring", "crescent", "arc", "cup", "corner"):
        for angle in (0.0, 1.3, 2.9, 4.4):
            m = render_shape(SceneObject(shape, "red", "large", (64.0, 64.0), 24.0, angle), 128)
            ys, xs = np.nonzero(m)
            cx, cy = (xs.min() + xs.max() + 1) / 2, (ys.min() + ys.max() + 1) / 2
            assert not m[int(cy), int(cx)], (shape, angle)
            assert m.sum() > 400  # a real object, not a sliver


def test_multi_target_labels_one_object_unless_listed():
    a, b = rect(10, 30, 10, 30), rect(60, 90, 50, 80)
    listed = [s for s in (sample([a, b], f"s/{i}") for i in range(400))]
    counts = [len(label_instances(s, "grounding", 0.25)) for s in listed]
    assert set(counts) == {1, 2}
    assert abs(np.mean(np.array(counts) == 2) - 0.25) < 0.06  # the share that lists all
    one = next(s for s in listed if not in_share(s, 0.25))
    assert label_instances(one, "grounding", 0.25)[0].box == (10.0, 10.0, 30.0, 30.0)  # first
    assert all(len(label_instances(s, "grounding", 0.0)) == 1 for s in listed[:20])
    assert len(label_instances(listed[0], "oracle", 0.0)) == 2  # the reference lists all


def test_conjunction_labels_follow_the_phrase_order():
    """ "the B and the A": the single-box label is B's (the first-named), a list names B then
    A; without a phrase order (e.g. "all red shapes") the first drawn object comes first."""
    a, b = rect(10, 30, 10, 30), rect(60, 90, 50, 80)
    box_a, box_b = (10.0, 10.0, 30.0, 30.0), (50.0, 60.0, 80.0, 90.0)
    named = [
        sample([a, b], f"s/{i}", {"targets": [2, 5], "phrase_targets": [5, 2]}) for i in range(40)
    ]
    for s in named:
        boxes = [inst.box for inst in label_instances(s, "grounding", 0.5)]
        assert boxes == ([box_b, box_a] if in_share(s, 0.5) else [box_b])
    assert [i.box for i in label_instances(named[0], "grounding", 1.0)] == [box_b, box_a]
    plain = sample([a, b], "s/0", {"targets": [2, 5]})
    assert [i.box for i in label_instances(plain, "grounding", 1.0)] == [box_a, box_b]
    bad = sample([a, b], "s/bad", {"targets": [2, 5], "phrase_targets": [5, 3]})
    with pytest.raises(ValueError, match="s/bad"):
        label_instances(bad, "grounding", 0.5)


def test_no_target_labels_box_the_near_miss_except_a_few_abstentions():
    """As a grounding model that always answers with a box: most no-target labels box the near
    miss (with box-centre points), a fixed share of them say [] (the oracle reference: all [])."""
    src = {"near_miss": 1, "near_miss_box": [20.0, 30.0, 60.0, 50.0]}
    nots = [sample([], f"n/{i}", src) for i in range(400)]
    labels = [label_instances(s, "grounding", 0.5, 0.3) for s in nots]
    abstain = np.array([not inst for inst in labels])
    assert abs(abstain.mean() - 0.3) < 0.06
    assert all(abstain == [in_share(s, 0.3) for s in nots])
    boxed = next(inst for inst in labels if inst)
    assert boxed[0].box == (20.0, 30.0, 60.0, 50.0) and boxed[0].points == (
        (40.0, 40.0),
        (40.0, 42.0),
    )
    text = label_text(nots[int(np.argmax(abstain))], no_target_abstain_share=0.3)
    assert text.endswith("<answer>[]</answer>") and parse_answer(text, (100, 100)).no_target
    assert all(not label_instances(s, "grounding", 0.5, 1.0) for s in nots[:20])
    assert all(not label_instances(s, "oracle", 0.5, 0.0) for s in nots[:20])
    with pytest.raises(ValueError, match="n/0: a no-target grounding label needs"):
        label_instances(sample([], "n/0"), "grounding", 0.5, 0.0)


def test_labels_round_trip_through_the_parser():
    m = rect(20, 60, 10, 20) | rect(50, 60, 10, 50)
    ans = parse_answer(label_text(sample([m]), "oracle"), (100, 100))
    want = oracle_instances([m])[0]
    assert ans.format_ok and ans.instances[0].box == pytest.approx(want.box, abs=0.1)
    with pytest.raises(ValueError, match="label kind"):
        label_text(sample([m]), "segmenter")
