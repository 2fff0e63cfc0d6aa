"""Masks, boxes and ground-truth prompts against hand-computed values."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from genseg_lib.masks import (
    box_area,
    box_from_mask,
    box_iou,
    point_in_mask,
    polygons_to_mask,
    prompts_from_mask,
    rle_decode,
    rle_encode,
    union_masks,
)


def rect(h, w, y1, y2, x1, x2):
    m = np.zeros((h, w), dtype=bool)
    m[y1:y2, x1:x2] = True
    return m


def test_rle_round_trip_and_json_safe():
    m = rect(7, 5, 1, 4, 2, 5)
    rle = rle_encode(m)
    assert rle["size"] == [7, 5] and isinstance(rle["counts"], str)
    np.testing.assert_array_equal(rle_decode(rle), m)


def test_rle_uncompressed_counts():
    # column-major runs for a 2x3 mask: F F | T T | F T  -> counts [2, 2, 1, 1]
    m = rle_decode({"size": [2, 3], "counts": [2, 2, 1, 1]})
    np.testing.assert_array_equal(m, np.array([[0, 1, 0], [0, 1, 1]], dtype=bool))


def test_rle_errors():
    with pytest.raises(ValueError, match="sum"):
        rle_decode({"size": [2, 3], "counts": [2, 2]})
    with pytest.raises(ValueError, match="COCO RLE"):
        rle_decode({"counts": "abc"})
    with pytest.raises(ValueError, match="2-D"):
        rle_encode(np.zeros((2, 2, 2)))


@settings(max_examples=50, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 20), st.integers(1, 20))))
def test_rle_round_trip_property(mask):
    np.testing.assert_array_equal(rle_decode(rle_encode(mask)), mask)


def test_polygon_square():
    # COCO polygons trace pixel edges: the square (1,1)-(4,1)-(4,4)-(1,4) fills pixels 1..3
    m = polygons_to_mask([[1, 1, 4, 1, 4, 4, 1, 4]], 6, 6)
    assert m.sum() == 9 and m[1:4, 1:4].all()
    assert polygons_to_mask([], 3, 4).shape == (3, 4)


def test_polygon_too_short_raises():
    with pytest.raises(ValueError, match="polygon 0"):
        polygons_to_mask([[1, 1, 4, 1]], 6, 6)


def test_union_masks():
    a, b = rect(4, 4, 0, 2, 0, 2), rect(4, 4, 1, 3, 1, 3)
    assert union_masks([a, b]).sum() == 7
    assert union_masks([], shape=(2, 3)).shape == (2, 3)
    with pytest.raises(ValueError, match="shape"):
        union_masks([])
    with pytest.raises(ValueError, match="different shapes"):
        union_masks([a, rect(5, 4, 0, 1, 0, 1)])


def test_box_from_mask_pixel_edges():
    assert box_from_mask(rect(10, 10, 2, 8, 3, 6)) == (3.0, 2.0, 6.0, 8.0)
    assert box_from_mask(rect(10, 10, 4, 5, 4, 5)) == (4.0, 4.0, 5.0, 5.0)
    with pytest.raises(ValueError, match="empty"):
        box_from_mask(np.zeros((3, 3), bool))


def test_box_iou_hand_computed():
    a = [[0, 0, 2, 2], [0, 0, 1, 1]]
    b = [[1, 1, 3, 3], [0, 0, 2, 2], [5, 5, 5, 9]]
    iou = box_iou(a, b)
    assert iou.shape == (2, 3)
    np.testing.assert_allclose(iou[0], [1 / 7, 1.0, 0.0])
    np.testing.assert_allclose(iou[1], [0.0, 0.25, 0.0])
    # degenerate vs degenerate: union 0 -> 0, not NaN
    assert box_iou([[1, 1, 1, 1]], [[1, 1, 1, 1]])[0, 0] == 0.0
    np.testing.assert_allclose(box_area([[0, 0, 2, 3], [3, 3, 1, 1]]), [6, 0])


def test_prompts_rectangle():
    box, (pa, pb) = prompts_from_mask(rect(10, 10, 2, 8, 3, 6))
    assert box == (3.0, 2.0, 6.0, 8.0)
    assert pa == (4.5, 3.5)  # first distance-transform maximum (dt=2) in row-major order
    assert pb == (4.5, 6.5)  # dt=2 outside the radius-1 disk, farthest from A


def test_prompts_one_pixel():
    box, (pa, pb) = prompts_from_mask(rect(5, 5, 2, 3, 3, 4))
    assert box == (3.0, 2.0, 4.0, 3.0)
    assert pa != pb
    m = rect(5, 5, 2, 3, 3, 4)
    assert point_in_mask(pa, m) and point_in_mask(pb, m)


def test_prompts_thin_line_spread_to_ends():
    m = np.zeros((10, 10), bool)
    m[4, 2:9] = True
    _, (pa, pb) = prompts_from_mask(m)
    assert {pa, pb} == {(2.5, 4.5), (8.5, 4.5)}


def test_prompts_two_pixels_fallback():
    m = np.zeros((4, 4), bool)
    m[1, 1:3] = True
    _, (pa, pb) = prompts_from_mask(m)
    assert {pa, pb} == {(1.5, 1.5), (2.5, 1.5)}


def test_prompts_ring_points_inside():
    yy, xx = np.mgrid[:41, :41]
    r = np.hypot(yy - 20, xx - 20)
    ring = (r >= 10) & (r <= 14)
    _, (pa, pb) = prompts_from_mask(ring)
    assert point_in_mask(pa, ring) and point_in_mask(pb, ring) and pa != pb
    assert not point_in_mask((20.5, 20.5), ring)  # the hole


def test_prompts_empty_raises():
    with pytest.raises(ValueError, match="empty"):
        prompts_from_mask(np.zeros((4, 4), bool))


@settings(max_examples=100, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 24), st.integers(1, 24))))
def test_prompts_property_inside_distinct_deterministic(mask):
    if not mask.any():
        return
    box, (pa, pb) = prompts_from_mask(mask)
    assert pa != pb
    assert point_in_mask(pa, mask) and point_in_mask(pb, mask)
    assert box == box_from_mask(mask)
    assert prompts_from_mask(mask.copy()) == (box, (pa, pb))


def test_point_in_mask_edges():
    m = rect(4, 4, 0, 4, 3, 4)  # last column
    assert point_in_mask((4.0, 2.0), m)  # far edge belongs to the last column
    assert point_in_mask((3.0, 0.0), m)
    assert not point_in_mask((4.01, 2.0), m) and not point_in_mask((-0.1, 1), m)
    assert not point_in_mask((float("nan"), 1.0), m)


@pytest.mark.parametrize("counts", ["", "0", "zz", "garbage!!", "P137000000000l01"])
def test_rle_decode_refuses_counts_that_do_not_cover_the_image(counts):
    """pycocotools decodes some of these into uninitialised memory; we refuse them all."""
    with pytest.raises(ValueError, match="RLE counts"):
        rle_decode({"size": [10, 12], "counts": counts})
    mask = np.zeros((10, 12), bool)
    mask[2:5, 3:9] = True
    assert np.array_equal(rle_decode(rle_encode(mask)), mask)


def test_rle_decode_refuses_short_runs_even_when_the_tail_reads_as_zeros(monkeypatch):
    """Runs of a 10x10 mask claimed as 10x12 cover 100 of 120 pixels; pycocotools leaves the
    rest uninitialised. Should that memory happen to be zeros (fresh pages often are), the
    decoded mask looks valid: only re-encoding tells it apart."""
    import genseg_lib.masks as masks_module

    real_decode = masks_module.mask_utils.decode

    def zeroed_tail(rle):
        out = real_decode(rle)
        out[out > 1] = 0
        return out

    monkeypatch.setattr(masks_module.mask_utils, "decode", zeroed_tail)
    short = rle_encode(np.pad(np.ones((3, 6), bool), ((2, 5), (3, 1))))["counts"]  # 10x10
    with pytest.raises(ValueError, match="do not describe a 10x12 mask"):
        rle_decode({"size": [10, 12], "counts": short})
