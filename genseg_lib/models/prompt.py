"""The one prompt builder: system + user messages that ask for the answer format of
docs/method.md §2.

Messages are TRL's conversational format with plain-string contents; the image is attached
where it is used (TRL's ``prepare_multimodal_messages`` puts it before the user text), so
training and evaluation send the model exactly the same words.
"""

from __future__ import annotations

from genseg_lib.answer import COORD_FRAMES

_FRAME_TEXT = {
    "norm1000": "Coordinates are integers from 0 to 1000, relative to the image width (x) and "
    "height (y).",
    "pixels": "Coordinates are integer pixel positions in the image.",
}

SYSTEM_TEMPLATE = (
    "You segment the objects in an image that a query refers to. First reason step by step "
    "inside <think> </think>. Then answer inside <answer> </answer> with a JSON list holding "
    "one entry per referred object: "
    '{{"bbox_2d": [x1, y1, x2, y2], "points": [[x, y], [x, y]]}} — its bounding box and two '
    "points inside the object. {frame} If the query refers to several objects, list them all. "
    "If no object matches the query, answer <answer>[]</answer>."
)


def system_prompt(coord_frame: str = "norm1000") -> str:
    """The instruction text for a coordinate frame (``norm1000`` or ``pixels``)."""
    if coord_frame not in COORD_FRAMES:
        raise ValueError(f"unknown coord_frame {coord_frame!r}; expected one of {COORD_FRAMES}")
    return SYSTEM_TEMPLATE.format(frame=_FRAME_TEXT[coord_frame])


def build_messages(query: str, coord_frame: str = "norm1000") -> list[dict[str, str]]:
    """Chat messages (system + user) for one referring query, without the image."""
    return [
        {"role": "system", "content": system_prompt(coord_frame)},
        {"role": "user", "content": f"Query: {query}"},
    ]
