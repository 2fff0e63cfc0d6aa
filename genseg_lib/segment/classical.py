"""A classical promptable segmenter (OpenCV GrabCut) for the embedded default.

It gives real masks without SAM 2 weights. The box marks probable foreground (outside it is
background) and negative points sure background. Positive points, as SAM's points do,
*select* what they lie on: the box is split into the connected parts GrabCut finds and the
connected parts of the rest, and only parts that hold a positive point are kept. A point on the
background or on a neighbour thus gives a wrong, non-empty mask (the patch of background under
it), as SAM would, instead of being outvoted by the box or giving nothing (docs/method.md §7).
Without a box, positive points seed disks of sure foreground inside a probable-foreground
radius. GrabCut runs on a crop around the box (the box grown by ``context`` of its size) so
cost does not grow with the image. Deterministic (OpenCV seeds its GMM k-means itself).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from genseg_lib.segment.base import ImageInput, InstancePrompt, as_rgb_array


@dataclass
class GrabCutConfig:
    """GrabCut settings (our choice, tuned on SynthRef with oracle prompts)."""

    iterations: int = 4
    point_radius: int = 2  # sure-foreground disk radius around a positive point, pixels
    context: float = 0.5  # crop = box grown by this fraction of its size on each side
    min_context: int = 8  # ... and by at least this many pixels
    points_only_radius: float = 0.15  # no box: probable foreground within this x image side
    points_select: bool = True  # keep only the connected parts that hold a positive point
    # ... and a point on the background selects the background part under it (as SAM does);
    # False: such a point selects nothing (an empty mask)
    background_select: bool = True


class GrabCutSegmenter:
    """`PromptableSegmenter` on OpenCV GrabCut; CPU only, no weights."""

    def __init__(self, cfg: GrabCutConfig | None = None):
        self.cfg = cfg or GrabCutConfig()

    def describe(self) -> dict[str, Any]:
        """Kind and settings: part of an evaluation's identity."""
        return {"type": "grabcut", **asdict(self.cfg)}

    def segment(
        self,
        images: Sequence[ImageInput],
        prompts: Sequence[Sequence[InstancePrompt]],
        keys: Sequence[Hashable | None] | None = None,
    ) -> list[list[np.ndarray]]:
        """One boolean ``(H, W)`` mask per prompt (``keys`` unused: nothing to cache)."""
        if len(images) != len(prompts):
            raise ValueError(f"{len(images)} images but {len(prompts)} prompt lists")
        out = []
        for image, plist in zip(images, prompts, strict=True):
            arr = as_rgb_array(image) if plist else None
            out.append([self.segment_one(arr, p) for p in plist])
        return out

    def _crop(self, prompt: InstancePrompt, w: int, h: int) -> tuple[int, int, int, int]:
        if prompt.box is not None:
            x1, y1, x2, y2 = prompt.box
        else:
            r = self.cfg.points_only_radius * max(w, h)
            xs, ys = [p[0] for p in prompt.points], [p[1] for p in prompt.points]
            x1, y1, x2, y2 = min(xs) - r, min(ys) - r, max(xs) + r, max(ys) + r
        gx = max(self.cfg.min_context, self.cfg.context * (x2 - x1))
        gy = max(self.cfg.min_context, self.cfg.context * (y2 - y1))
        return (
            max(0, int(np.floor(x1 - gx))),
            max(0, int(np.floor(y1 - gy))),
            min(w, int(np.ceil(x2 + gx))),
            min(h, int(np.ceil(y2 + gy))),
        )

    def segment_one(self, image: np.ndarray, prompt: InstancePrompt) -> np.ndarray:
        """Mask of one prompt on an RGB ``uint8 (H, W, 3)`` image (pixel coordinates).

        A degenerate box gives an empty mask; a box that leaves no background in the image
        gives the box itself (GrabCut needs both colour models).
        """
        h, w = image.shape[:2]
        prompt = prompt.clipped(w, h)
        full = np.zeros((h, w), dtype=bool)
        if prompt.degenerate:
            return full
        cx1, cy1, cx2, cy2 = self._crop(prompt, w, h)
        crop = np.ascontiguousarray(image[cy1:cy2, cx1:cx2, ::-1])  # OpenCV wants BGR
        gc = np.full(crop.shape[:2], cv2.GC_BGD, dtype=np.uint8)
        inside = np.zeros(crop.shape[:2], dtype=bool)
        if prompt.box is not None:
            x1, y1, x2, y2 = prompt.box
            bx1, by1 = int(np.floor(x1)) - cx1, int(np.floor(y1)) - cy1
            bx2, by2 = int(np.ceil(x2)) - cx1, int(np.ceil(y2)) - cy1
            inside[by1:by2, bx1:bx2] = True
        else:
            r = self.cfg.points_only_radius * max(w, h)
            yy, xx = np.mgrid[cy1:cy2, cx1:cx2]
            for (px, py), lab in zip(prompt.points, prompt.labels, strict=True):
                if lab == 1:
                    inside |= np.hypot(xx + 0.5 - px, yy + 0.5 - py) <= r
            gc[:] = cv2.GC_PR_BGD
        gc[inside] = cv2.GC_PR_FGD
        for (px, py), lab in zip(prompt.points, prompt.labels, strict=True):
            if lab == 1 and prompt.box is not None and self.cfg.points_select:
                continue  # with a box, positive points select (below) rather than seed
            col = min(int(px), w - 1) - cx1
            row = min(int(py), h - 1) - cy1
            value = int(cv2.GC_FGD if lab == 1 else cv2.GC_BGD)
            cv2.circle(gc, (col, row), self.cfg.point_radius, value, -1)
        has_bg = np.isin(gc, (cv2.GC_BGD, cv2.GC_PR_BGD)).any()
        has_fg = np.isin(gc, (cv2.GC_FGD, cv2.GC_PR_FGD)).any()
        if not has_bg or not has_fg:
            result = inside
        else:
            bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
            cv2.setRNGSeed(0)
            cv2.grabCut(crop, gc, None, bgd, fgd, self.cfg.iterations, cv2.GC_INIT_WITH_MASK)
            result = np.isin(gc, (cv2.GC_FGD, cv2.GC_PR_FGD))
            if prompt.box is not None:
                result &= inside
        if self.cfg.points_select:
            result = self._select_by_points(
                result, inside, prompt, cx1, cy1, self.cfg.background_select
            )
        full[cy1:cy2, cx1:cx2] = result
        return full

    @staticmethod
    def _select_by_points(
        result: np.ndarray,
        inside: np.ndarray,
        prompt: InstancePrompt,
        cx1: int,
        cy1: int,
        background_select: bool = True,
    ) -> np.ndarray:
        """The connected parts (8-neighbourhood) that hold a positive point: parts of
        ``result``, or parts of the box's remainder ``inside & ~result`` for a point on the
        background (with ``background_select``); nothing for points outside the box (or the
        crop). ``result`` unchanged without positive points."""
        positive = [p for p, lab in zip(prompt.points, prompt.labels, strict=True) if lab == 1]
        if not positive:
            return result
        h, w = result.shape
        seeds = [(int(py) - cy1, int(px) - cx1) for px, py in positive]
        seeds = [(r, c) for r, c in seeds if 0 <= r < h and 0 <= c < w]
        keep = np.zeros_like(result)
        regions = (result, inside & ~result) if background_select else (result,)
        for region in regions:
            _, labels = cv2.connectedComponents(region.astype(np.uint8), connectivity=8)
            hit = {int(labels[r, c]) for r, c in seeds if region[r, c]}
            if hit:
                keep |= np.isin(labels, sorted(hit))
        return keep
