"""Masks, boxes and ground-truth prompts.

Conventions: masks are boolean ``(H, W)`` numpy arrays. Boxes are float ``(x1, y1, x2, y2)`` in
continuous pixel coordinates, where pixel ``(col, row)`` covers ``[col, col+1) x [row, row+1)``;
so the tight box of a one-pixel mask at (col, row) is ``(col, row, col+1, row+1)`` with area 1
(the same extent as COCO's ``[x, y, w, h]`` box). Points are ``(x, y)`` in the same frame; a
point falls in pixel ``(floor(x), floor(y))``. RLE is COCO's (pycocotools), with ``counts``
stored as ``str`` so it serialises to JSON.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pycocotools import mask as mask_utils
from scipy import ndimage

RLE = dict  # {"size": [h, w], "counts": str | list[int]}
Box = tuple[float, float, float, float]
Point = tuple[float, float]


def rle_encode(mask: np.ndarray) -> RLE:
    """Compressed COCO RLE of a boolean ``(H, W)`` mask, ``counts`` as ``str``."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"rle_encode expects a 2-D mask, got shape {mask.shape}")
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode()}


def rle_decode(rle: RLE) -> np.ndarray:
    """Boolean ``(H, W)`` mask from COCO RLE: compressed (``counts`` str/bytes) or
    uncompressed (``counts`` a list of run lengths, converted with ``frPyObjects``)."""
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        raise ValueError(f"not a COCO RLE (needs 'size' and 'counts'): {str(rle)[:80]}")
    h, w = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, list):
        if sum(counts) != h * w:
            raise ValueError(f"uncompressed RLE runs sum to {sum(counts)}, expected {h}*{w}")
        rle = mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)
    elif isinstance(counts, str):
        rle = {"size": [h, w], "counts": counts.encode()}
    elif not isinstance(counts, bytes):
        raise ValueError(f"RLE counts must be str, bytes or list, got {type(counts).__name__}")
    try:
        mask = mask_utils.decode(rle)
    except ValueError as exc:
        raise ValueError(f"RLE counts {rle['counts'][:40]!r} are not a valid COCO RLE") from exc
    # pycocotools decodes some garbage strings without complaint (runs that do not cover the
    # image, or overrun it): a valid RLE re-encodes to itself
    if mask.max(initial=0) > 1 or mask_utils.encode(mask)["counts"] != rle["counts"]:
        raise ValueError(
            f"RLE counts {rle['counts'][:40]!r} do not describe a {h}x{w} mask "
            "(their runs do not add up to the image)"
        )
    return mask.astype(bool)


def polygons_to_mask(polygons: Sequence[Sequence[float]], height: int, width: int) -> np.ndarray:
    """Rasterise COCO polygons (each a flat ``[x1, y1, x2, y2, ...]`` list) into one mask.

    Raises ``ValueError`` for a polygon with fewer than 3 points or an odd coordinate count;
    callers that follow grefer (which drops such polygons) filter with `valid_polygon` first.
    """
    polys = [list(map(float, p)) for p in polygons]
    for i, poly in enumerate(polys):
        if not valid_polygon(poly):
            raise ValueError(
                f"polygon {i} has {len(poly)} coordinates; need an even count >= 6 (3 points)"
            )
    if not polys:
        return np.zeros((height, width), dtype=bool)
    rles = mask_utils.frPyObjects(polys, height, width)
    return mask_utils.decode(mask_utils.merge(rles)).astype(bool)


def valid_polygon(poly: Sequence[float]) -> bool:
    """True for a flat coordinate list with at least 3 ``(x, y)`` points."""
    return len(poly) >= 6 and len(poly) % 2 == 0


def union_masks(masks: Sequence[np.ndarray], shape: tuple[int, int] | None = None) -> np.ndarray:
    """Pixel-wise OR of instance masks; an empty list needs ``shape=(H, W)`` and gives zeros."""
    if not len(masks):
        if shape is None:
            raise ValueError("union_masks of no masks needs shape=(H, W)")
        return np.zeros(shape, dtype=bool)
    shapes = {np.asarray(m).shape for m in masks}
    if len(shapes) != 1 or (shape is not None and shapes != {tuple(shape)}):
        raise ValueError(f"masks of different shapes cannot be united: {sorted(shapes)}")
    return np.logical_or.reduce([np.asarray(m, dtype=bool) for m in masks])


def box_from_mask(mask: np.ndarray) -> Box:
    """Tight box ``(x1, y1, x2, y2)`` of a non-empty mask (pixel-edge coordinates)."""
    mask = np.asarray(mask, dtype=bool)
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise ValueError("box_from_mask: mask is empty")
    return float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)


def box_area(boxes: np.ndarray) -> np.ndarray:
    """Areas of ``(N, 4)`` xyxy boxes; inverted or degenerate boxes have area 0."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Pairwise IoU matrix ``(N, M)`` of xyxy boxes. Pairs whose union is empty (two
    degenerate boxes) score 0."""
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def prompts_from_mask(mask: np.ndarray) -> tuple[Box, tuple[Point, Point]]:
    """Ground-truth prompt of a mask (docs/method.md §3): tight box and two interior points.

    Point A is the pixel farthest from the background (Euclidean distance transform maximum;
    the image border counts as background). Point B is the distance-transform maximum after
    suppressing a disk of radius ``max(1, dt_max / 2)`` around A, ties broken by distance from
    A. If nothing survives (masks of a few pixels), A and B are the two farthest-apart mask
    pixels instead; a one-pixel mask gets two distinct sub-pixel points inside that pixel.
    Points are pixel centres ``(col + 0.5, row + 0.5)``. Deterministic; ``ValueError`` on an
    empty mask.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"prompts_from_mask expects a 2-D mask, got shape {mask.shape}")
    if not mask.any():
        raise ValueError("prompts_from_mask: mask is empty (no-target instances have no prompt)")
    box = box_from_mask(mask)
    dist = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    rows, cols = np.nonzero(mask)
    if rows.size == 1:
        r, c = int(rows[0]), int(cols[0])
        return box, ((c + 0.25, r + 0.5), (c + 0.75, r + 0.5))
    first = int(np.argmax(dist[rows, cols]))  # first maximum in row-major order
    ra, ca = rows[first], cols[first]
    from_a = np.hypot(rows - ra, cols - ca)
    radius = max(1.0, float(dist[ra, ca]) / 2.0)
    keep = from_a > radius
    if keep.any():
        # maximise distance transform, then distance from A (lexsort: last key is primary)
        cand = np.flatnonzero(keep)
        order = np.lexsort((-from_a[cand], -dist[rows[cand], cols[cand]]))
        second = int(cand[order[0]])
    else:  # only tiny masks get here (all pixels within 1 px of A): farthest-apart pair
        pair = np.hypot(rows[:, None] - rows[None, :], cols[:, None] - cols[None, :])
        first, second = np.unravel_index(int(np.argmax(pair)), pair.shape)
        ra, ca = rows[first], cols[first]
    rb, cb = rows[second], cols[second]
    return box, ((float(ca) + 0.5, float(ra) + 0.5), (float(cb) + 0.5, float(rb) + 0.5))


def point_in_mask(point: Point, mask: np.ndarray) -> bool:
    """Whether ``(x, y)`` falls in the mask. A point on the far image edge (``x == W``, where
    clipping puts it) belongs to the last column/row; points outside the image are not in."""
    x, y = point
    h, w = mask.shape
    if not (0 <= x <= w and 0 <= y <= h):
        return False
    return bool(mask[min(int(y), h - 1), min(int(x), w - 1)])
