"""Samples -> Hugging Face `datasets.Dataset` for TRL (prompt + image + GT columns)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import datasets

from genseg_lib.data.sample import Sample
from genseg_lib.masks import prompts_from_mask
from genseg_lib.prompt import build_messages

FEATURES = datasets.Features(
    {
        "sample_id": datasets.Value("string"),
        "prompt": [{"role": datasets.Value("string"), "content": datasets.Value("string")}],
        "image": datasets.Image(),
        "query": datasets.Value("string"),
        "query_type": datasets.Value("string"),
        "width": datasets.Value("int32"),
        "height": datasets.Value("int32"),
        "no_target": datasets.Value("bool"),
        # one entry per GT instance: COCO RLE, tight pixel box, two interior pixel points
        "gt_masks": [{"size": [datasets.Value("int32")], "counts": datasets.Value("string")}],
        "gt_boxes": [[datasets.Value("float32")]],
        "gt_points": [[[datasets.Value("float32")]]],
        "source": datasets.Value("string"),  # JSON, as provenance differs between datasets
    }
)


def sample_record(sample: Sample, coord_frame: str = "norm1000") -> dict:
    """One dataset row; GT prompts are derived from the masks as SPEC §3 says."""
    boxes, points = [], []
    for mask in sample.instance_masks():
        box, pts = prompts_from_mask(mask)
        boxes.append(list(box))
        points.append([list(p) for p in pts])
    return {
        "sample_id": sample.sample_id,
        "prompt": build_messages(sample.query, coord_frame),
        "image": sample.image_path if sample.image is None else sample.load_image(),
        "query": sample.query,
        "query_type": sample.query_type,
        "width": sample.width,
        "height": sample.height,
        "no_target": sample.no_target,
        "gt_masks": [{"size": list(r["size"]), "counts": r["counts"]} for r in sample.gt_masks],
        "gt_boxes": boxes,
        "gt_points": points,
        "source": json.dumps(sample.source),
    }


def to_hf_dataset(samples: Sequence[Sample], coord_frame: str = "norm1000") -> datasets.Dataset:
    """A `datasets.Dataset` (images decoded lazily from paths) that TRL's GRPOTrainer reads:
    ``prompt`` is conversational, ``image`` is attached by TRL; GT columns reach rewards."""
    return datasets.Dataset.from_list(
        [sample_record(s, coord_frame) for s in samples], features=FEATURES
    )
