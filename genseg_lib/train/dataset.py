"""Samples -> Hugging Face `datasets.Dataset` for TRL (prompt + image + GT columns).

The prompt and the reward columns are in the policy's coordinate frame (docs/method.md §2):
``coord_frame`` names it and ``frame_size`` is the ``(width, height)`` its coordinates refer
to (the original image for ``norm1000``; the processor's resized image for ``pixels``), so the
rewards read a completion exactly as evaluation does.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from typing import Any

import datasets

from genseg_lib.data.sample import Sample
from genseg_lib.masks import prompts_from_mask
from genseg_lib.models.prompt import build_messages
from genseg_lib.models.vlm import pixel_frame_size

FEATURES = datasets.Features(
    {
        "sample_id": datasets.Value("string"),
        "prompt": [{"role": datasets.Value("string"), "content": datasets.Value("string")}],
        "image": datasets.Image(),
        "query": datasets.Value("string"),
        "query_type": datasets.Value("string"),
        "width": datasets.Value("int32"),
        "height": datasets.Value("int32"),
        "coord_frame": datasets.Value("string"),
        "frame_size": [datasets.Value("int32")],
        "no_target": datasets.Value("bool"),
        # one entry per GT instance: COCO RLE, tight pixel box, two interior pixel points
        "gt_masks": [{"size": [datasets.Value("int32")], "counts": datasets.Value("string")}],
        "gt_boxes": [[datasets.Value("float32")]],
        "gt_points": [[[datasets.Value("float32")]]],
        "source": datasets.Value("string"),  # JSON, as provenance differs between datasets
    }
)


def sample_record(
    sample: Sample, coord_frame: str = "norm1000", image_processor: Any = None
) -> dict:
    """One dataset row; GT prompts are derived from the masks (docs/method.md §3). A
    ``pixels`` frame needs the policy's ``image_processor`` to know the resized size."""
    boxes, points = [], []
    for mask in sample.instance_masks():
        box, pts = prompts_from_mask(mask)
        boxes.append(list(box))
        points.append([list(p) for p in pts])
    if coord_frame == "pixels":
        if image_processor is None:
            raise ValueError("a pixels-frame dataset needs the policy's image processor")
        frame = pixel_frame_size(image_processor, sample.width, sample.height)
    else:
        frame = (sample.width, sample.height)
    return {
        "sample_id": sample.sample_id,
        "prompt": build_messages(sample.query, coord_frame),
        "image": sample.image_path if sample.image is None else sample.load_image(),
        "query": sample.query,
        "query_type": sample.query_type,
        "width": sample.width,
        "height": sample.height,
        "coord_frame": coord_frame,
        "frame_size": list(frame),
        "no_target": sample.no_target,
        "gt_masks": [{"size": list(r["size"]), "counts": r["counts"]} for r in sample.gt_masks],
        "gt_boxes": boxes,
        "gt_points": points,
        "source": json.dumps(sample.source),
    }


def to_hf_dataset(
    samples: Sequence[Sample], coord_frame: str = "norm1000", image_processor: Any = None
) -> datasets.Dataset:
    """A `datasets.Dataset` (images decoded lazily from paths) that TRL's GRPOTrainer reads:
    ``prompt`` is conversational, ``image`` is attached by TRL; GT columns reach rewards."""
    return datasets.Dataset.from_list(
        [sample_record(s, coord_frame, image_processor) for s in samples], features=FEATURES
    )


KINDS = ("no_target", "single_target", "multi_target")


def sample_kind(sample: Sample) -> str:
    """What a sample asks for, read from its ground truth (any dataset): no target, one, or
    several."""
    n = len(sample.gt_masks)
    return KINDS[min(n, 2)]


def oversample_kinds(
    samples: Sequence[Sample], shares: dict[str, float], seed: int
) -> list[Sample]:
    """Every sample of a kind not in ``shares``, plus samples of each kind in it drawn (seeded;
    with replacement when its pool is too small) so that the kind makes up its share of the
    result. GRPO learns a behaviour (abstaining, listing every target) only from groups of
    prompts that ask for it."""
    unknown = sorted(set(shares) - set(KINDS))
    if unknown:
        raise ValueError(f"oversampling shares {unknown}: not a sample kind {KINDS}")
    if any(not 0.0 <= v < 1.0 for v in shares.values()) or sum(shares.values()) >= 1.0:
        raise ValueError(f"oversampling shares must be in [0, 1) and sum below 1, got {shares}")
    kept = [s for s in samples if sample_kind(s) not in shares]
    if not kept:
        raise ValueError(f"oversampling {shares} keeps no sample of another kind")
    per_kept = 1.0 - sum(shares.values())
    rng = random.Random(seed)
    mixed = list(kept)
    for kind, share in sorted(shares.items()):
        pool = [s for s in samples if sample_kind(s) == kind]
        n = round(share / per_kept * len(kept))
        if n and not pool:
            raise ValueError(f"{kind} share {share} but the training set has no {kind} sample")
        mixed += rng.sample(pool, n) if n <= len(pool) else [rng.choice(pool) for _ in range(n)]
    rng.shuffle(mixed)
    return mixed
