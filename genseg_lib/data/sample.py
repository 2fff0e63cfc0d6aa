"""The unified sample every loader returns (docs/method.md §6)."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from genseg_lib.masks import RLE, rle_decode, union_masks


class DataError(ValueError):
    """Malformed or missing dataset input; the message names the file and record."""


# what PIL raises for an empty, truncated or undecodable image file
IMAGE_ERRORS = (OSError, SyntaxError, ValueError)


@dataclass
class Sample:
    """One referring query on one image.

    gt_masks: one COCO RLE per referred instance, at ``(height, width)``; empty for no-target.
    image_path / image: the image on disk, or in memory (RGB ``uint8 (H, W, 3)``) for
        generated data; exactly one is set.
    source: provenance (dataset, split and the original ids), JSON-serialisable.
    query_type: a label for per-type metrics (SynthRef types; dataset name elsewhere).
    """

    sample_id: str
    query: str
    gt_masks: list[RLE]
    no_target: bool
    width: int
    height: int
    source: dict[str, Any] = field(default_factory=dict)
    image_path: str | None = None
    image: np.ndarray | None = field(default=None, repr=False)
    query_type: str = "referring"

    def __post_init__(self) -> None:
        if (self.image_path is None) == (self.image is None):
            raise ValueError(f"sample {self.sample_id}: set exactly one of image_path and image")
        if self.no_target != (not self.gt_masks):
            raise ValueError(
                f"sample {self.sample_id}: no_target={self.no_target} but "
                f"{len(self.gt_masks)} ground-truth masks"
            )
        for i, rle in enumerate(self.gt_masks):
            if [int(v) for v in rle["size"]] != [self.height, self.width]:
                raise ValueError(
                    f"sample {self.sample_id}: mask {i} has size {rle['size']}, "
                    f"image is {self.height}x{self.width} (HxW)"
                )

    @property
    def image_size(self) -> tuple[int, int]:
        """``(width, height)``, the order `parse_answer` takes."""
        return self.width, self.height

    def load_image(self) -> Image.Image:
        """The image as an RGB PIL image; a missing file is a `FileNotFoundError` and an empty or
        undecodable one a `DataError`, each naming the sample and the file."""
        if self.image is not None:
            return Image.fromarray(self.image).convert("RGB")
        path = Path(self.image_path)
        if not path.is_file():
            raise FileNotFoundError(f"sample {self.sample_id}: image not found at {path}")
        try:
            with Image.open(path) as img:
                return img.convert("RGB")
        except IMAGE_ERRORS as exc:
            raise DataError(f"sample {self.sample_id}: cannot decode image {path}: {exc}") from exc

    def instance_masks(self) -> list[np.ndarray]:
        """Boolean ``(H, W)`` mask per GT instance."""
        return [rle_decode(r) for r in self.gt_masks]

    def gt_mask(self) -> np.ndarray:
        """Union of the GT instance masks; all False for a no-target sample."""
        return union_masks(self.instance_masks(), shape=(self.height, self.width))


def select_samples(samples: Sequence[Sample], limit: int | None, seed: int) -> list[Sample]:
    """All samples in order, or a seeded random subset of ``limit`` (same seed, same subset)."""
    if limit is None or limit >= len(samples):
        return list(samples)
    order = list(range(len(samples)))
    random.Random(seed).shuffle(order)
    return [samples[i] for i in sorted(order[:limit])]


def samples_fingerprint(samples: Sequence[Sample]) -> str:
    """A hash of what makes these samples the data they are — ids, queries, sizes, GT masks and
    each image (its file name, or the pixels of an in-memory one) — so that a run resumed on
    other data with coinciding sample ids is told apart. Where the data root lies, and whether
    a file is there right now, are left out: a moved copy is the same data, and a sample skipped
    for a missing image is retried when it is back."""
    digest = hashlib.sha256()
    for s in samples:
        if s.image is not None:
            image = hashlib.sha256(np.ascontiguousarray(s.image).tobytes()).hexdigest()
        else:
            image = Path(s.image_path).name
        record = [s.sample_id, s.query, s.no_target, s.width, s.height, s.gt_masks, image]
        digest.update(json.dumps(record, default=str).encode())
    return digest.hexdigest()[:16]
