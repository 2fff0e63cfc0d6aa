"""Reading finished runs back: evaluation runs by what their ``run.json`` says they are, the
records of a query-type subset, and each run's answers for galleries."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from genseg_lib.answer import parse_answer
from genseg_lib.evaluate import PREDICTIONS, read_predictions, summarize
from genseg_lib.masks import point_in_mask
from genseg_lib.runinfo import read_run_info
from genseg_lib.segment.base import answer_masks


def collect_runs(runs_dir: str | Path) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Evaluation summaries under ``runs_dir`` by ``(arm, dataset)``, one per seed; the arm
    (``baseline``, ``oracle``, a recipe name, ``control``) comes from each ``run.json``."""
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for path in sorted(Path(runs_dir).glob("*/summary.json")):
        info = read_run_info(path.parent)
        if not info or info.get("kind") != "evaluation" or not info.get("arm"):
            continue
        summary = json.loads(path.read_text())
        runs.setdefault((info["arm"], summary["dataset"]), []).append(summary)
    return runs


def subset_summary(run_dir: Path, query_types: Sequence[str] | None = None) -> dict[str, Any]:
    """`summarize` over the records of an evaluation run whose query type is in ``query_types``."""
    records = list(read_predictions(Path(run_dir) / PREDICTIONS).values())
    if query_types is not None:
        records = [r for r in records if r.get("query_type") in query_types]
    meta = json.loads((Path(run_dir) / "summary.json").read_text())
    keep = {k: meta[k] for k in ("profile", "model", "segmenter", "dataset") if k in meta}
    return summarize(records, keep)


def answers_from_runs(
    samples: Sequence[Any], run_dirs: dict[str, Path], segmenter: Any
) -> tuple[dict, dict]:
    """Each run's parsed answer (read in the frame it was written in) and union mask for
    ``samples`` (from its predictions.jsonl), for galleries of answers before and after."""
    answers, masks = {}, {}
    images = [s.load_image() for s in samples]
    for name, run_dir in run_dirs.items():
        records = read_predictions(Path(run_dir) / PREDICTIONS)
        answers[name] = []
        for s in samples:
            rec = records[s.sample_id]
            frame_size = tuple(rec["frame_size"]) if rec.get("frame_size") else None
            answers[name].append(
                parse_answer(
                    rec["text"],
                    s.image_size,
                    rec.get("coord_frame", "norm1000"),
                    frame_size=frame_size,
                )
            )
        masks[name] = answer_masks(segmenter, images, [a.instances for a in answers[name]])
    return answers, masks


def points_inside_by_group(
    run_dir: Path,
    samples: Sequence[Any],
    group: Callable[[Any], str],
    query_types: Sequence[str] | None = None,
) -> dict[str, float]:
    """Per ``group(sample)`` label, the share of the predicted points that fall inside the GT
    union mask, over the target samples of an evaluation run (of ``query_types``); NaN for a
    group whose answers predicted no point."""
    records = read_predictions(Path(run_dir) / PREDICTIONS)
    inside: dict[str, int] = {}
    total: dict[str, int] = {}
    for s in samples:
        rec = records.get(s.sample_id)
        if rec is None or s.no_target or (query_types and s.query_type not in query_types):
            continue
        label = group(s)
        gt = s.gt_mask()
        points = [point for inst in rec["instances"] for point in inst["points"]]
        inside[label] = inside.get(label, 0) + sum(point_in_mask(p, gt) for p in points)
        total[label] = total.get(label, 0) + len(points)
    return {k: inside[k] / total[k] if total[k] else float("nan") for k in sorted(total)}


def points_inside_rate(
    run_dir: Path, samples: Sequence[Any], query_types: Sequence[str] | None = None
) -> float:
    """Share of the predicted points that fall inside the GT union mask, over the target
    samples of an evaluation run (of ``query_types``); NaN when no point was predicted."""
    rates = points_inside_by_group(run_dir, samples, lambda s: "all", query_types)
    return rates.get("all", float("nan"))


def no_target_answers_by_group(
    run_dir: Path, samples: Sequence[Any], group: Callable[[Any], str]
) -> dict[str, float]:
    """Per ``group(sample)`` label, the share of an evaluation run's answers that say "no
    target" explicitly (``[]``; an unreadable answer does not, though T-acc counts it as empty):
    where abstention is learnt from the words of a query rather than the image, it shows here."""
    records = read_predictions(Path(run_dir) / PREDICTIONS)
    none: dict[str, int] = {}
    total: dict[str, int] = {}
    for s in samples:
        rec = records.get(s.sample_id)
        if rec is None:
            continue
        label = group(s)
        none[label] = none.get(label, 0) + bool(rec["no_target_answer"])
        total[label] = total.get(label, 0) + 1
    return {k: none[k] / total[k] for k in sorted(total)}


def query_opening(sample: Any) -> str:
    """The query's first word and whether it has a target, e.g. ``"all ... (no target)"``:
    SynthRef's plural queries open with "all", its singular ones with "the"."""
    words = sample.query.split()
    return f"{words[0] if words else ''} ... ({'no target' if sample.no_target else 'target'})"


def target_shape(sample: Any) -> str:
    """A single-target SynthRef sample's target shape family (its ``source`` records it)."""
    shapes = sample.source.get("target_shapes") or []
    if len(shapes) != 1:
        raise ValueError(f"sample {sample.sample_id}: {len(shapes)} target shapes, expected one")
    return shapes[0]
