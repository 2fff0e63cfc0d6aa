"""The promptable-segmenter interface: images + per-instance prompts -> boolean masks.

Coordinates are image pixels (see `genseg_lib.masks`): boxes ``(x1, y1, x2, y2)``, points
``(x, y)``, for the original image size. Masks come back as boolean ``(H, W)`` arrays at the
original resolution, one per prompt, in prompt order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from PIL import Image

from genseg_lib.answer import Instance
from genseg_lib.masks import union_masks

ImageInput = np.ndarray | Image.Image


@dataclass(frozen=True)
class InstancePrompt:
    """One instance's prompt: an optional pixel box and points with labels (1 = positive,
    0 = negative). Points default to positive; the answer format gives two positive points."""

    box: tuple[float, float, float, float] | None
    points: tuple[tuple[float, float], ...] = ()
    labels: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.labels is None:
            object.__setattr__(self, "labels", (1,) * len(self.points))
        if len(self.labels) != len(self.points):
            raise ValueError(f"{len(self.points)} points but {len(self.labels)} labels")
        if self.box is None and not self.points:
            raise ValueError("a prompt needs a box or at least one point")

    @classmethod
    def from_instance(cls, inst: Instance) -> InstancePrompt:
        """Prompt of a parsed answer instance: its box and its (positive) points."""
        return cls(box=tuple(inst.box), points=tuple(tuple(p) for p in inst.points))

    def clipped(self, width: int, height: int) -> InstancePrompt:
        """The prompt with box and points clipped to the image ``[0, W] x [0, H]``."""
        box = None
        if self.box is not None:
            x1, y1, x2, y2 = self.box
            xs = sorted((min(max(x1, 0.0), width), min(max(x2, 0.0), width)))
            ys = sorted((min(max(y1, 0.0), height), min(max(y2, 0.0), height)))
            box = (xs[0], ys[0], xs[1], ys[1])
        pts = tuple((min(max(x, 0.0), width), min(max(y, 0.0), height)) for x, y in self.points)
        return InstancePrompt(box=box, points=pts, labels=self.labels)

    @property
    def degenerate(self) -> bool:
        """A box of zero width or height: it encloses nothing, so its mask is empty."""
        return self.box is not None and (self.box[2] <= self.box[0] or self.box[3] <= self.box[1])


class PromptableSegmenter(Protocol):
    """What evaluation and the SAM reward need from a segmenter."""

    def segment(
        self,
        images: Sequence[ImageInput],
        prompts: Sequence[Sequence[InstancePrompt]],
        keys: Sequence[Hashable | None] | None = None,
    ) -> list[list[np.ndarray]]:
        """For each image (entries may repeat the same image), one boolean ``(H, W)`` mask per
        prompt. ``keys`` name images for caching (a sample id); None means hash the pixels."""
        ...


def segmenter_identity(segmenter: PromptableSegmenter) -> dict[str, Any]:
    """What makes this segmenter's masks what they are (its ``describe()``: kind and settings);
    a segmenter without one is named by its class."""
    describe = getattr(segmenter, "describe", None)
    return describe() if describe is not None else {"type": type(segmenter).__qualname__}


def as_rgb_array(image: ImageInput) -> np.ndarray:
    """RGB ``uint8 (H, W, 3)`` array of a PIL image or array (grey or RGBA converted)."""
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 (H, W, 3) image, got {arr.dtype} {arr.shape}")
    return np.ascontiguousarray(arr[..., :3])


def image_hw(image: ImageInput) -> tuple[int, int]:
    """``(H, W)`` of a PIL image or array, without converting it."""
    if isinstance(image, Image.Image):
        return image.height, image.width
    shape = np.shape(image)
    return int(shape[0]), int(shape[1])


def image_key(image: np.ndarray, key: Hashable | None = None) -> Hashable:
    """Cache key: the given key, else a content hash of the pixels and shape."""
    if key is not None:
        return key
    digest = hashlib.blake2b(image.tobytes(), digest_size=16)
    digest.update(str(image.shape).encode())
    return digest.hexdigest()


def answer_masks(
    segmenter: PromptableSegmenter,
    images: Sequence[ImageInput],
    instances: Sequence[Sequence[Instance]],
    keys: Sequence[Hashable | None] | None = None,
) -> list[np.ndarray]:
    """Union mask per answer (all False for an answer with no instance), one batched call."""
    prompts = [[InstancePrompt.from_instance(i) for i in insts] for insts in instances]
    per_prompt = segmenter.segment(images, prompts, keys)
    out = []
    for image, masks in zip(images, per_prompt, strict=True):
        out.append(union_masks(masks, shape=image_hw(image)))
    return out
