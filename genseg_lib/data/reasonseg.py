"""ReasonSeg loader (LISA's release): ``DATA_ROOT/reasonseg/{split}/<name>.jpg + <name>.json``.

Each json has ``text`` (queries; one sample per query), ``is_sentence`` and labelme-style
``shapes`` (``label``, ``points``, ``shape_type: polygon``). The mask follows LISA's
``get_mask_from_json`` exactly: polygons are painted largest first (outline + fill), ``ignore``
shapes with an ignore value, ``flag`` shapes skipped; the target mask is what ends up labelled
target, so ignore regions are excluded from it. Each target polygon becomes one instance
(restricted to that final target area), so multi-part targets get one prompt per part.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from genseg_lib.data.sample import IMAGE_ERRORS, DataError, Sample
from genseg_lib.masks import rle_encode

SOURCE = "the ReasonSeg release of LISA (github.com/dvlab-research/LISA)"
TARGET, IGNORE = 1, 255


# labelme points may lie a little outside the image; beyond this many image sides they are
# corrupt (and would overflow the int32 coordinates OpenCV draws with)
MAX_OUTSIDE = 4


def _polygon(shape: dict, where: str, height: int, width: int) -> np.ndarray:
    pts = shape.get("points")
    try:
        arr = np.asarray(pts, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{where}: points are not numeric pairs") from exc
    if arr.ndim != 2 or arr.shape[1] != 2 or len(arr) < 3 or not np.isfinite(arr).all():
        raise DataError(f"{where}: polygon needs at least 3 finite (x, y) points, got {pts!r:.80}")
    limit = MAX_OUTSIDE * max(height, width)
    if np.abs(arr).max() > limit:
        raise DataError(
            f"{where}: a coordinate ({np.abs(arr).max():.3g}) lies beyond {MAX_OUTSIDE} image "
            f"sides of a {width}x{height} image"
        )
    return arr.astype(np.int32)


def _fill(poly: np.ndarray, height: int, width: int, value: int, out: np.ndarray | None = None):
    out = np.zeros((height, width), dtype=np.uint8) if out is None else out
    cv2.polylines(out, [poly], True, value, 1)
    cv2.fillPoly(out, [poly], value)
    return out


def reasonseg_masks(shapes: list[dict], height: int, width: int, where: str) -> list[np.ndarray]:
    """Instance masks (one per ``target`` polygon) after LISA's painting order."""
    polys = []
    for i, shape in enumerate(shapes):
        if not isinstance(shape, dict):
            raise DataError(f"{where} shape {i}: a {type(shape).__name__}, not an object")
        label = str(shape.get("label", "")).lower()
        if label == "flag":  # deprecated annotations, skipped by LISA too
            continue
        poly = _polygon(shape, f"{where} shape {i}", height, width)
        area = int(_fill(poly, height, width, 1).sum())
        polys.append((area, "ignore" in label, poly))
    label_map = np.zeros((height, width), dtype=np.uint8)
    # stable descending sort by area, as np.argsort(area)[::-1] orders ties in LISA
    order = np.argsort([a for a, _, _ in polys])[::-1]
    for k in order:
        _, ignore, poly = polys[k]
        _fill(poly, height, width, IGNORE if ignore else TARGET, label_map)
    target = label_map == TARGET
    instances = []
    for _, ignore, poly in polys:
        if ignore:
            continue
        inst = _fill(poly, height, width, 1).astype(bool) & target
        if inst.any():
            instances.append(inst)
    return instances


def load_reasonseg(root: Path | str, split: str) -> list[Sample]:
    """ReasonSeg ``split`` (train / val / test): one sample per query text."""
    base = Path(root) / "reasonseg"
    if not base.is_dir():
        raise DataError(
            f"reasonseg: {base} not found. Expected DATA_ROOT/reasonseg/{{train,val,test}}/ with "
            f"<name>.jpg + <name>.json; get it from {SOURCE}."
        )
    folder = base / split
    if not folder.is_dir():
        have = sorted(p.name for p in base.iterdir() if p.is_dir())
        raise DataError(f"reasonseg: unknown split {split!r}: no folder {folder}; it has {have}")
    samples = []
    for ann_path in sorted(folder.glob("*.json")):
        where = f"reasonseg: {ann_path}"
        try:
            ann = json.loads(ann_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataError(f"{where}: not valid UTF-8 JSON: {exc}") from exc
        if not isinstance(ann, dict):
            raise DataError(f"{where}: holds a {type(ann).__name__}, not an object")
        image_path = ann_path.with_suffix(".jpg")
        if not image_path.is_file():
            raise DataError(f"{where}: its image {image_path} is missing")
        try:
            with Image.open(image_path) as img:
                width, height = img.size
        except IMAGE_ERRORS as exc:
            raise DataError(f"{where}: cannot read its image {image_path}: {exc}") from exc
        texts = ann.get("text")
        if isinstance(texts, str):
            texts = [texts]
        if (
            not isinstance(texts, list)
            or not texts
            or not all(isinstance(t, str) and t.strip() for t in texts)
        ):
            raise DataError(f"{where}: 'text' must be a query or a non-empty list of queries")
        if not isinstance(ann.get("shapes"), list):
            raise DataError(f"{where}: needs a 'shapes' list")
        rles = [rle_encode(m) for m in reasonseg_masks(ann["shapes"], height, width, where)]
        for i, text in enumerate(texts):
            samples.append(
                Sample(
                    sample_id=f"reasonseg/{split}/{ann_path.stem}/{i}",
                    query=text,
                    gt_masks=rles,
                    no_target=not rles,
                    width=width,
                    height=height,
                    source={
                        "dataset": "reasonseg",
                        "split": split,
                        "name": ann_path.stem,
                        "text_index": i,
                        "is_sentence": bool(ann.get("is_sentence", False)),
                    },
                    image_path=str(image_path),
                    query_type="sentence" if ann.get("is_sentence") else "phrase",
                )
            )
    if not samples:
        raise DataError(f"reasonseg: no <name>.json annotations in {folder}")
    return samples
