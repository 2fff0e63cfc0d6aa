"""Resumable evaluation: samples -> prompter -> parse -> segmenter -> metrics.

Writes ``OUT/predictions.jsonl`` (one record per sample: raw text, parsed prompts, counts,
IoU, timing), then ``OUT/summary.json`` and ``OUT/results.md``. Rerunning the same run skips
finished samples, and a record cut short by a kill is dropped and redone, so an interrupted
run loses nothing and repeats nothing; ``OUT/run.json`` keeps a different run out.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from genseg_lib.answer import Answer, parse_answer
from genseg_lib.data import Sample, samples_fingerprint, select_samples
from genseg_lib.evaluate.metrics import mask_counts, sample_iou
from genseg_lib.evaluate.prompters import Prompter
from genseg_lib.evaluate.records import (
    PREDICTIONS,
    append_records,
    check_same_run,
    read_predictions,
    write_atomic,
)
from genseg_lib.evaluate.summary import results_markdown, summarize
from genseg_lib.masks import box_from_mask, union_masks
from genseg_lib.runinfo import run_lock
from genseg_lib.segment.base import InstancePrompt, PromptableSegmenter, segmenter_identity

LOG = logging.getLogger(__name__)


@dataclass
class EvalConfig:
    """Run settings. ``limit`` takes the first N samples after a shuffle seeded by ``seed``."""

    batch_size: int = 8
    limit: int | None = None
    seed: int = 0
    skip_missing: bool = False


def _instances_json(answer: Answer) -> list[dict]:
    return [{"box": list(i.box), "points": [list(p) for p in i.points]} for i in answer.instances]


def _score(sample: Sample, answer: Answer, pred_mask: np.ndarray) -> dict[str, Any]:
    gt_masks = sample.instance_masks()
    gt = union_masks(gt_masks, shape=(sample.height, sample.width))
    inter, pred_area, gt_area = mask_counts(pred_mask, gt)
    return {
        "inter": inter,
        "pred_area": pred_area,
        "gt_area": gt_area,
        "iou": sample_iou(inter, pred_area, gt_area),
        "pred_boxes": [list(i.box) for i in answer.instances],
        "gt_boxes": [list(box_from_mask(m)) for m in gt_masks],
    }


def run_identity(
    samples: Sequence[Sample],
    prompter: Prompter,
    segmenter: PromptableSegmenter,
    cfg: EvalConfig,
    meta: dict[str, Any],
) -> dict[str, Any]:
    """What makes two evaluations the same run: the names in ``meta`` (model, dataset), the
    evaluated samples' content, the sample subset, the prompter's decoding, resolution and
    parser settings, and the segmenter with its settings."""
    return {
        "meta": {k: v for k, v in meta.items() if k not in ("profile", "config", "arm")},
        "limit": cfg.limit,
        "data": samples_fingerprint(samples),
        "prompter": prompter.describe(),
        "segmenter_settings": segmenter_identity(segmenter),
    }


def evaluate(
    samples: Sequence[Sample],
    prompter: Prompter,
    segmenter: PromptableSegmenter,
    out_dir: str | Path,
    cfg: EvalConfig | None = None,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run (or resume) an evaluation into ``out_dir``; returns the summary.

    ``meta`` names the run (``model``, ``segmenter``, ``dataset``, ``profile``) and its
    ``arm`` — what the run stands for in the reports (``baseline``, ``oracle``, a recipe name,
    ``control``)."""
    cfg = cfg or EvalConfig()
    meta = dict(meta or {})
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with run_lock(out):
        return _evaluate(samples, prompter, segmenter, out, cfg, meta)


def _evaluate(
    samples: Sequence[Sample],
    prompter: Prompter,
    segmenter: PromptableSegmenter,
    out: Path,
    cfg: EvalConfig,
    meta: dict[str, Any],
) -> dict[str, Any]:
    pred_path = out / PREDICTIONS
    chosen = select_samples(samples, cfg.limit, cfg.seed)
    identity = run_identity(chosen, prompter, segmenter, cfg, meta)
    check_same_run(out, meta.get("arm"), cfg.seed, identity)
    done = read_predictions(pred_path)
    # a sample skipped for a missing image is tried again: the file may be back
    pending = [s for s in chosen if "skipped" in done.get(s.sample_id, {"skipped": True})]
    if done:
        LOG.info("resuming: %d of %d samples already done", len(chosen) - len(pending), len(chosen))
    bar = tqdm(total=len(pending), desc=f"evaluate {out.name}", unit="sample")
    for start in range(0, len(pending), cfg.batch_size):
        batch = pending[start : start + cfg.batch_size]
        records, ready, images = [], [], []
        for s in batch:
            try:
                images.append(s.load_image())
                ready.append(s)
            except FileNotFoundError as exc:
                if not cfg.skip_missing:
                    raise
                records.append({"sample_id": s.sample_id, "skipped": str(exc)})
        if ready:
            t0 = time.perf_counter()
            texts, frames = prompter.answer(ready, images)
            t_gen = (time.perf_counter() - t0) / len(ready)
            answers = [
                parse_answer(t, s.image_size, prompter.coord_frame, frame_size=f)
                for s, t, f in zip(ready, texts, frames, strict=True)
            ]
            t0 = time.perf_counter()
            prompts = [[InstancePrompt.from_instance(i) for i in a.instances] for a in answers]
            masks = segmenter.segment(images, prompts, keys=[s.sample_id for s in ready])
            t_seg = (time.perf_counter() - t0) / len(ready)
            for s, text, frame, answer, inst_masks in zip(
                ready, texts, frames, answers, masks, strict=True
            ):
                pred = union_masks(inst_masks, shape=(s.height, s.width))
                records.append(
                    {
                        "sample_id": s.sample_id,
                        "query": s.query,
                        "query_type": s.query_type,
                        "no_target_gt": s.no_target,
                        "text": text,
                        "coord_frame": prompter.coord_frame,
                        "frame_size": None if frame is None else list(frame),
                        "format_ok": answer.format_ok,
                        "no_target_answer": answer.no_target,
                        "error": answer.error,
                        "instances": _instances_json(answer),
                        **_score(s, answer, pred),
                        "time_generate_s": t_gen,
                        "time_segment_s": t_seg,
                    }
                )
        append_records(pred_path, records)
        bar.update(len(batch))
    bar.close()
    records = read_predictions(pred_path)
    wanted = {s.sample_id for s in chosen}
    summary = summarize([records[k] for k in records if k in wanted], meta)
    write_atomic(out / "summary.json", json.dumps(summary, indent=2))
    write_atomic(out / "results.md", results_markdown(summary))
    return summary
