"""GrabCut segmenter: exact on flat shapes, robust on edge cases, oracle IoU on SynthRef."""

import numpy as np
import pytest

from genseg_lib.data.synthref import synthref_samples
from genseg_lib.evaluate.metrics import SegmentationAccumulator
from genseg_lib.segment import InstancePrompt
from genseg_lib.segment.classical import GrabCutConfig, GrabCutSegmenter
from genseg_lib.segment.oracle import oracle_prompts


def scene(hw=(64, 80), rows=(20, 40), cols=(30, 55)):
    """A red rectangle (``rows`` x ``cols``) on grey noise, and its mask."""
    rng = np.random.default_rng(0)
    img = rng.normal(120, 6, (*hw, 3)).clip(0, 255).astype(np.uint8)
    truth = np.zeros(hw, bool)
    truth[slice(*rows), slice(*cols)] = True
    img[truth] = (200, 40, 40)
    return img, truth


def test_box_and_points_recover_a_flat_object():
    img, truth = scene()
    seg = GrabCutSegmenter()
    (mask,) = seg.segment(
        [img], [[InstancePrompt(box=(28, 18, 57, 42), points=((35, 25), (50, 35)))]]
    )[0]
    assert mask.dtype == bool and mask.shape == truth.shape
    assert (mask & truth).sum() / (mask | truth).sum() > 0.95


def test_points_only_and_deterministic():
    img, truth = scene()
    seg = GrabCutSegmenter()
    p = InstancePrompt(box=None, points=((35, 25), (50, 35)))
    a = seg.segment([img], [[p]])[0][0]
    b = seg.segment([img], [[p]])[0][0]
    assert np.array_equal(a, b)
    assert (a & truth).sum() / (a | truth).sum() > 0.9


def test_edge_cases():
    img, _ = scene()
    seg = GrabCutSegmenter()
    assert seg.segment([img], [[]]) == [[]]
    (empty,) = seg.segment([img], [[InstancePrompt(box=(10, 10, 10, 30))]])[0]
    assert not empty.any()
    (whole,) = seg.segment([img], [[InstancePrompt(box=(-5, -5, 200, 200))]])[0]
    assert whole.all()  # no background left to model: the (clipped) box itself
    (off,) = seg.segment(
        [img], [[InstancePrompt(box=(70, 50, 300, 300), points=((500, 500), (75, 60)))]]
    )[0]
    assert off.shape == (64, 80) and not off[:50].any()
    with pytest.raises(ValueError, match="2 images"):
        seg.segment([img, img], [[]])


def test_oracle_iou_on_synthref():
    """Measured: gIoU about 0.99 with box + 2 points on 128-px SynthRef scenes."""
    samples = [s for s in synthref_samples("val", 60, seed=0) if not s.no_target]
    seg = GrabCutSegmenter()
    acc = SegmentationAccumulator()
    for s in samples:
        masks = seg.segment([s.image], [oracle_prompts(s.instance_masks(), "box+2pt")])[0]
        acc.add(np.logical_or.reduce(masks), s.gt_mask())
    assert acc.result()["gIoU"] > 0.95


def ring_scene():
    from genseg_lib.data.synthref.scenes import SceneObject, render_shape

    rng = np.random.default_rng(1)
    img = rng.normal(120, 6, (96, 96, 3)).clip(0, 255).astype(np.uint8)
    truth = render_shape(SceneObject("ring", "red", "large", (48.0, 48.0), 30.0, 0.0), 96)
    img[truth] = (200, 40, 40)
    return img, truth


def test_points_select_the_object_they_are_on():
    """As SAM's points do: two points on the ring give the ring; two points in its hole (the
    box centre) select background, not the ring; the box alone still gives the ring."""
    img, truth = ring_scene()
    seg = GrabCutSegmenter()
    box = (18.0, 18.0, 78.0, 78.0)
    on = InstancePrompt(box=box, points=((48.5, 22.5), (74.5, 48.5)))
    hole = InstancePrompt(box=box, points=((48.0, 48.0), (48.0, 54.0)))
    masks = seg.segment([img] * 3, [[on], [hole], [InstancePrompt(box=box)]])
    iou = [(m[0] & truth).sum() / (m[0] | truth).sum() for m in masks]
    assert iou[0] > 0.95 and iou[2] > 0.95
    assert iou[1] < 0.05
    unselected = GrabCutSegmenter(GrabCutConfig(points_select=False))
    (m,) = unselected.segment([img], [[hole]])[0]
    assert (m & truth).sum() / (m | truth).sum() > 0.5  # without selection the box wins


def test_a_point_on_the_background_selects_the_background_under_it():
    """SAM answers a point on the background with a wrong mask, not with nothing: a point in
    the ring's hole gives the hole (inside the box, off the ring), a point in a box corner
    only that corner of the box (the ring touches the box's sides and cuts the rest of the box
    into four corners); without background selection, nothing."""
    img, truth = ring_scene()
    box = (18.0, 18.0, 78.0, 78.0)
    in_box = np.zeros_like(truth)
    in_box[18:78, 18:78] = True
    hole = InstancePrompt(box=box, points=((48.0, 48.0), (48.0, 54.0)))
    corner = InstancePrompt(box=box, points=((19.5, 19.5), (19.5, 20.5)))
    (m_hole,), (m_corner,) = GrabCutSegmenter().segment([img, img], [[hole], [corner]])
    for m in (m_hole, m_corner):
        assert m.any() and not (m & ~in_box).any() and (m & truth).sum() < 0.02 * m.sum()
    assert m_hole[48, 48] and not m_hole[19, 19] and 0.05 * truth.sum() < m_hole.sum()
    assert m_corner[19, 19] and not m_corner[48:, :].any() and not m_corner[:, 48:].any()
    assert m_corner.sum() < m_hole.sum() < 0.5 * truth.sum()
    off = GrabCutSegmenter(GrabCutConfig(background_select=False))
    assert not off.segment([img], [[hole]])[0][0].any()


def test_points_far_outside_their_box_select_nothing():
    img, truth = scene((128, 128), (90, 110), (90, 115))
    seg = GrabCutSegmenter()
    box = (90.0, 90.0, 115.0, 110.0)  # the crop reaches cols 77-127, rows 80-119
    far = InstancePrompt(box=box, points=((2.0, 2.0), (3.0, 120.0)))  # outside the crop
    mixed = InstancePrompt(box=box, points=((2.0, 2.0), (100.5, 100.5)))  # one on the object
    (m_far,), (m_mixed,) = seg.segment([img, img], [[far], [mixed]])
    assert not m_far.any()
    assert (m_mixed & truth).sum() / (m_mixed | truth).sum() > 0.95
