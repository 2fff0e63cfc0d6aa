"""From prediction records to metrics: overall and per query type, answer validity, timing,
and the markdown table an evaluation writes (percentages)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from genseg_lib.evaluate.metrics import BoxAccumulator, SegmentationAccumulator


def _error_kind(error: str) -> str:
    first = error.split("; ")[0]
    if first.startswith("instance "):
        first = first.split(": ", 1)[-1]
    return first.split(":")[0][:80]


def summarize(records: Sequence[dict], meta: dict[str, Any]) -> dict[str, Any]:
    """Metrics overall and per query type, answer validity and timing from records."""
    scored = [r for r in records if "skipped" not in r]
    seg, box = SegmentationAccumulator(), BoxAccumulator()
    for r in scored:
        seg.add_counts(r["inter"], r["pred_area"], r["gt_area"], group=r["query_type"])
        box.add(r["pred_boxes"], r["gt_boxes"], group=r["query_type"])
    groups = {g: {**seg.result(g), **box.result(g)} for g in sorted(seg.groups())}
    n = len(scored)
    errors = Counter(_error_kind(r["error"]) for r in scored if r["error"])
    validity = {
        "format_ok": _frac(sum(r["format_ok"] for r in scored), n),
        "no_target_answers": _frac(sum(r["no_target_answer"] for r in scored), n),
        "empty_answers": _frac(sum(not r["instances"] for r in scored), n),
        "top_errors": errors.most_common(5),
    }
    for g in groups:
        rows = [r for r in scored if r["query_type"] == g]
        groups[g]["format_ok"] = _frac(sum(r["format_ok"] for r in rows), len(rows))
    return {
        **meta,
        "n_samples": n,
        "n_skipped": len(records) - n,
        "overall": {**seg.result(), **box.result(), "format_ok": validity["format_ok"]},
        "by_type": groups,
        "validity": validity,
        "time_generate_s_per_sample": _mean(r["time_generate_s"] for r in scored),
        "time_segment_s_per_sample": _mean(r["time_segment_s"] for r in scored),
    }


def _frac(k: float, n: int) -> float:
    return k / n if n else math.nan


def _mean(values: Iterable[float]) -> float:
    vals = list(values)
    return float(np.mean(vals)) if vals else math.nan


TABLE_COLUMNS = (
    ("n", "n"),
    ("gIoU", "gIoU"),
    ("cIoU", "cIoU"),
    ("target_mIoU", "target mIoU"),
    ("N_acc", "N-acc"),
    ("T_acc", "T-acc"),
    ("box_mIoU", "box mIoU"),
    ("box_Acc@0.5", "box Acc@0.5"),
    ("format_ok", "format ok"),
)


def _cell(key: str, value: Any) -> str:
    if key == "n":
        return str(value)
    return (
        "–"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{100 * value:.2f}"
    )


def results_markdown(summary: dict[str, Any]) -> str:
    """A markdown table (percentages) of overall and per-type metrics, with provenance."""
    head = ", ".join(
        f"{k}: `{summary[k]}`" for k in ("profile", "model", "segmenter", "dataset") if k in summary
    )
    lines = [
        f"Evaluation — {head}" if head else "Evaluation",
        "",
        "| group | " + " | ".join(label for _, label in TABLE_COLUMNS) + " |",
        "|---" * (len(TABLE_COLUMNS) + 1) + "|",
    ]
    rows = [("all", summary["overall"])] + list(summary["by_type"].items())
    for name, m in rows:
        lines.append(
            f"| {name} | " + " | ".join(_cell(k, m.get(k)) for k, _ in TABLE_COLUMNS) + " |"
        )
    errors = summary["validity"]["top_errors"]
    lines += ["", f"Skipped samples: {summary['n_skipped']}. Top answer errors: {errors}"]
    return "\n".join(lines) + "\n"
