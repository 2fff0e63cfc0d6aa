"""Resumable evaluation: samples -> prompter -> parse -> segmenter -> metrics.

Writes ``OUT/predictions.jsonl`` (one record per sample: raw text, parsed prompts, counts,
IoU, timing), then ``OUT/summary.json`` and ``OUT/results.md``. Records are appended and
fsynced batch by batch; rerunning the same command skips finished samples, and a record cut
short by a kill is dropped and redone, so an interrupted run loses nothing and repeats nothing.

    python -m genseg_lib.evaluate --model ID_OR_PATH|oracle --segmenter sam2:ID|classical \
        --dataset NAME:SPLIT --root DIR --out DIR [--limit N --seed S --batch-size B]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from genseg_lib.answer import Answer, format_answer, parse_answer
from genseg_lib.data import Sample, load_dataset
from genseg_lib.masks import box_from_mask, union_masks
from genseg_lib.metrics import BoxAccumulator, SegmentationAccumulator, mask_counts, sample_iou
from genseg_lib.segment.base import InstancePrompt, PromptableSegmenter
from genseg_lib.segment.oracle import oracle_instances

LOG = logging.getLogger(__name__)
PREDICTIONS = "predictions.jsonl"


class Prompter(Protocol):
    """Anything that answers queries about images in the SPEC §2 format."""

    coord_frame: str

    def answer(
        self, samples: Sequence[Sample], images: Sequence[Image.Image]
    ) -> tuple[list[str], list[tuple[int, int] | None]]:
        """Raw answer texts and, per sample, the frame size of ``pixels`` coordinates."""
        ...


class VLMPrompter:
    """A `genseg_lib.vlm.VLM` with fixed generation options (greedy by default)."""

    def __init__(self, vlm: Any, options: Any = None):
        from genseg_lib.vlm import GenerationOptions

        self.vlm = vlm
        self.options = options or GenerationOptions()
        self.coord_frame = vlm.coord_frame

    def answer(self, samples, images):
        return self.vlm.generate(images, [s.query for s in samples], self.options)

    def describe(self) -> dict[str, Any]:
        return {"type": "vlm", "coord_frame": self.coord_frame, "options": asdict(self.options)}


class OraclePrompter:
    """The perfect prompter: GT tight boxes and interior points (SPEC §3) — an upper bound
    on what the segmenter can make of prompts."""

    coord_frame = "norm1000"

    def describe(self) -> dict[str, Any]:
        return {"type": "oracle"}

    def answer(self, samples, images):
        texts = [
            format_answer(oracle_instances(s.instance_masks()), s.image_size, think="oracle")
            for s in samples
        ]
        return texts, [None] * len(samples)


@dataclass
class EvalConfig:
    """Run settings. ``limit`` takes the first N samples after a shuffle seeded by ``seed``."""

    batch_size: int = 8
    limit: int | None = None
    seed: int = 0
    skip_missing: bool = False


def select_samples(samples: Sequence[Sample], limit: int | None, seed: int) -> list[Sample]:
    """All samples in order, or a seeded random subset of ``limit`` (same seed, same subset)."""
    if limit is None or limit >= len(samples):
        return list(samples)
    order = list(range(len(samples)))
    random.Random(seed).shuffle(order)
    return [samples[i] for i in sorted(order[:limit])]


def read_predictions(path: Path) -> dict[str, dict]:
    """Finished records by sample id. A torn last line (a kill mid-write) is cut off the file."""
    if not path.exists():
        return {}
    records: dict[str, dict] = {}
    good_bytes = 0
    with path.open("rb") as fh:
        for raw in fh:
            try:
                rec = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                break
            if not raw.endswith(b"\n"):
                break
            records[rec["sample_id"]] = rec
            good_bytes += len(raw)
    if good_bytes != path.stat().st_size:
        LOG.warning(
            "%s: dropping a partial record at byte %d (interrupted write)", path, good_bytes
        )
        with path.open("r+b") as fh:
            fh.truncate(good_bytes)
    return records


def _append(path: Path, records: Iterable[dict]) -> None:
    with path.open("a", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _check_same_run(out: Path, prompter: Prompter, cfg: EvalConfig, meta: dict[str, Any]) -> None:
    """Resuming is only sound for the same run: same model, data, subset and decoding."""
    describe = getattr(prompter, "describe", None)
    fingerprint = json.loads(
        json.dumps(
            {
                "meta": {k: v for k, v in meta.items() if k not in ("profile", "config")},
                "limit": cfg.limit,
                "seed": cfg.seed,
                "prompter": describe() if describe else type(prompter).__name__,
            }
        )
    )
    path = out / "run.json"
    if path.exists():
        before = json.loads(path.read_text())
        if before != fingerprint:
            diff = sorted(k for k in fingerprint if before.get(k) != fingerprint[k])
            raise ValueError(
                f"{out} holds a different run (differs in {diff}); resume it with the same "
                "settings or write to another --out"
            )
    else:
        _write_atomic(path, json.dumps(fingerprint, indent=2))


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


def evaluate(
    samples: Sequence[Sample],
    prompter: Prompter,
    segmenter: PromptableSegmenter,
    out_dir: str | Path,
    cfg: EvalConfig | None = None,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run (or resume) an evaluation into ``out_dir``; returns the summary."""
    cfg = cfg or EvalConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pred_path = out / PREDICTIONS
    _check_same_run(out, prompter, cfg, meta or {})
    chosen = select_samples(samples, cfg.limit, cfg.seed)
    done = read_predictions(pred_path)
    pending = [s for s in chosen if s.sample_id not in done]
    if done:
        LOG.info("resuming: %d of %d samples already done", len(chosen) - len(pending), len(chosen))
    bar = tqdm(total=len(pending), desc="evaluate", unit="sample")
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
            for s, text, answer, inst_masks in zip(ready, texts, answers, masks, strict=True):
                pred = union_masks(inst_masks, shape=(s.height, s.width))
                records.append(
                    {
                        "sample_id": s.sample_id,
                        "query": s.query,
                        "query_type": s.query_type,
                        "no_target_gt": s.no_target,
                        "text": text,
                        "format_ok": answer.format_ok,
                        "no_target_answer": answer.no_target,
                        "error": answer.error,
                        "instances": _instances_json(answer),
                        **_score(s, answer, pred),
                        "time_generate_s": t_gen,
                        "time_segment_s": t_seg,
                    }
                )
        _append(pred_path, records)
        bar.update(len(batch))
    bar.close()
    records = read_predictions(pred_path)
    wanted = {s.sample_id for s in chosen}
    summary = summarize([records[k] for k in records if k in wanted], meta or {})
    _write_atomic(out / "summary.json", json.dumps(summary, indent=2))
    _write_atomic(out / "results.md", results_markdown(summary))
    return summary


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


# ------------------------------------------------------------------------------ CLI


def build_segmenter(
    spec: str, device: str = "auto", sam_image_size: int | None = None
) -> PromptableSegmenter:
    """``classical`` (GrabCut), ``sam2:ID_OR_CKPT`` (real weights) or ``sam2-random:ID``
    (random init: tests and the smoke profile only)."""
    if spec == "classical":
        from genseg_lib.segment.classical import GrabCutSegmenter

        return GrabCutSegmenter()
    kind, _, model = spec.partition(":")
    if kind in ("sam2", "sam2-random") and model:
        from genseg_lib.segment.sam2_bridge import Sam2Bridge

        return Sam2Bridge.from_pretrained(
            model, random_init=kind == "sam2-random", device=device, image_size=sam_image_size
        )
    raise ValueError(f"unknown segmenter {spec!r}: use classical, sam2:ID or sam2-random:ID")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        prog="python -m genseg_lib.evaluate", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--model", required=True, help="hub id or folder of a Qwen-VL model, or 'oracle'"
    )
    parser.add_argument(
        "--segmenter", default="classical", help="classical | sam2:ID | sam2-random:ID"
    )
    parser.add_argument("--dataset", required=True, help="NAME:SPLIT, e.g. refcocog:val")
    parser.add_argument("--root", required=True, type=Path, help="data root (SPEC §6 layout)")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument(
        "--skip-missing",
        action="store_true",
        help="skip (and count) samples whose image is missing",
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--max-pixels", type=int)
    parser.add_argument("--coord-frame", choices=["norm1000", "pixels"])
    parser.add_argument("--sam-image-size", type=int, help="reduced SAM input size (tests only)")
    parser.add_argument("--profile", default="paper", help="label written into the summary")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    name, _, split = args.dataset.partition(":")
    samples = load_dataset(name, args.root, split or "val")
    if args.model == "oracle":
        prompter: Prompter = OraclePrompter()
    else:
        from genseg_lib.vlm import GenerationOptions, load_vlm

        vlm = load_vlm(
            args.model, device=args.device, max_pixels=args.max_pixels, coord_frame=args.coord_frame
        )
        prompter = VLMPrompter(vlm, GenerationOptions(max_new_tokens=args.max_new_tokens))
    segmenter = build_segmenter(args.segmenter, args.device, args.sam_image_size)
    cfg = EvalConfig(
        batch_size=args.batch_size, limit=args.limit, seed=args.seed, skip_missing=args.skip_missing
    )
    meta = {
        "profile": args.profile,
        "model": args.model,
        "segmenter": args.segmenter,
        "dataset": f"{name}:{split or 'val'}",
        "config": asdict(cfg),
    }
    summary = evaluate(samples, prompter, segmenter, args.out, cfg, meta)
    print(results_markdown(summary))
    return summary


if __name__ == "__main__":
    main()
