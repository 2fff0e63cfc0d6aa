"""SAM 2 as a batched, cached promptable segmenter (the frozen segmenter of GenSeg-R1).

One image embedding per unique image (LRU cache keyed by sample id or pixel hash), and all
prompts of an image decoded in one batched mask-decoder call (chunked to bound memory). The
arithmetic is `SAM2ImagePredictor`'s own: the bridge calls its ``set_image`` to embed and its
prompt transform + ``_predict`` to decode, so masks equal per-prompt ``predict`` calls.
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genseg_lib.device import inference_context, resolve_device
from genseg_lib.segment.base import (
    ImageInput,
    InstancePrompt,
    as_rgb_array,
    image_key,
)

LOG = logging.getLogger(__name__)
MULTIMASK_POLICIES = ("single", "best")


@dataclass
class Sam2Config:
    """How to build and run SAM 2.

    model: a Hugging Face id from sam2's table (``facebook/sam2.1-hiera-large``, ...) or a
        local ``.pt`` checkpoint.
    config: sam2 config name (``configs/sam2.1/sam2.1_hiera_l.yaml``); inferred for table ids
        and for checkpoints named like the official files.
    random_init: build from the config without weights (tests and the smoke profile only;
        never a fallback).
    multimask: ``single`` = one mask per prompt (``multimask_output=False``, with SAM 2's
        stability fallback); ``best`` = three candidates, keep the highest predicted IoU.
    image_size: override the model input resolution (a reduced model for fast tests).
    max_prompts_per_call: decoder batch size; None = 2 on CPU, 64 on CUDA. SAM's decoder
        repeats the image embedding per prompt, so on CPU large batches only add memory
        traffic (measured per-prompt decode, hiera-tiny 1024 px, 2 cores: 0.046 s at 2,
        0.088 s at 16, 0.164 s at 32); on a GPU batching is what makes it fast.
    """

    model: str = "facebook/sam2.1-hiera-large"
    config: str | None = None
    random_init: bool = False
    device: str = "auto"
    multimask: str = "single"
    cache_size: int = 32
    max_prompts_per_call: int | None = None
    mask_threshold: float = 0.0
    image_size: int | None = None


def _model_table() -> dict[str, tuple[str, str]]:
    from sam2.build_sam import HF_MODEL_ID_TO_FILENAMES

    return HF_MODEL_ID_TO_FILENAMES


def resolve_model(cfg: Sam2Config) -> tuple[str, str | None]:
    """``(config name, checkpoint path or None)`` for a config; downloads only real hub ids."""
    table = _model_table()
    if cfg.model in table:
        config, ckpt_name = table[cfg.model]
        if cfg.random_init:
            return cfg.config or config, None
        from huggingface_hub import hf_hub_download

        return cfg.config or config, hf_hub_download(repo_id=cfg.model, filename=ckpt_name)
    path = Path(cfg.model)
    if not path.is_file():
        raise FileNotFoundError(
            f"SAM 2 model {cfg.model!r} is neither a known id ({sorted(table)}) "
            "nor a checkpoint file"
        )
    config = cfg.config or next((c for c, ck in table.values() if ck == path.name), None)
    if config is None:
        raise ValueError(f"cannot infer the sam2 config of {path}; pass config=...")
    return config, None if cfg.random_init else str(path)


def _build_sam2(config: str, ckpt: str | None, device: str, image_size: int | None) -> Any:
    """``build_sam2`` with the input size overridden when given (a reduced model)."""
    from sam2.build_sam import build_sam2

    overrides = [f"++model.image_size={image_size}"] if image_size else []
    return build_sam2(config, ckpt, device=device, hydra_overrides_extra=overrides)


def save_random_sam2(
    model: str, folder: str | Path, image_size: int | None = None, seed: int = 0
) -> Path:
    """A random-initialised SAM 2 of a table id (e.g. ``facebook/sam2.1-hiera-tiny``) saved
    as the official checkpoint file name in ``folder`` (``{"model": state_dict}``), so that
    ``Sam2Bridge.from_pretrained(path)`` loads it as it loads downloaded weights (strictly).
    A stand-in for dry runs: its masks mean nothing."""
    config, ckpt_name = _model_table()[model]
    path = Path(folder) / ckpt_name
    torch.manual_seed(seed)
    sam = _build_sam2(config, None, "cpu", image_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": sam.state_dict()}, path)
    return path


class Sam2Bridge:
    """Batched, cached SAM 2 implementing `PromptableSegmenter`."""

    def __init__(self, model: Any, cfg: Sam2Config | None = None):
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        self.cfg = cfg or Sam2Config()
        if self.cfg.multimask not in MULTIMASK_POLICIES:
            raise ValueError(f"multimask must be one of {MULTIMASK_POLICIES}")
        self.device = next(model.parameters()).device
        self.predictor = SAM2ImagePredictor(model, mask_threshold=self.cfg.mask_threshold)
        # the predictor hard-codes the 1024-input feature sizes; derive them from the model
        s = model.image_size
        self.predictor._bb_feat_sizes = [(s // 4, s // 4), (s // 8, s // 8), (s // 16, s // 16)]
        self._cache: OrderedDict[Hashable, tuple[dict, tuple[int, int]]] = OrderedDict()
        self.stats: Counter[str] = Counter()

    @classmethod
    def from_pretrained(
        cls, model: str = "facebook/sam2.1-hiera-large", **kwargs: Any
    ) -> Sam2Bridge:
        """Build from a hub id or local checkpoint (strict load); kwargs are `Sam2Config` fields."""
        cfg = Sam2Config(model=model, **kwargs)
        config, ckpt = resolve_model(cfg)
        if cfg.random_init:
            LOG.warning("SAM 2 %s built with RANDOM weights (random_init=True)", config)
        sam = _build_sam2(config, ckpt, str(resolve_device(cfg.device)), cfg.image_size)
        return cls(sam, cfg)

    def describe(self) -> dict[str, Any]:
        """Kind and the settings that change masks (not the cache size or device): part of an
        evaluation's identity."""
        keep = ("model", "config", "random_init", "multimask", "mask_threshold", "image_size")
        return {"type": "sam2", **{k: getattr(self.cfg, k) for k in keep}}

    # ------------------------------------------------------------------ embedding cache
    def _embed(self, image: np.ndarray, key: Hashable) -> tuple[dict, tuple[int, int]]:
        if key in self._cache:
            self._cache.move_to_end(key)
            self.stats["cache_hits"] += 1
            return self._cache[key]
        with inference_context(self.device):
            self.predictor.set_image(image)
        entry = (self.predictor._features, tuple(self.predictor._orig_hw[0]))
        self.stats["embeddings"] += 1
        self._cache[key] = entry
        while len(self._cache) > self.cfg.cache_size:
            self._cache.popitem(last=False)
        return entry

    def clear_cache(self) -> None:
        self._cache.clear()

    # ------------------------------------------------------------------ decoding
    def _decode(
        self, features: dict, orig_hw: tuple[int, int], prompts: list[InstancePrompt]
    ) -> np.ndarray:
        """Boolean ``(B, H, W)`` masks for prompts sharing one image and one prompt shape."""
        p = self.predictor
        p._features, p._orig_hw, p._is_image_set, p._is_batch = features, [orig_hw], True, False
        first = prompts[0]
        coords = labels = boxes = None
        if first.points:
            coords = np.array([q.points for q in prompts], dtype=np.float32)
            labels = np.array([q.labels for q in prompts], dtype=np.int32)
        if first.box is not None:
            boxes = np.array([q.box for q in prompts], dtype=np.float32)
        multimask = self.cfg.multimask == "best"
        with inference_context(self.device):
            _, coords_t, labels_t, boxes_t = p._prep_prompts(coords, labels, boxes, None, True)
            masks, scores, _ = p._predict(
                coords_t, labels_t, boxes_t, None, multimask_output=multimask
            )
        self.stats["decoder_calls"] += 1
        if multimask:
            best = scores.float().argmax(dim=1)
            masks = masks[torch.arange(len(prompts), device=masks.device), best]
        else:
            masks = masks[:, 0]
        return masks.bool().cpu().numpy()

    def segment(
        self,
        images: Sequence[ImageInput],
        prompts: Sequence[Sequence[InstancePrompt]],
        keys: Sequence[Hashable | None] | None = None,
    ) -> list[list[np.ndarray]]:
        """One boolean ``(H, W)`` mask per prompt, per image entry (see `PromptableSegmenter`).

        Prompts are clipped to the image; a degenerate box (zero width or height) gives an
        empty mask. Entries that share a key (or pixels) share one embedding, and all their
        prompts of the same shape (box or not, number of points) go through one decoder call.
        """
        if len(images) != len(prompts):
            raise ValueError(f"{len(images)} images but {len(prompts)} prompt lists")
        keys = list(keys) if keys is not None else [None] * len(images)
        out: list[list[np.ndarray | None]] = [[None] * len(ps) for ps in prompts]
        groups: dict[Hashable, list[int]] = {}
        arrays: dict[int, np.ndarray] = {}
        for i, (image, key) in enumerate(zip(images, keys, strict=True)):
            if not prompts[i]:
                continue
            arrays[i] = as_rgb_array(image)
            groups.setdefault(image_key(arrays[i], key), []).append(i)
        for key, entries in groups.items():
            h, w = arrays[entries[0]].shape[:2]
            features, orig_hw = self._embed(arrays[entries[0]], key)
            by_shape: dict[tuple[bool, int], list[tuple[int, int, InstancePrompt]]] = {}
            for i in entries:
                if arrays[i].shape[:2] != (h, w):
                    raise ValueError(f"key {key!r} names images of different sizes")
                for j, prompt in enumerate(prompts[i]):
                    q = prompt.clipped(w, h)
                    if q.degenerate:
                        out[i][j] = np.zeros((h, w), dtype=bool)
                    else:
                        by_shape.setdefault((q.box is not None, len(q.points)), []).append(
                            (i, j, q)
                        )
            for items in by_shape.values():
                step = self.cfg.max_prompts_per_call or (64 if self.device.type == "cuda" else 2)
                for start in range(0, len(items), step):
                    chunk = items[start : start + step]
                    masks = self._decode(features, orig_hw, [q for _, _, q in chunk])
                    for (i, j, _), mask in zip(chunk, masks, strict=True):
                        out[i][j] = mask
        return out  # type: ignore[return-value]
