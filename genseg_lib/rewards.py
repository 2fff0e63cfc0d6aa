"""Score a file of completions with a reward preset, to check a reward by hand:

    python -m genseg_lib.rewards --preset NAME --in completions.jsonl --out scores.jsonl

One input row per line: ``{"completion", "width", "height", "gt_boxes", "gt_points"}`` (GT in
image pixels; ``gt_points`` one list of points per GT box), optionally ``"coord_frame"`` and,
for ``points_in_mask``, ``"gt_masks"`` (COCO RLE per GT box). One output row per input row:
every term's value and their sum (each preset weighs its terms 1). Terms that run the
segmenter (``sam_mask_iou``) need images and are refused here.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from genseg_lib.train.rewards import NEEDS_SEGMENTER, PRESETS, build_rewards

COLUMNS = ("width", "height", "gt_boxes", "gt_points", "coord_frame", "gt_masks")


def _check_row(row: Any, where: str) -> dict[str, Any]:
    """The row's columns, checked; a `ValueError` naming the line and the problem."""
    if not isinstance(row, dict):
        raise ValueError(f"{where}: a {type(row).__name__}, expected a JSON object")
    for key in ("completion", "width", "height", "gt_boxes"):
        if key not in row:
            raise ValueError(f"{where}: no '{key}'")
    if not isinstance(row["completion"], str):
        raise ValueError(f"{where}: 'completion' must be text")
    for key in ("width", "height"):
        if not isinstance(row[key], int) or isinstance(row[key], bool) or row[key] <= 0:
            raise ValueError(f"{where}: '{key}' must be a positive integer, got {row[key]!r:.40}")
    boxes = row["gt_boxes"]
    if not isinstance(boxes, list) or not all(
        isinstance(b, list) and len(b) == 4 and all(isinstance(v, (int, float)) for v in b)
        for b in boxes
    ):
        raise ValueError(f"{where}: 'gt_boxes' must be a list of [x1, y1, x2, y2] boxes")
    points = row.get("gt_points", [[] for _ in boxes])
    if not isinstance(points, list) or len(points) != len(boxes):
        raise ValueError(f"{where}: 'gt_points' must hold one list of points per GT box")
    return {**row, "gt_points": points}


def score_rows(preset: str, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every term of ``preset`` and their sum, per row (rows as `_check_row` returns them)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; known: {sorted(PRESETS)}")
    names = PRESETS[preset]
    if any(n in NEEDS_SEGMENTER for n in names):
        raise ValueError(
            f"preset {preset!r} runs the segmenter ({', '.join(NEEDS_SEGMENTER)}), which needs "
            "images: score it inside training or evaluation instead"
        )
    if "points_in_mask" in names and not all("gt_masks" in r for r in rows):
        raise ValueError(f"preset {preset!r} scores points_in_mask: every row needs 'gt_masks'")
    columns = {k: [r.get(k) for r in rows] for k in COLUMNS if any(k in r for r in rows)}
    if "coord_frame" in columns:
        columns["coord_frame"] = [f or "norm1000" for f in columns["coord_frame"]]
    completions = [r["completion"] for r in rows]
    terms = {
        fn.__name__: fn([None] * len(rows), completions, **columns) for fn in build_rewards(names)
    }
    return [
        {
            "row": i,
            "terms": {k: v[i] for k, v in terms.items()},
            "total": sum(v[i] for v in terms.values()),
        }
        for i in range(len(rows))
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genseg_lib.rewards", description=__doc__)
    parser.add_argument("--preset", required=True, choices=sorted(PRESETS))
    parser.add_argument("--in", dest="inp", required=True, type=Path, help="completions.jsonl")
    parser.add_argument("--out", required=True, type=Path, help="scores.jsonl")
    args = parser.parse_args(argv)
    if not args.inp.is_file():
        parser.error(f"{args.inp} not found")
    rows = []
    for n, line in enumerate(args.inp.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{args.inp} line {n}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            parser.error(f"{where}: not JSON ({exc})")
        try:
            rows.append(_check_row(row, where))
        except ValueError as exc:
            parser.error(str(exc))
    try:
        scores = score_rows(args.preset, rows)
    except ValueError as exc:
        parser.error(str(exc))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(json.dumps(s) + "\n" for s in scores))
    print(f"{len(scores)} rows scored with {args.preset} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
