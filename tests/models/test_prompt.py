"""The shared prompt builder."""

import pytest

from genseg_lib.models.prompt import build_messages, system_prompt


def test_messages_shape_and_query():
    msgs = build_messages("the red circle")
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert msgs[1]["content"] == "Query: the red circle"


def test_prompt_states_the_answer_format_it_is_parsed_with():
    text = system_prompt("norm1000")
    for token in (
        "<think>",
        "</think>",
        "<answer>",
        "bbox_2d",
        "points",
        "<answer>[]</answer>",
        "0 to 1000",
    ):
        assert token in text
    assert "pixel" in system_prompt("pixels")


def test_unknown_frame():
    with pytest.raises(ValueError, match="coord_frame"):
        build_messages("x", coord_frame="relative")
