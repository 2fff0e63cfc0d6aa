"""Model answer text <-> boxes and points (docs/method.md §2).

Canonical answer::

    <think> free text </think>
    <answer>[{"bbox_2d": [x1, y1, x2, y2], "points": [[xa, ya], [xb, yb]]}, ...]</answer>

`<answer>[]</answer>` means "no object matches". Coordinates are written in a *coordinate
frame*: ``"norm1000"`` (Qwen3-VL's relative 0..1000 grid, the default) or ``"pixels"``
(Qwen2.5-VL style). Parsed results are always in image pixels: continuous ``(x, y)`` with
pixel ``(col, row)`` covering ``[col, col + 1) x [row, row + 1)``, boxes as ``(x1, y1, x2, y2)``.

`parse_answer` never raises: a malformed answer yields ``format_ok=False`` and an ``error``
that says why, so a reward can score it 0 and log the reason.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

CoordFrame = Literal["norm1000", "pixels"]
COORD_FRAMES: tuple[str, ...] = ("norm1000", "pixels")
NORM_SCALE = 1000.0
DEFAULT_MAX_INSTANCES = 16
# bumped whenever the same text would parse differently, so evaluations record which reading
# of the answers their records hold (part of an evaluation's identity)
PARSER_VERSION = 2

Box = tuple[float, float, float, float]
Point = tuple[float, float]

_STRICT_RE = re.compile(r"\A\s*<think>(.*?)</think>\s*<answer>(.*?)</answer>\s*\Z", re.DOTALL)
_THINK_RE = re.compile(r"<think>(.*?)(?:</think>|\Z)", re.DOTALL)
_ANSWER_RE = re.compile(r"<answer>(.*?)(?:</answer>|\Z)", re.DOTALL)
_FENCE_RE = re.compile(r"```[a-zA-Z]*\s*(.*?)(?:```|\Z)", re.DOTALL)
_BOX_KEYS = ("bbox_2d", "bbox", "box", "box_2d")
_STRICT_KEYS = ("bbox_2d", "points")
# ValueError covers JSONDecodeError and Python's cap on huge integer literals.
_JSON_ERRORS = (ValueError, RecursionError)


@dataclass(frozen=True)
class Instance:
    """One referred object: a pixel box ``(x1, y1, x2, y2)`` with x1<=x2, y1<=y2, and up to
    two pixel points ``(x, y)`` (exactly two in a strictly formatted answer)."""

    box: Box
    points: tuple[Point, ...] = ()


@dataclass
class Answer:
    """Result of `parse_answer`.

    instances: valid instances, in answer order (at most ``max_instances``).
    no_target: the answer is an explicit empty list (the model says nothing matches).
    format_ok: the strict docs/method.md §2 format held (think then answer, JSON list of instances
        with exactly the keys' shapes expected, within the instance cap).
    error: why the strict format failed or what was dropped; None when nothing was wrong.
    think: the reasoning text, if a think block was found.
    """

    instances: list[Instance] = field(default_factory=list)
    no_target: bool = False
    format_ok: bool = False
    error: str | None = None
    think: str | None = None

    @property
    def is_empty(self) -> bool:
        """True when the answer yields no instance (explicit no-target or nothing valid)."""
        return not self.instances


def _frame_scale(
    image_size: tuple[int, int], coord_frame: str, frame_size: tuple[int, int] | None = None
) -> tuple[float, float]:
    """Factors that turn frame coordinates into original-image pixels. ``frame_size`` is the
    ``(width, height)`` a ``pixels``-frame model saw (its resized input), default the image."""
    width, height = image_size
    if coord_frame == "norm1000":
        return width / NORM_SCALE, height / NORM_SCALE
    if coord_frame == "pixels":
        fw, fh = frame_size or image_size
        return width / fw, height / fh
    raise ValueError(f"unknown coord_frame {coord_frame!r}; expected one of {COORD_FRAMES}")


def _number(value: Any) -> float | None:
    """A finite float from a JSON number (or numeric string); None otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        out = float(value.strip() if isinstance(value, str) else value)
    except (ValueError, OverflowError):  # non-numeric string, or an int beyond float range
        return None
    return out if math.isfinite(out) else None


def _numbers(value: Any, n: int) -> list[float] | None:
    """Exactly ``n`` finite numbers from a list, else None."""
    if not isinstance(value, (list, tuple)) or len(value) != n:
        return None
    out = [_number(v) for v in value]
    return None if any(v is None for v in out) else out  # type: ignore[return-value]


def _strict_numbers(value: Any, n: int) -> bool:
    """Strict format: a JSON list of exactly ``n`` finite JSON numbers (no strings, no bools)."""
    return (
        isinstance(value, list)
        and len(value) == n
        and all(not isinstance(v, str) and _number(v) is not None for v in value)
    )


def _strict_instance(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and all(k in item for k in _STRICT_KEYS)
        and _strict_numbers(item["bbox_2d"], 4)
        and isinstance(item["points"], list)
        and len(item["points"]) == 2
        and all(_strict_numbers(p, 2) for p in item["points"])
    )


def _raw_points(item: dict) -> list[Any]:
    """Candidate point entries from the key conventions baseline models drift between."""
    if "points" in item:
        pts = item["points"]
        if (
            isinstance(pts, (list, tuple))
            and len(pts) == 2
            and all(_number(v) is not None for v in pts)
        ):
            return [pts]  # a single bare point
        return list(pts) if isinstance(pts, (list, tuple)) else []
    for key in ("point_2d", "points_2d", "point"):
        if key in item:
            pts = item[key]
            if isinstance(pts, (list, tuple)) and pts and isinstance(pts[0], (list, tuple)):
                return list(pts)
            return [pts]
    singles = [item[k] for k in ("points_1", "points_2", "point_1", "point_2") if k in item]
    return singles


def _clip(v: float, hi: float) -> float:
    return min(max(v, 0.0), hi)


def _instance_from_item(
    item: Any, sx: float, sy: float, width: float, height: float
) -> tuple[Instance | None, str | None]:
    """Lenient conversion of one JSON item to a pixel-space instance."""
    if not isinstance(item, dict):
        return None, f"instance is a {type(item).__name__}, not an object"
    box_key = next((k for k in _BOX_KEYS if k in item), None)
    if box_key is None:
        return None, f"instance has no box key (one of {_BOX_KEYS})"
    box = _numbers(item[box_key], 4)
    if box is None:
        return None, f"{box_key} is not 4 finite numbers: {item[box_key]!r:.80}"
    x1, x2 = sorted((_clip(box[0] * sx, width), _clip(box[2] * sx, width)))
    y1, y2 = sorted((_clip(box[1] * sy, height), _clip(box[3] * sy, height)))
    points: list[Point] = []
    for raw in _raw_points(item)[:2]:
        xy = _numbers(raw, 2)
        if xy is not None:
            points.append((_clip(xy[0] * sx, width), _clip(xy[1] * sy, height)))
    return Instance(box=(x1, y1, x2, y2), points=tuple(points)), None


MAX_JSON_ATTEMPTS = 32  # opening brackets tried as the start of the answer's JSON
MAX_JSON_CHARS = 65_536  # longest JSON value read (a 16-instance answer is about 2 KB)


def _find_json(text: str) -> tuple[Any, str | None]:
    """Decode the first JSON value in ``text`` (code fences and trailing text tolerated)."""
    fence = _FENCE_RE.search(text)
    if fence:
        text = fence.group(1)
    stripped = text.strip()
    if not stripped:
        return None, "answer is empty"
    try:
        return json.loads(stripped), None
    except _JSON_ERRORS:
        pass
    # Bounded, so that adversarial text stays linear: a failed decode's error message costs
    # time proportional to its position, so each attempt sees a window, and only the first
    # MAX_JSON_ATTEMPTS opening brackets are tried.
    decoder = json.JSONDecoder()
    for k, match in enumerate(re.finditer(r"[\[{]", stripped)):
        if k == MAX_JSON_ATTEMPTS:
            return None, f"no JSON list or object in the first {MAX_JSON_ATTEMPTS} brackets"
        window = stripped[match.start() : match.start() + MAX_JSON_CHARS]
        try:
            value, _ = decoder.raw_decode(window)
        except _JSON_ERRORS:
            continue
        return value, None
    return None, "no JSON list or object found in answer"


def parse_answer(
    text: Any,
    image_size: tuple[int, int],
    coord_frame: str = "norm1000",
    max_instances: int = DEFAULT_MAX_INSTANCES,
    frame_size: tuple[int, int] | None = None,
) -> Answer:
    """Parse a model answer into pixel-space instances; never raises on any ``text``.

    Args:
        text: the completion text (non-strings give an empty, invalid answer).
        image_size: ``(width, height)`` of the original image in pixels.
        coord_frame: ``"norm1000"`` (0..1000 relative grid) or ``"pixels"``.
        max_instances: instances beyond this count are dropped (and break strict format).
        frame_size: for ``"pixels"``, the ``(width, height)`` the model's coordinates refer to
            (Qwen2.5-VL answers in its resized input); default ``image_size``.
    """
    _frame_scale(image_size, coord_frame, frame_size)  # a bad frame or size raises
    if min(image_size) <= 0:
        raise ValueError(f"image_size must be positive (width, height), got {image_size}")
    if not isinstance(text, str):
        return Answer(error=f"answer is a {type(text).__name__}, not text")
    width, height = float(image_size[0]), float(image_size[1])
    sx, sy = _frame_scale(image_size, coord_frame, frame_size)

    strict = _STRICT_RE.match(text)
    errors: list[str] = []
    if strict:
        think, body = strict.group(1), strict.group(2)
    else:
        think_m = _THINK_RE.search(text)
        think = think_m.group(1) if think_m else None
        answer_m = _ANSWER_RE.search(text)
        if answer_m:
            body = answer_m.group(1)
        else:
            body = _THINK_RE.sub("", text)
        errors.append("not '<think>...</think><answer>...</answer>'")

    value, err = _find_json(body)
    if err:
        return Answer(error="; ".join([*errors, err]), think=think)
    strict_json = strict is not None
    if strict_json:
        try:
            strict_json = isinstance(json.loads(body), list)
        except _JSON_ERRORS:
            strict_json = False
        if not strict_json:
            errors.append("answer body is not exactly one JSON list")
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        return Answer(
            error="; ".join([*errors, f"answer JSON is a {type(value).__name__}"]), think=think
        )
    if not value:
        return Answer(
            no_target=True, format_ok=not errors, error="; ".join(errors) or None, think=think
        )

    if len(value) > max_instances:
        errors.append(f"{len(value)} instances exceed the cap of {max_instances}; truncated")
        value = value[:max_instances]
    instances: list[Instance] = []
    for idx, item in enumerate(value):
        inst, why = _instance_from_item(item, sx, sy, width, height)
        if inst is None:
            errors.append(f"instance {idx}: {why}")
            continue
        if not _strict_instance(item):
            errors.append(f"instance {idx}: not strictly {{'bbox_2d': [4], 'points': [[2], [2]]}}")
        instances.append(inst)
    return Answer(
        instances=instances,
        no_target=False,
        format_ok=not errors,
        error="; ".join(errors) or None,
        think=think,
    )


def _to_frame(v: float, scale: float, coord_frame: str) -> int:
    out = round(v / scale)
    return int(min(max(out, 0), NORM_SCALE)) if coord_frame == "norm1000" else int(out)


def format_answer(
    instances: Iterable[Instance | tuple[Sequence[float], Sequence[Sequence[float]]]],
    image_size: tuple[int, int],
    coord_frame: str = "norm1000",
    think: str = "",
    frame_size: tuple[int, int] | None = None,
) -> str:
    """Write the canonical answer for pixel-space instances (integers in ``coord_frame``).

    ``instances`` are `Instance` objects or ``(box, points)`` pairs in pixels. An empty
    iterable writes the no-target answer ``<answer>[]</answer>``. ``frame_size`` as in
    `parse_answer`.
    """
    sx, sy = _frame_scale(image_size, coord_frame, frame_size)
    items = []
    for inst in instances:
        box, points = (inst.box, inst.points) if isinstance(inst, Instance) else inst
        items.append(
            {
                "bbox_2d": [
                    _to_frame(box[0], sx, coord_frame),
                    _to_frame(box[1], sy, coord_frame),
                    _to_frame(box[2], sx, coord_frame),
                    _to_frame(box[3], sy, coord_frame),
                ],
                "points": [
                    [_to_frame(p[0], sx, coord_frame), _to_frame(p[1], sy, coord_frame)]
                    for p in points
                ],
            }
        )
    body = json.dumps(items, separators=(", ", ": "))
    return f"<think>{think}</think>\n<answer>{body}</answer>"
