"""Answer parsing and formatting: exact pixel values, leniency, strictness, never raising."""

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genseg_lib.answer import Answer, Instance, format_answer, parse_answer

SIZE = (640, 480)  # (width, height)
GOOD = (
    '<think>the red one</think>\n<answer>[{"bbox_2d": [100, 200, 300, 400], '
    '"points": [[150, 250], [200, 300]]}]</answer>'
)


def test_strict_answer_converts_norm1000_to_pixels():
    ans = parse_answer(GOOD, SIZE)
    assert ans.format_ok and ans.error is None and not ans.no_target
    assert ans.think == "the red one"
    assert ans.instances == [
        Instance(box=(64.0, 96.0, 192.0, 192.0), points=((96.0, 120.0), (128.0, 144.0)))
    ]


def test_pixel_frame_is_identity():
    ans = parse_answer(GOOD, SIZE, coord_frame="pixels")
    assert ans.instances[0].box == (100.0, 200.0, 300.0, 400.0)
    assert ans.instances[0].points == ((150.0, 250.0), (200.0, 300.0))


def test_no_target_answer():
    ans = parse_answer("<think>nothing blue</think><answer>[]</answer>", SIZE)
    assert ans.no_target and ans.format_ok and ans.instances == [] and ans.is_empty


def test_multiple_instances_keep_order():
    text = (
        '<think>t</think><answer>[{"bbox_2d": [0, 0, 500, 500], "points": [[100, 100], [200, 200]]},'
        ' {"bbox_2d": [500, 500, 1000, 1000], "points": [[600, 600], [700, 700]]}]</answer>'
    )
    ans = parse_answer(text, (1000, 1000))
    assert ans.format_ok
    assert [i.box for i in ans.instances] == [(0, 0, 500, 500), (500, 500, 1000, 1000)]


def test_box_is_clipped_and_reordered():
    text = '<think></think><answer>[{"bbox_2d": [1200, 300, -50, 100], "points": [[10, 10], [2000, 5]]}]</answer>'
    ans = parse_answer(text, (1000, 500))
    # x: 1200 -> 1200 px clipped to 1000; -50 -> 0; y: 300/1000*500=150, 100 -> 50; reordered
    assert ans.instances[0].box == (0.0, 50.0, 1000.0, 150.0)
    assert ans.instances[0].points == ((10.0, 5.0), (1000.0, 2.5))
    assert ans.format_ok  # clipping/reordering is geometry, not format


@pytest.mark.parametrize(
    "text,reason",
    [
        ('<answer>[{"bbox_2d": [1, 2, 3, 4], "points": [[1, 2], [3, 4]]}]</answer>', "think"),
        ('<think>a</think><answer>[{"bbox_2d": [1, 2, 3], "points": []}]</answer>', "4 finite"),
        ("<think>a</think><answer>not json</answer>", "no JSON"),
        ("<think>a</think><answer></answer>", "empty"),
        ("", "empty"),
    ],
)
def test_malformed_answers_give_reasons(text, reason):
    ans = parse_answer(text, SIZE)
    assert not ans.format_ok
    assert reason in ans.error


def test_missing_think_is_lenient_but_not_strict():
    ans = parse_answer(
        '<answer>[{"bbox_2d": [0, 0, 1000, 1000], "points": [[1, 1], [2, 2]]}]</answer>', SIZE
    )
    assert not ans.format_ok and len(ans.instances) == 1
    assert ans.instances[0].box == (0.0, 0.0, 640.0, 480.0)


@pytest.mark.parametrize(
    "text",
    [
        '```json\n[{"bbox_2d": [100, 200, 300, 400], "point_2d": [150, 250]}]\n```',
        'Sure! <answer>{"bbox": [100, 200, 300, 400], "points_1": [150, 250], "points_2": [200, 300]}</answer> done',
        '<think>x</think><answer>[{"bbox_2d": [100, 200, 300, 400], "points": [[150, 250], [200, 300]]}] extra text</answer>',
        'The answer is [{"bbox_2d": ["100", "200", "300", "400"], "points": [[150, 250], [200, 300]]}].',
    ],
)
def test_lenient_drift_is_parsed_but_not_strict(text):
    ans = parse_answer(text, SIZE)
    assert not ans.format_ok and ans.error
    assert len(ans.instances) == 1
    assert ans.instances[0].box == (64.0, 96.0, 192.0, 192.0)
    assert ans.instances[0].points[0] == (96.0, 120.0)


def test_nan_inf_and_non_numbers_drop_the_instance_not_the_answer():
    text = (
        '<think>t</think><answer>[{"bbox_2d": [NaN, 0, 10, 10], "points": [[1, 1], [2, 2]]},'
        ' {"bbox_2d": [0, 0, Infinity, 10], "points": [[1, 1], [2, 2]]},'
        ' {"bbox_2d": [0, 0, "x", 10], "points": [[1, 1], [2, 2]]},'
        ' {"bbox_2d": [0, 0, 1000, 1000], "points": [[1, 1], [NaN, 2]]}]</answer>'
    )
    ans = parse_answer(text, (1000, 1000))
    assert not ans.format_ok
    assert len(ans.instances) == 1
    assert ans.instances[0].points == ((1.0, 1.0),)  # the NaN point is dropped
    assert "instance 0" in ans.error and "instance 2" in ans.error


def test_all_invalid_instances_is_empty_but_not_no_target():
    ans = parse_answer('<think>t</think><answer>[{"foo": 1}]</answer>', SIZE)
    assert ans.instances == [] and not ans.no_target and not ans.format_ok


def test_instance_cap_truncates():
    inst = '{"bbox_2d": [0, 0, 10, 10], "points": [[1, 1], [2, 2]]}'
    text = f"<think>t</think><answer>[{', '.join([inst] * 20)}]</answer>"
    ans = parse_answer(text, SIZE, max_instances=16)
    assert len(ans.instances) == 16 and not ans.format_ok and "cap" in ans.error
    assert parse_answer(text, SIZE, max_instances=20).format_ok


def test_huge_integer_and_deep_nesting_do_not_raise():
    assert not parse_answer("<think>t</think><answer>[" + "9" * 5000 + "]</answer>", SIZE).format_ok
    assert not parse_answer("[" * 100000, SIZE).format_ok
    big = (
        '<think>t</think><answer>[{"bbox_2d": [1'
        + "0" * 400
        + ', 0, 1, 1], "points": []}]</answer>'
    )
    assert parse_answer(big, SIZE).instances == []


def test_non_string_input():
    assert parse_answer(None, SIZE).error.startswith("answer is a NoneType")


def test_programming_errors_raise():
    with pytest.raises(ValueError, match="coord_frame"):
        parse_answer(GOOD, SIZE, coord_frame="relative")
    with pytest.raises(ValueError, match="image_size"):
        parse_answer(GOOD, (0, 10))


def test_format_no_target():
    assert format_answer([], SIZE, think="none") == "<think>none</think>\n<answer>[]</answer>"


def test_format_writes_canonical_json():
    text = format_answer([((64, 96, 192, 192), ((96, 120), (128, 144)))], SIZE, think="r")
    body = text.split("<answer>")[1].split("</answer>")[0]
    assert json.loads(body) == [
        {"bbox_2d": [100, 200, 300, 400], "points": [[150, 250], [200, 300]]}
    ]


coord = st.floats(min_value=0, max_value=1, allow_nan=False)


@st.composite
def pixel_instances(draw, size):
    w, h = size
    n = draw(st.integers(0, 5))
    out = []
    for _ in range(n):
        xs = sorted([draw(coord) * w, draw(coord) * w])
        ys = sorted([draw(coord) * h, draw(coord) * h])
        pts = tuple((draw(coord) * w, draw(coord) * h) for _ in range(2))
        out.append(Instance(box=(xs[0], ys[0], xs[1], ys[1]), points=pts))
    return out


sizes = st.tuples(st.integers(1, 4000), st.integers(1, 4000))


@settings(max_examples=200, deadline=None)
@given(data=st.data(), size=sizes, frame=st.sampled_from(["norm1000", "pixels"]))
def test_format_parse_round_trip_within_one_unit(data, size, frame):
    insts = data.draw(pixel_instances(size))
    ans = parse_answer(format_answer(insts, size, frame, think="why"), size, frame)
    assert ans.format_ok and ans.think == "why"
    assert ans.no_target == (not insts)
    unit_x = size[0] / 1000 if frame == "norm1000" else 1.0
    unit_y = size[1] / 1000 if frame == "norm1000" else 1.0
    assert len(ans.instances) == len(insts)
    for got, want in zip(ans.instances, insts, strict=True):
        for g, w, u in zip(got.box, want.box, (unit_x, unit_y) * 2, strict=True):
            assert abs(g - w) <= u + 1e-9
        for gp, wp in zip(got.points, want.points, strict=True):
            assert abs(gp[0] - wp[0]) <= unit_x + 1e-9 and abs(gp[1] - wp[1]) <= unit_y + 1e-9


def _check_invariants(ans: Answer, size):
    assert isinstance(ans, Answer)
    assert ans.format_ok == (ans.error is None)
    assert not (ans.no_target and ans.instances)
    w, h = size
    for inst in ans.instances:
        x1, y1, x2, y2 = inst.box
        assert 0 <= x1 <= x2 <= w and 0 <= y1 <= y2 <= h
        assert len(inst.points) <= 2
        for x, y in inst.points:
            assert 0 <= x <= w and 0 <= y <= h and math.isfinite(x) and math.isfinite(y)


@settings(max_examples=500, deadline=None)
@given(text=st.text(), size=sizes)
def test_never_raises_on_arbitrary_text(text, size):
    _check_invariants(parse_answer(text, size), size)


json_leaf = st.one_of(
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.booleans(),
    st.none(),
)
json_value = st.recursive(
    json_leaf,
    lambda kids: (
        st.lists(kids, max_size=4)
        | st.dictionaries(
            st.sampled_from(["bbox_2d", "points", "bbox", "point_2d", "label"]), kids, max_size=3
        )
    ),
    max_leaves=20,
)


@settings(max_examples=500, deadline=None)
@given(value=json_value, size=sizes, prefix=st.text(max_size=10), suffix=st.text(max_size=10))
def test_never_raises_on_arbitrary_json_in_answer(value, size, prefix, suffix):
    text = f"{prefix}<think>t</think><answer>{json.dumps(value)}</answer>{suffix}"
    _check_invariants(parse_answer(text, size), size)


@settings(max_examples=500, deadline=None)
@given(cut=st.integers(0, len(GOOD)), insert=st.text(max_size=8), size=sizes)
def test_never_raises_on_mutated_valid_answers(cut, insert, size):
    _check_invariants(parse_answer(GOOD[:cut] + insert + GOOD[cut:], size), size)
    _check_invariants(parse_answer(GOOD[:cut], size), size)


def test_pixel_frame_of_a_resized_input():
    # a Qwen2.5-VL-style model saw the 640x480 image resized to 320x240
    ans = parse_answer(GOOD, SIZE, coord_frame="pixels", frame_size=(320, 240))
    assert ans.instances[0].box == (200.0, 400.0, 600.0, 480.0)  # y2 800 clipped to 480
    text = format_answer(ans.instances, SIZE, "pixels", frame_size=(320, 240))
    assert '"bbox_2d": [100, 200, 300, 240]' in text


@pytest.mark.parametrize(
    "junk",
    ["[" * 1_000_000, "{" * 1_000_000, "[{" * 500_000, '{"a": [' * 150_000, "[1, " * 250_000],
)
def test_adversarial_megabyte_parses_fast(junk):
    """Unbalanced brackets once cost quadratic time (1 MB of '{' took minutes): now bounded."""
    import time

    for text in (junk, f"<think>x</think><answer>{junk}</answer>"):
        start = time.perf_counter()
        ans = parse_answer(text, (100, 100))
        assert time.perf_counter() - start < 1.0  # quadratic took minutes; tolerant of load
        assert not ans.format_ok and not ans.instances and ans.error


def test_answer_after_a_few_stray_brackets_is_still_found():
    text = '[[ {{ <answer>[{"bbox_2d": [100, 200, 300, 400], "points": [[150, 250], [200, 300]]}]</answer>'
    ans = parse_answer(text, (1000, 1000))
    assert ans.instances and ans.instances[0].box == (100.0, 200.0, 300.0, 400.0)
