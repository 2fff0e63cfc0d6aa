"""SAM-in-the-loop ablations: prompt types with oracle prompts, and how well geometric rewards
track the mask IoU that the segmenter finally delivers."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from genseg_lib.analysis.runs import target_shape
from genseg_lib.answer import format_answer
from genseg_lib.data import Sample
from genseg_lib.data.synthref import OFF_CENTRE_SHAPES, SHAPES
from genseg_lib.evaluate.metrics import SegmentationAccumulator
from genseg_lib.segment.base import PromptableSegmenter
from genseg_lib.segment.oracle import PROMPT_MODES, oracle_instances, oracle_prompts
from genseg_lib.train.dataset import sample_record
from genseg_lib.train.rewards import build_rewards, make_sam_mask_iou_reward

GEOMETRIC = ["box_iou", "box_l1", "points_in_mask"]
# the prompts a segmenter gets in the prompt-room table, by what the prompter knows
ROOM_PROMPTS = {
    "GT interior points + box": "box+2pt",
    "box-centre points + box": "box+centre",
    "box only": "box",
}


def prompt_ablation(
    samples: Sequence[Sample],
    segmenters: dict[str, PromptableSegmenter],
    modes: Sequence[str] = PROMPT_MODES,
) -> pd.DataFrame:
    """gIoU / cIoU (percent) of oracle prompts of each type through each segmenter, on the
    target samples (no-target samples have no prompt to give)."""
    targets = [s for s in samples if not s.no_target]
    rows = []
    for seg_name, seg in segmenters.items():
        for mode in modes:
            acc = SegmentationAccumulator()
            for s in targets:
                masks = seg.segment(
                    [s.load_image()], [oracle_prompts(s.instance_masks(), mode)], [s.sample_id]
                )[0]
                acc.add(np.logical_or.reduce(masks), s.gt_mask())
            m = acc.result()
            rows.append(
                {
                    "segmenter": seg_name,
                    "prompt": mode,
                    "n": m["n"],
                    "gIoU": 100 * m["gIoU"],
                    "cIoU": 100 * m["cIoU"],
                }
            )
    return pd.DataFrame(rows)


def jittered_answer(sample: Sample, sigma: float, rng: np.random.Generator) -> str:
    """The oracle answer with box corners and points moved by N(0, sigma x instance size)."""
    insts = []
    for inst in oracle_instances(sample.instance_masks()):
        x1, y1, x2, y2 = inst.box
        scale = sigma * np.array([x2 - x1, y2 - y1, x2 - x1, y2 - y1])
        box = np.add(inst.box, rng.normal(0, 1, 4) * scale)
        pts = [
            (x + rng.normal(0, sigma * (x2 - x1)), y + rng.normal(0, sigma * (y2 - y1)))
            for x, y in inst.points
        ]
        insts.append((box.tolist(), pts))
    return format_answer(insts, sample.image_size, think="jittered")


def reward_fidelity(
    samples: Sequence[Sample],
    segmenter: PromptableSegmenter,
    sigmas: Sequence[float] = (0.0, 0.05, 0.1, 0.2, 0.4),
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per jittered answer: the geometric rewards, their mean, and the final mask IoU through
    ``segmenter`` (= the SAM-in-the-loop reward). Returns (per-answer frame, summary by sigma
    with the Spearman correlation of each reward with the final IoU)."""
    rng = np.random.default_rng(seed)
    targets = [s for s in samples if not s.no_target]
    geo = build_rewards(GEOMETRIC)
    final = make_sam_mask_iou_reward(segmenter)
    rows = []
    for s in targets:
        rec = sample_record(s)
        cols = {
            k: [rec[k]]
            for k in ("width", "height", "gt_boxes", "gt_points", "gt_masks", "sample_id")
        }
        cols["image"] = [s.load_image()]
        for sigma in sigmas:
            c = [jittered_answer(s, sigma, rng)]
            row = {"sample_id": s.sample_id, "query_type": s.query_type, "sigma": sigma}
            for fn in geo:
                row[fn.__name__] = fn(prompts=[None], completions=c, **cols)[0]
            row["geometric_mean"] = float(np.mean([row[n] for n in GEOMETRIC]))
            row["final_mask_iou"] = final(prompts=[None], completions=c, **cols)[0]
            rows.append(row)
    per = pd.DataFrame(rows)
    summary = (
        per.groupby("sigma")[[*GEOMETRIC, "geometric_mean", "final_mask_iou"]].mean().reset_index()
    )
    corr = {
        n: spearmanr(per[n], per["final_mask_iou"]).statistic
        for n in [*GEOMETRIC, "geometric_mean"]
    }
    summary.attrs["spearman"] = corr
    return per, summary


def prompt_room(samples: Sequence[Sample], segmenter: PromptableSegmenter) -> pd.DataFrame:
    """Per shape family of the target (single-target SynthRef samples), mask gIoU (percent)
    through ``segmenter`` with (a) GT interior points + box, (b) the two box-centre points +
    box — what a prompter that knows boxes but not masks gives —, (c) the box alone; and the
    room (a) − (b) that learning where to put the points can win."""
    single = [s for s in samples if len(s.gt_masks) == 1 and s.source.get("target_shapes")]
    accs = {label: SegmentationAccumulator() for label in ROOM_PROMPTS}
    for s in single:
        image, masks, family = s.load_image(), s.instance_masks(), target_shape(s)
        for label, mode in ROOM_PROMPTS.items():
            pred = segmenter.segment([image], [oracle_prompts(masks, mode)], [s.sample_id])[0]
            accs[label].add(np.logical_or.reduce(pred), s.gt_mask(), group=family)
    found = set(accs["box only"].groups())
    rows = []
    for family in [*(f for f in SHAPES if f in found), None]:
        kind = "off-centre" if family in OFF_CENTRE_SHAPES else "centred" if family else "–"
        row: dict = {"shape": family or "all single-target", "box centre": kind}
        for label, acc in accs.items():
            m = acc.result(family) if family else acc.result()
            row["n"] = m["n"]
            row[label] = 100 * m["gIoU"]
        row["room (a) - (b)"] = row["GT interior points + box"] - row["box-centre points + box"]
        rows.append(row)
    return pd.DataFrame(rows)
