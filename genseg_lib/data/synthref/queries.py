"""SynthRef referring expressions: query *programs* (attribute, spatial, ordinal, multi,
no-target, reasoning), resolved against a scene so ground truth is correct by construction,
and their templated English text."""

from __future__ import annotations

from typing import Any

import numpy as np

from genseg_lib.data.synthref.scenes import COLOURS, SHAPES, SIZES, SceneObject, SynthRefConfig

RELATIONS = ("left of", "right of", "above", "below")
EXTREMES = ("largest", "smallest", "leftmost", "rightmost", "topmost", "bottommost")
QUERY_TYPES = ("attribute", "spatial", "ordinal", "multi", "no_target", "reasoning")
SHAPE_PROPERTIES = {
    "circle": "no corners",
    "square": "four equal sides",
    "triangle": "three corners",
    "star": "five sharp points",
    "ellipse": "an oval outline",
    "hexagon": "six sides",
    "ring": "a hole in the middle",
    "crescent": "the outline of a new moon",
    "arc": "the form of a rainbow",
    "cup": "the form of the letter U",
    "corner": "the form of the letter L",
}
COLOUR_PROPERTIES = {
    "red": "the colour of a ripe tomato",
    "green": "the colour of fresh grass",
    "blue": "the colour of a clear sky",
    "yellow": "the colour of a banana",
    "purple": "the colour of lavender",
    "orange": "the colour of a carrot",
}


# ----------------------------------------------------------------------------- programs


def phrase_targets(program: dict[str, Any], objects: list[SceneObject]) -> list[int] | None:
    """A conjunction's target object indices in the order its text names them (``resolve``
    returns them sorted); None for any other program. Its phrases each describe one object."""
    if program["kind"] != "and":
        return None
    order = []
    for part in program["parts"]:
        hits = [i for i, o in enumerate(objects) if o.matches(part["desc"])]
        if part["kind"] != "describe" or len(hits) != 1:
            raise ValueError(f"conjunction phrase {part} does not name exactly one object")
        order.append(hits[0])
    return order


def resolve(
    program: dict[str, Any], objects: list[SceneObject], side: int, cfg: SynthRefConfig
) -> list[int] | None:
    """Target object indices of a query program; None when the program is ambiguous."""
    kind = program["kind"]
    if kind in ("describe", "all", "property"):
        return [i for i, o in enumerate(objects) if o.matches(program["desc"])]
    if kind == "and":
        parts = [resolve(p, objects, side, cfg) for p in program["parts"]]
        if any(p is None or len(p) != 1 for p in parts):
            return None
        return sorted({p[0] for p in parts})
    if kind == "relation":
        anchors = [i for i, o in enumerate(objects) if o.matches(program["anchor"])]
        if len(anchors) != 1:
            return None
        a = objects[anchors[0]]
        m = cfg.relation_margin * side
        test = {
            "left of": lambda o: o.cx + m < a.cx,
            "right of": lambda o: o.cx > a.cx + m,
            "above": lambda o: o.cy + m < a.cy,
            "below": lambda o: o.cy > a.cy + m,
        }[program["relation"]]
        cands = [i for i, o in enumerate(objects) if i != anchors[0] and o.matches(program["desc"])]
        near = [i for i in cands if _near_relation(objects[i], a, program["relation"], m)]
        hits = [i for i in cands if test(objects[i])]
        return hits if not near else None  # an object too close to call makes it ambiguous
    if kind == "extreme":
        cands = [i for i, o in enumerate(objects) if o.matches(program["desc"])]
        if len(cands) < 2:
            return None
        key, sign = {
            "largest": ("area", -1),
            "smallest": ("area", 1),
            "leftmost": ("cx", 1),
            "rightmost": ("cx", -1),
            "topmost": ("cy", 1),
            "bottommost": ("cy", -1),
        }[program["extreme"]]
        vals = sorted((sign * getattr(objects[i], key), i) for i in cands)
        first, second = abs(vals[0][0]), abs(vals[1][0])
        if key == "area":
            lo, hi = sorted((first, second))
            clear = hi >= cfg.ordinal_margin * lo
        else:
            clear = abs(first - second) > cfg.relation_margin * side
        return [vals[0][1]] if clear else None
    raise ValueError(f"unknown program kind {kind!r}")


def near_miss(desc: dict[str, str | None], objects: list[SceneObject]) -> int:
    """The object a box-grounding model would point at for a description that matches nothing:
    the one that fits the most of its words (the first drawn among ties). A no-target query is
    an object's description with one word changed, so that object fits all words but one."""
    keys = [k for k, v in desc.items() if v is not None]
    fits = [sum(getattr(o, k) == desc[k] for k in keys) for o in objects]
    return int(np.argmax(fits))


def _near_relation(o: SceneObject, a: SceneObject, relation: str, m: float) -> bool:
    """An object within the margin of the anchor along the relation's axis (ambiguous)."""
    d = (o.cx - a.cx) if relation in ("left of", "right of") else (o.cy - a.cy)
    return 0 < abs(d) <= m or d == 0


def describe(desc: dict[str, str | None], plural: bool = False) -> str:
    """Words for a description: ``{"size": "small", "colour": "red", "shape": None}`` ->
    ``"small red shape"``."""
    noun = desc.get("shape") or "shape"
    words = [w for w in (desc.get("size"), desc.get("colour")) if w] + [
        noun + ("s" if plural else "")
    ]
    return " ".join(words)


def program_text(program: dict[str, Any]) -> str:
    """The referring expression of a program (the inverse the tests parse)."""
    kind = program["kind"]
    if kind == "describe":
        return f"the {describe(program['desc'])}"
    if kind == "all":
        return f"all {describe(program['desc'], plural=True)}"
    if kind == "and":
        return " and ".join(program_text(p) for p in program["parts"])
    if kind == "relation":
        target, anchor = describe(program["desc"]), describe(program["anchor"])
        return f"the {target} {program['relation']} the {anchor}"
    if kind == "extreme":
        return f"the {program['extreme']} {describe(program['desc'])}"
    if kind == "property":
        props = []
        if program["desc"].get("colour"):
            props.append(f"is {COLOUR_PROPERTIES[program['desc']['colour']]}")
        if program["desc"].get("shape"):
            props.append(f"has {SHAPE_PROPERTIES[program['desc']['shape']]}")
        return "the object that " + " and ".join(props)
    raise ValueError(f"unknown program kind {kind!r}")


def _descs(obj: SceneObject) -> list[dict[str, str | None]]:
    """Descriptions of an object from short to long (graded difficulty)."""
    return [
        {"shape": obj.shape, "colour": None, "size": None},
        {"shape": None, "colour": obj.colour, "size": None},
        {"shape": obj.shape, "colour": obj.colour, "size": None},
        {"shape": obj.shape, "colour": None, "size": obj.size},
        {"shape": obj.shape, "colour": obj.colour, "size": obj.size},
    ]


def _unique_descs(i: int, objects: list[SceneObject]) -> list[dict[str, str | None]]:
    return [
        d for d in _descs(objects[i]) if [j for j, o in enumerate(objects) if o.matches(d)] == [i]
    ]


def _propose(
    kind: str, rng: np.random.Generator, objects: list[SceneObject]
) -> dict[str, Any] | None:
    """A candidate program of one query type (validated by `resolve` afterwards)."""
    n = len(objects)
    pick = lambda seq: seq[int(rng.integers(len(seq)))]  # noqa: E731
    if kind == "attribute":
        i = int(rng.integers(n))
        uniq = _unique_descs(i, objects)
        return {"kind": "describe", "desc": pick(uniq)} if uniq else None
    if kind == "reasoning":
        i = int(rng.integers(n))
        uniq = [d for d in _unique_descs(i, objects) if d["size"] is None]
        return {"kind": "property", "desc": pick(uniq)} if uniq else None
    if kind == "spatial":
        if n < 2:  # a relation needs an anchor
            return None
        i, j = (int(v) for v in rng.choice(n, size=2, replace=False))
        anchors = _unique_descs(j, objects)
        if not anchors:
            return None
        desc = pick(_descs(objects[i])[:3])
        return {
            "kind": "relation",
            "desc": desc,
            "anchor": pick(anchors),
            "relation": pick(RELATIONS),
        }
    if kind == "ordinal":
        i = int(rng.integers(n))
        desc = pick([{"shape": None, "colour": None, "size": None}, *_descs(objects[i])[:3]])
        return {"kind": "extreme", "desc": desc, "extreme": pick(EXTREMES)}
    if kind == "multi":
        if rng.random() < 0.5:
            i = int(rng.integers(n))
            desc = pick(_descs(objects[i])[:4])
            return {"kind": "all", "desc": desc}
        if n < 2:
            return None
        i, j = (int(v) for v in rng.choice(n, size=2, replace=False))
        di, dj = _unique_descs(i, objects), _unique_descs(j, objects)
        if not di or not dj:
            return None
        return {
            "kind": "and",
            "parts": [
                {"kind": "describe", "desc": pick(di)},
                {"kind": "describe", "desc": pick(dj)},
            ],
        }
    if kind == "no_target":
        # hard negatives worded like the attribute queries (so the words alone do not give them
        # away): a description of an object in the scene with one of its words changed
        desc = dict(pick(_descs(objects[int(rng.integers(n))])))
        key = pick([k for k, v in desc.items() if v])
        options = {"shape": SHAPES, "colour": list(COLOURS), "size": SIZES}[key]
        desc[key] = pick([v for v in options if v != desc[key]])
        return {"kind": "all" if rng.random() < 0.3 else "describe", "desc": desc}
    raise ValueError(f"unknown query type {kind!r}")


def _valid(kind: str, program: dict[str, Any], targets: list[int] | None) -> bool:
    if targets is None:
        return False
    if kind == "no_target":
        return not targets
    if kind == "multi":
        return len(targets) >= 2
    return len(targets) == 1


def make_queries(
    rng: np.random.Generator, objects: list[SceneObject], cfg: SynthRefConfig
) -> list[tuple[str, dict[str, Any], list[int]]]:
    """``(query_type, program, target indices)`` for one scene, distinct programs."""
    types = list(cfg.query_weights)
    weights = np.array([cfg.query_weights[t] for t in types], dtype=float)
    weights /= weights.sum()
    out: list[tuple[str, dict[str, Any], list[int]]] = []
    seen: set[str] = set()
    for _ in range(cfg.queries_per_scene * 4):
        if len(out) == cfg.queries_per_scene:
            break
        kind = types[int(rng.choice(len(types), p=weights))]
        for _ in range(12):  # retry within the type so the mix follows query_weights
            program = _propose(kind, rng, objects)
            if program is None:
                continue
            targets = resolve(program, objects, cfg.image_size, cfg)
            text = program_text(program)
            if _valid(kind, program, targets) and text not in seen:
                seen.add(text)
                out.append((kind, program, targets))
                break
    return out
