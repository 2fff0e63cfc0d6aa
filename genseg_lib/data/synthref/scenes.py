"""SynthRef scenes: coloured shapes on textured backgrounds with exact, occlusion-aware
instance masks (docs/method.md §6). Deterministic from a random generator."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

# shapes whose box centre lies on the object (convex or star-shaped about their centre) ...
CENTRED_SHAPES = ("circle", "square", "triangle", "star", "ellipse", "hexagon")
# ... and shapes whose box centre is off the object: a box-centre point prompt misses them
OFF_CENTRE_SHAPES = ("ring", "crescent", "arc", "cup", "corner")
SHAPES = CENTRED_SHAPES + OFF_CENTRE_SHAPES
COLOURS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 225),
    "yellow": (235, 215, 40),
    "purple": (150, 60, 190),
    "orange": (245, 140, 30),
}
SIZES = ("small", "large")


@dataclass
class SynthRefConfig:
    """Scene and query settings (all our choice; defaults sized for CPU training)."""

    image_size: int = 128  # square images (64 visual tokens of the SynthRef prompter)
    min_objects: int = 2
    max_objects: int = 5
    small_radius: tuple[float, float] = (0.07, 0.10)  # fraction of the image side
    large_radius: tuple[float, float] = (0.14, 0.20)
    min_visible: float = 0.7  # mild occlusion: each object keeps >= 70 % of its area
    off_centre_scenes: float = 0.35  # share of scenes drawn from OFF_CENTRE_SHAPES only
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
    # val is richer in no-target queries (and a little larger) so that N-acc rests on >= 150 of
    # them while >= 400 single-target queries stay; train keeps the mix above and its 70 %
    split_query_weights: dict[str, dict[str, float]] = field(
        default_factory=lambda: {
            "val": {
                "attribute": 0.25,
                "spatial": 0.12,
                "ordinal": 0.12,
                "multi": 0.13,
                "no_target": 0.25,
                "reasoning": 0.13,
            }
        }
    )
    split_fractions: dict[str, float] = field(
        default_factory=lambda: {"train": 0.7, "val": 0.175, "test": 0.125}
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
    elif obj.shape in OFF_CENTRE_SHAPES:
        return _off_centre_mask(obj, side)
    else:
        pts = np.round(_vertices(obj.shape, cx, cy, obj.radius, obj.angle) * s).astype(np.int32)
        cv2.fillPoly(canvas, [pts], 1, cv2.LINE_8, 4)
    return canvas.astype(bool)


def _off_centre_mask(obj: SceneObject, side: int) -> np.ndarray:
    """Shapes defined in the object's own frame (``u`` along its angle, ``v`` across, both in
    units of its radius), evaluated at pixel centres:

    - ring: an annulus, hole radius 0.55;
    - crescent: the unit disc minus a disc of radius 0.8 shifted by 0.45 along ``u``;
    - arc: the half of a thick annulus (radii 0.55..1) with ``v`` <= 0.15;
    - cup (U): a thick bottom bar and two side bars around an open middle;
    - corner (L): a vertical bar on the left and a horizontal bar at the bottom.
    """
    yy, xx = np.mgrid[:side, :side] + 0.5
    dx, dy = (xx - obj.centre[0]) / obj.radius, (yy - obj.centre[1]) / obj.radius
    c, s = math.cos(obj.angle), math.sin(obj.angle)
    u, v = c * dx + s * dy, -s * dx + c * dy
    r = np.hypot(u, v)
    if obj.shape == "ring":
        return (r <= 1.0) & (r >= 0.55)
    if obj.shape == "crescent":
        return (r <= 1.0) & (np.hypot(u - 0.45, v) > 0.8)
    if obj.shape == "arc":
        return (r <= 1.0) & (r >= 0.55) & (v <= 0.15)
    inside = (np.abs(u) <= 0.85) & (np.abs(v) <= 0.85)
    if obj.shape == "cup":
        return inside & ((v >= 0.35) | (np.abs(u) >= 0.4))
    return inside & ((u <= -0.35) | (v >= 0.35))  # corner


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
    shapes = OFF_CENTRE_SHAPES if rng.random() < cfg.off_centre_scenes else CENTRED_SHAPES
    for _ in range(n_target * 30):
        if len(objects) == n_target:
            break
        size = SIZES[int(rng.integers(2))]
        lo, hi = cfg.small_radius if size == "small" else cfg.large_radius
        radius = rng.uniform(lo, hi) * side
        margin = radius + 1
        obj = SceneObject(
            shape=shapes[int(rng.integers(len(shapes)))],
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
