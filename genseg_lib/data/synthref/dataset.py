"""SynthRef: procedural referring-segmentation scenes, the embedded default (SPEC §6).

Scenes of coloured shapes on textured backgrounds with exact (occlusion-aware) instance
masks, and templated referring expressions of graded difficulty, each labelled by type:

- ``attribute``  "the small red triangle" (a minimal unique description)
- ``spatial``    "the circle left of the blue square"
- ``ordinal``    "the largest green shape", "the leftmost star"
- ``multi``      "all yellow shapes", "the red square and the blue circle"
- ``no_target``  a described object that is absent ("the purple star", "all orange circles")
- ``reasoning``  a property instead of the name ("the object that has three corners")

Every query stores the *program* that produced it; targets are resolved from the scene by
that program, so ground truth is correct by construction. Deterministic from a seed; each
split draws its scenes from its own random stream, so splits never share an image.
On disk: ``DATA_ROOT/synthref/images/<split>/<scene>.png`` + ``annotations.json``.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from genseg_lib.data.refer import DataError
from genseg_lib.data.sample import Sample
from genseg_lib.masks import rle_encode

LOG = logging.getLogger(__name__)

SHAPES = ("circle", "square", "triangle", "star", "ellipse", "hexagon")
COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 225),
    "yellow": (235, 215, 40),
    "purple": (150, 60, 190),
    "orange": (245, 140, 30),
}
SIZES = ("small", "large")
RELATIONS = ("left of", "right of", "above", "below")
EXTREMES = ("largest", "smallest", "leftmost", "rightmost", "topmost", "bottommost")
QUERY_TYPES = ("attribute", "spatial", "ordinal", "multi", "no_target", "reasoning")
SPLITS = ("train", "val", "test")
SHAPE_PROPERTIES = {
    "circle": "no corners",
    "square": "four equal sides",
    "triangle": "three corners",
    "star": "five sharp points",
    "ellipse": "an oval outline",
    "hexagon": "six sides",
}
COLOUR_PROPERTIES = {
    "red": "the colour of a ripe tomato",
    "green": "the colour of fresh grass",
    "blue": "the colour of a clear sky",
    "yellow": "the colour of a banana",
    "purple": "the colour of lavender",
    "orange": "the colour of a carrot",
}
ANNOTATION_FILE = "annotations.json"
FORMAT_VERSION = 1
# bumped whenever the same seed would generate different scenes or queries (2: no-target
# queries worded like attribute queries), so cached copies are regenerated
GENERATOR_VERSION = 2


@dataclass
class SynthRefConfig:
    """Scene and query settings (all our choice; defaults sized for CPU training)."""

    image_size: int = 128  # square images; 128 px gives 16 Qwen3-VL visual tokens
    min_objects: int = 2
    max_objects: int = 5
    small_radius: tuple[float, float] = (0.07, 0.10)  # fraction of the image side
    large_radius: tuple[float, float] = (0.14, 0.20)
    min_visible: float = 0.7  # mild occlusion: each object keeps >= 70 % of its area
    queries_per_scene: int = 2
    query_weights: dict[str, float] = field(
        default_factory=lambda: {
            "attribute": 0.30,
            "spatial": 0.15,
            "ordinal": 0.15,
            "multi": 0.15,
            "no_target": 0.10,
            "reasoning": 0.15,
        }
    )
    split_fractions: dict[str, float] = field(
        default_factory=lambda: {"train": 0.7, "val": 0.15, "test": 0.15}
    )
    relation_margin: float = 0.06  # centroids must differ by this fraction of the side
    ordinal_margin: float = 1.3  # largest >= 1.3 x second largest area (and vice versa)


@dataclass
class SceneObject:
    """One rendered shape; ``area``/``cx``/``cy`` describe its *visible* mask."""

    shape: str
    colour: str
    size: str
    centre: tuple[float, float]
    radius: float
    angle: float
    area: int = 0
    cx: float = 0.0
    cy: float = 0.0

    def matches(self, desc: dict[str, str | None]) -> bool:
        """Whether this object fits a description ``{shape, colour, size}`` (None = any)."""
        return all(desc.get(k) in (None, getattr(self, k)) for k in ("shape", "colour", "size"))


def _vertices(shape: str, cx: float, cy: float, r: float, angle: float) -> np.ndarray:
    corners = {"square": 4, "triangle": 3, "hexagon": 6}
    if shape == "star":
        radii = [r if i % 2 == 0 else 0.45 * r for i in range(10)]
        angles = [angle + i * math.pi / 5 for i in range(10)]
    else:
        n = corners[shape]
        radii = [r] * n
        angles = [angle + 2 * math.pi * i / n for i in range(n)]
    return np.array(
        [
            [cx + rr * math.sin(a), cy - rr * math.cos(a)]
            for rr, a in zip(radii, angles, strict=True)
        ]
    )


def render_shape(obj: SceneObject, side: int) -> np.ndarray:
    """Full (unoccluded) boolean mask of one object on a ``side x side`` canvas."""
    canvas = np.zeros((side, side), dtype=np.uint8)
    cx, cy = obj.centre
    # cv2 draws on integer pixel centres; shift=4 keeps sub-pixel precision
    s = 16
    if obj.shape == "circle":
        cv2.circle(
            canvas, (round(cx * s), round(cy * s)), round(obj.radius * s), 1, -1, cv2.LINE_8, 4
        )
    elif obj.shape == "ellipse":
        axes = (round(obj.radius * s), round(0.55 * obj.radius * s))
        cv2.ellipse(
            canvas,
            (round(cx * s), round(cy * s)),
            axes,
            math.degrees(obj.angle),
            0,
            360,
            1,
            -1,
            cv2.LINE_8,
            4,
        )
    else:
        pts = np.round(_vertices(obj.shape, cx, cy, obj.radius, obj.angle) * s).astype(np.int32)
        cv2.fillPoly(canvas, [pts], 1, cv2.LINE_8, 4)
    return canvas.astype(bool)


def _background(rng: np.random.Generator, side: int) -> np.ndarray:
    """Textured low-saturation background: smooth blobs, optional stripes, fine noise."""
    coarse = rng.uniform(80, 175, size=(5, 5, 1)) + rng.uniform(-12, 12, size=(1, 1, 3))
    bg = cv2.resize(coarse.astype(np.float32), (side, side), interpolation=cv2.INTER_CUBIC)
    if rng.random() < 0.5:
        period = rng.uniform(6, 16)
        theta = rng.uniform(0, math.pi)
        yy, xx = np.mgrid[:side, :side]
        bg += (
            10
            * np.sin((xx * math.cos(theta) + yy * math.sin(theta)) * 2 * math.pi / period)[
                ..., None
            ]
        )
    bg += rng.normal(0, 5, size=bg.shape)
    return np.clip(bg, 0, 255)


def _place_objects(
    rng: np.random.Generator, cfg: SynthRefConfig
) -> tuple[list[SceneObject], list[np.ndarray]]:
    """Objects in painter's order with their visible masks (later objects occlude earlier)."""
    side = cfg.image_size
    n_target = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    objects: list[SceneObject] = []
    visible: list[np.ndarray] = []
    for _ in range(n_target * 30):
        if len(objects) == n_target:
            break
        size = SIZES[int(rng.integers(2))]
        lo, hi = cfg.small_radius if size == "small" else cfg.large_radius
        radius = rng.uniform(lo, hi) * side
        margin = radius + 1
        obj = SceneObject(
            shape=SHAPES[int(rng.integers(len(SHAPES)))],
            colour=list(COLOURS)[int(rng.integers(len(COLOURS)))],
            size=size,
            centre=(rng.uniform(margin, side - margin), rng.uniform(margin, side - margin)),
            radius=float(radius),
            angle=float(rng.uniform(0, 2 * math.pi)),
        )
        full = render_shape(obj, side)
        if any(
            o.shape == obj.shape and o.colour == obj.colour and o.size == obj.size for o in objects
        ):
            continue  # identical twins make single-object references impossible to build
        trimmed = [v & ~full for v in visible]
        if any(t.sum() < cfg.min_visible * v.sum() for t, v in zip(trimmed, visible, strict=True)):
            continue
        visible = [*trimmed, full]
        objects.append(obj)
    for obj, mask in zip(objects, visible, strict=True):
        rows, cols = np.nonzero(mask)
        obj.area, obj.cx, obj.cy = (
            int(mask.sum()),
            float(cols.mean() + 0.5),
            float(rows.mean() + 0.5),
        )
    return objects, visible


def render_scene(
    rng: np.random.Generator, cfg: SynthRefConfig
) -> tuple[np.ndarray, list[SceneObject], list[np.ndarray]]:
    """RGB ``uint8 (S, S, 3)`` image, its objects and their visible boolean masks."""
    objects, visible = _place_objects(rng, cfg)
    img = _background(rng, cfg.image_size)
    for obj, mask in zip(objects, visible, strict=True):
        colour = np.array(COLOURS[obj.colour], dtype=np.float32) + rng.uniform(-12, 12, size=3)
        shade = rng.normal(0, 4, size=(int(mask.sum()), 1))
        img[mask] = colour + shade
    return np.clip(img, 0, 255).astype(np.uint8), objects, visible


# ----------------------------------------------------------------------------- programs


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


# ----------------------------------------------------------------------------- datasets


def _split_counts(n: int, fractions: dict[str, float]) -> dict[str, int]:
    total = sum(fractions.values())
    counts = {s: int(round(n * f / total)) for s, f in fractions.items()}
    counts[next(iter(counts))] += n - sum(counts.values())
    return counts


def generate_split(
    split: str, n_samples: int, seed: int, cfg: SynthRefConfig | None = None
) -> list[dict[str, Any]]:
    """Scenes of one split until ``n_samples`` queries exist; records hold in-memory images."""
    cfg = cfg or SynthRefConfig()
    if split not in SPLITS:
        raise ValueError(f"unknown SynthRef split {split!r}; expected one of {SPLITS}")
    scenes = []
    n = 0
    scene_idx = 0
    while n < n_samples:
        rng = np.random.default_rng([seed, SPLITS.index(split), scene_idx])
        image, objects, visible = render_scene(rng, cfg)
        queries = make_queries(rng, objects, cfg)[: n_samples - n]
        scenes.append(
            {
                "scene_id": f"{split}_{scene_idx:06d}",
                "image": image,
                "objects": objects,
                "masks": visible,
                "queries": queries,
            }
        )
        n += len(queries)
        scene_idx += 1
    return scenes


def _samples_from_scenes(
    scenes: list[dict[str, Any]], split: str, image_dir: Path | None
) -> list[Sample]:
    samples = []
    for scene in scenes:
        rles = [rle_encode(m) for m in scene["masks"]]
        side = scene["image"].shape[0]
        for q, (kind, program, targets) in enumerate(scene["queries"]):
            samples.append(
                Sample(
                    sample_id=f"synthref/{split}/{scene['scene_id']}/{q}",
                    query=program_text(program),
                    gt_masks=[rles[t] for t in targets],
                    no_target=not targets,
                    width=side,
                    height=side,
                    source={
                        "dataset": "synthref",
                        "split": split,
                        "scene_id": scene["scene_id"],
                        "targets": list(targets),
                        "program": program,
                    },
                    image_path=None
                    if image_dir is None
                    else str(image_dir / f"{scene['scene_id']}.png"),
                    image=scene["image"] if image_dir is None else None,
                    query_type=kind,
                )
            )
    return samples


def synthref_samples(
    split: str, n_samples: int, seed: int = 0, cfg: SynthRefConfig | None = None
) -> list[Sample]:
    """In-memory SynthRef samples of one split (no files written)."""
    return _samples_from_scenes(generate_split(split, n_samples, seed, cfg), split, None)


def write_synthref(
    root: Path | str, n_samples: int, seed: int = 0, cfg: SynthRefConfig | None = None
) -> Path:
    """Generate all splits under ``root/synthref`` (PNG images + one annotations.json)."""
    cfg = cfg or SynthRefConfig()
    out = Path(root) / "synthref"
    records: dict[str, Any] = {
        "version": FORMAT_VERSION,
        "generator": GENERATOR_VERSION,
        "seed": seed,
        "config": asdict(cfg),
        "scenes": [],
        "samples": [],
    }
    for split, count in _split_counts(n_samples, cfg.split_fractions).items():
        image_dir = out / "images" / split
        image_dir.mkdir(parents=True, exist_ok=True)
        scenes = generate_split(split, count, seed, cfg)
        for scene in tqdm(scenes, desc=f"synthref {split}", leave=False):
            Image.fromarray(scene["image"]).save(image_dir / f"{scene['scene_id']}.png")
            records["scenes"].append(
                {
                    "scene_id": scene["scene_id"],
                    "split": split,
                    "objects": [asdict(o) for o in scene["objects"]],
                }
            )
        for s in _samples_from_scenes(scenes, split, image_dir):
            records["samples"].append(
                {
                    "sample_id": s.sample_id,
                    "split": split,
                    "image": str(Path(s.image_path).relative_to(out)),
                    "width": s.width,
                    "height": s.height,
                    "query": s.query,
                    "query_type": s.query_type,
                    "no_target": s.no_target,
                    "gt_masks": s.gt_masks,
                    "source": s.source,
                }
            )
    (out / ANNOTATION_FILE).write_text(json.dumps(records))
    LOG.info("wrote %d SynthRef samples to %s", len(records["samples"]), out)
    return out


def load_synthref(root: Path | str, split: str) -> list[Sample]:
    """Samples of one split from ``root/synthref/annotations.json`` (see `write_synthref`)."""
    folder = Path(root) / "synthref"
    path = folder / ANNOTATION_FILE
    if not path.is_file():
        raise DataError(
            f"synthref: {path} not found; generate it with "
            f"`python -m genseg_lib.data synthref --out {root} --n 1000 --seed 0`"
        )
    data = json.loads(path.read_text())
    if data.get("version") != FORMAT_VERSION:
        raise DataError(
            f"synthref: {path} has format version {data.get('version')}, expected {FORMAT_VERSION}"
        )
    have = sorted({r["split"] for r in data["samples"]})
    if split not in have:
        raise DataError(f"synthref: unknown split {split!r} in {path}; it has {have}")
    return [
        Sample(
            sample_id=r["sample_id"],
            query=r["query"],
            gt_masks=r["gt_masks"],
            no_target=r["no_target"],
            width=r["width"],
            height=r["height"],
            source=r["source"],
            image_path=str(folder / r["image"]),
            query_type=r["query_type"],
        )
        for r in data["samples"]
        if r["split"] == split
    ]


def scene_objects(records: Iterable[dict[str, Any]]) -> list[SceneObject]:
    """SceneObjects back from their JSON form (annotations.json ``scenes[*].objects``)."""
    return [SceneObject(**{**r, "centre": tuple(r["centre"])}) for r in records]
