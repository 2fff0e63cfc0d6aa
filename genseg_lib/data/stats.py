"""Dataset statistics for exploration: counts, query types, instances, mask sizes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
from pycocotools import mask as mask_utils

from genseg_lib.data.sample import Sample


def instance_areas(samples: Sequence[Sample]) -> np.ndarray:
    """Area of every GT instance as a fraction of its image (RLE areas, no decoding)."""
    areas = [
        float(mask_utils.area({"size": r["size"], "counts": r["counts"].encode()}))
        / (s.width * s.height)
        for s in samples
        for r in s.gt_masks
    ]
    return np.asarray(areas, dtype=np.float64)


def dataset_summary(name: str, samples: Sequence[Sample]) -> dict[str, float | int | str]:
    """One row of the counts table."""
    n_inst = np.array([len(s.gt_masks) for s in samples])
    areas = instance_areas(samples)
    return {
        "dataset": name,
        "samples": len(samples),
        "images": len({s.image_path or s.source.get("scene_id") for s in samples}),
        "no-target %": 100 * float(np.mean(n_inst == 0)) if len(samples) else float("nan"),
        "multi-target %": 100 * float(np.mean(n_inst > 1)) if len(samples) else float("nan"),
        "instances / sample": float(n_inst.mean()) if len(samples) else float("nan"),
        "median mask area %": 100 * float(np.median(areas)) if areas.size else float("nan"),
    }


def query_type_counts(samples: Sequence[Sample]) -> dict[str, int]:
    """Samples per query type, most common first."""
    return dict(Counter(s.query_type for s in samples).most_common())
