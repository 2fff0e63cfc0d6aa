"""The prompter VLM: one loader for Qwen3-VL / Qwen2.5-VL checkpoints (hub id, folder or LoRA
run folder) and batched generation.

Generation sends exactly the messages of `genseg_lib.models.prompt.build_messages` with the
image placed before the user text (TRL's ``prepare_multimodal_messages``, as in GRPO training),
left pads the batch, and passes ``mm_token_type_ids`` (image tokens = 1) to ``generate``, which
Qwen3-VL's M-RoPE requires. The coordinate frame comes from the model family
(docs/method.md §2): Qwen3-VL answers in 0..1000, Qwen2/2.5-VL in pixels of the resized image.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from genseg_lib.device import inference_context, resolve_device
from genseg_lib.models.build import NON_SPECIAL, QWEN_SPECIAL_TOKENS
from genseg_lib.models.prompt import build_messages

LOG = logging.getLogger(__name__)


def coord_frame_for(model_type: str) -> str:
    """Qwen3-VL answers in the 0..1000 relative frame; Qwen2/2.5-VL in resized-image pixels."""
    return "pixels" if model_type in ("qwen2_vl", "qwen2_5_vl") else "norm1000"


def pixel_frame_size(image_processor: Any, width: int, height: int) -> tuple[int, int]:
    """``(width, height)`` of the resized image that a ``pixels``-frame model sees for an image
    of ``width`` x ``height`` (the processor's smart resize: multiples of patch x merge, within
    its pixel bounds) — the frame its coordinates are in."""
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    size = dict(image_processor.size)
    h, w = smart_resize(
        height,
        width,
        factor=image_processor.patch_size * image_processor.merge_size,
        min_pixels=size["shortest_edge"],
        max_pixels=size["longest_edge"],
    )
    return int(w), int(h)


# ------------------------------------------------------------------------------ the prompter


@dataclass
class GenerationOptions:
    """Decoding settings. Greedy for evaluation; sampling for GRPO rollouts and demos."""

    max_new_tokens: int = 256
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int | None = None
    suppress_special: bool = True  # never sample chat/vision control tokens mid-answer


def special_token_ids_to_suppress(tokenizer: Any) -> list[int]:
    """Special tokens a completion must not contain (all but EOS and ``<think>`` tags): an
    ``<|image_pad|>`` sampled mid-answer breaks the next forward pass."""
    keep = {tokenizer.eos_token_id}
    keep |= {tokenizer.convert_tokens_to_ids(t) for t in NON_SPECIAL}
    ids = set(tokenizer.all_special_ids)
    ids |= {tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS}
    ids.discard(tokenizer.unk_token_id)
    return sorted(i for i in ids - keep if i is not None and i >= 0)


class VLM:
    """A Qwen-VL prompter: images + queries -> raw answer texts."""

    def __init__(
        self,
        model: Any,
        processor: Any,
        coord_frame: str | None = None,
        source: str | Path | None = None,
    ):
        self.model = model
        self.processor = processor
        self.coord_frame = coord_frame or coord_frame_for(model.config.model_type)
        self.source = source  # the hub id or folder it was loaded from
        self.device = next(model.parameters()).device
        processor.tokenizer.padding_side = "left"

    @functools.cached_property
    def weights(self) -> str | None:
        """`weights_fingerprint` of the source, hashed on first use (evaluations record it; the
        demo and benchmarks never pay for it)."""
        return None if self.source is None else weights_fingerprint(self.source)

    def pixel_bounds(self) -> dict[str, int | None]:
        """The processor's bounds on image resolution (``min_pixels``/``max_pixels``): they
        change what the model sees, so evaluations record them."""
        size = getattr(self.processor.image_processor, "size", None) or {}
        return {"min_pixels": size.get("shortest_edge"), "max_pixels": size.get("longest_edge")}

    def messages(self, query: str, image: Image.Image) -> list[dict]:
        """The chat of one query with the image attached, as training sends it."""
        from trl.data_utils import prepare_multimodal_messages

        return prepare_multimodal_messages(build_messages(query, self.coord_frame), images=[image])

    def encode(
        self, images: Sequence[Image.Image], queries: Sequence[str]
    ) -> dict[str, torch.Tensor]:
        """Left-padded model inputs (with ``mm_token_type_ids``) for a batch."""
        texts = [
            self.processor.apply_chat_template(
                self.messages(q, img), tokenize=False, add_generation_prompt=True
            )
            for img, q in zip(images, queries, strict=True)
        ]
        batch = self.processor(text=texts, images=list(images), padding=True, return_tensors="pt")
        if "mm_token_type_ids" not in batch:
            raise RuntimeError("the processor did not return mm_token_type_ids (needed by M-RoPE)")
        return batch.to(self.device)

    def frame_size(self, inputs: dict[str, torch.Tensor], index: int) -> tuple[int, int] | None:
        """``(width, height)`` of the resized image a ``pixels``-frame model sees (None for the
        0..1000 frame, which is relative to the original image)."""
        if self.coord_frame != "pixels":
            return None
        patch = self.processor.image_processor.patch_size
        _, gh, gw = inputs["image_grid_thw"][index].tolist()
        return int(gw * patch), int(gh * patch)

    def generate(
        self,
        images: Sequence[Image.Image],
        queries: Sequence[str],
        options: GenerationOptions | None = None,
    ) -> tuple[list[str], list[tuple[int, int] | None]]:
        """Answer texts for one batch, and each sample's coordinate frame size."""
        options = options or GenerationOptions()
        inputs = self.encode(images, queries)
        tok = self.processor.tokenizer
        kwargs: dict[str, Any] = {
            "max_new_tokens": options.max_new_tokens,
            "do_sample": options.do_sample,
            "pad_token_id": tok.pad_token_id,
            "eos_token_id": tok.eos_token_id,
        }
        if options.do_sample:
            kwargs.update(temperature=options.temperature, top_p=options.top_p, top_k=options.top_k)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if options.suppress_special:
            kwargs["suppress_tokens"] = special_token_ids_to_suppress(tok)
        with inference_context(self.device):
            out = self.model.generate(**inputs, **kwargs)
        new = out[:, inputs["input_ids"].shape[1] :]
        texts = tok.batch_decode(new, skip_special_tokens=True)
        return texts, [self.frame_size(inputs, i) for i in range(len(texts))]


DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``auto`` is bf16 on CUDA and fp32 on CPU; else ``bf16`` / ``fp16`` / ``fp32``."""
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; expected auto or one of {sorted(DTYPES)}")
    return DTYPES[dtype]


def load_model_and_processor(
    model: str | Path,
    dtype: torch.dtype = torch.float32,
    attn_implementation: str | None = None,
    max_pixels: int | None = None,
    min_pixels: int | None = None,
) -> tuple[Any, Any]:
    """The one loader, for evaluation and training alike: a Qwen-VL checkpoint (hub id or
    folder; a LoRA run folder is merged onto its base) and its processor, left padding, with
    ``max_pixels``/``min_pixels`` bounding the resolution fed to the vision tower."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    kwargs: dict[str, Any] = {"dtype": dtype}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    if (Path(model) / "adapter_config.json").is_file():
        net = _load_merged_adapter(Path(model), kwargs)
    else:
        net = AutoModelForImageTextToText.from_pretrained(str(model), **kwargs)
    processor = AutoProcessor.from_pretrained(str(model))
    processor.tokenizer.padding_side = "left"
    size = dict(processor.image_processor.size)
    if max_pixels:
        size["longest_edge"] = max_pixels
    if min_pixels:
        size["shortest_edge"] = min_pixels
    processor.image_processor.size = size
    return net, processor


def vision_tower_parameters(model: Any) -> list[torch.nn.Parameter]:
    """The vision tower's own parameters (patch and position embeddings, blocks, merger) of a
    Qwen-VL model, without Qwen3-VL's deepstack mergers, which feed the language model's early
    layers: the set that the warm start's ``--vision-lr-scale`` and GRPO's
    ``freeze_vision_tower`` hold still."""
    visual = model.model.visual
    deepstack = getattr(visual, "deepstack_merger_list", None)
    skip = {id(p) for p in deepstack.parameters()} if deepstack is not None else set()
    return [p for p in visual.parameters() if id(p) not in skip]


def load_vlm(
    model: str | Path,
    device: str = "auto",
    dtype: str = "auto",
    attn_implementation: str | None = None,
    max_pixels: int | None = None,
    min_pixels: int | None = None,
    coord_frame: str | None = None,
) -> VLM:
    """A `VLM` on ``device`` (``dtype="auto"``: bf16 on CUDA, fp32 on CPU), in eval mode."""
    dev = resolve_device(device)
    net, processor = load_model_and_processor(
        model, resolve_dtype(dtype, dev), attn_implementation, max_pixels, min_pixels
    )
    return VLM(net.to(dev).eval(), processor, coord_frame, model)


# a checkpoint folder's weights: full or sharded, safetensors or torch, or a LoRA adapter
WEIGHT_FILES = (
    "model*.safetensors",
    "pytorch_model*.bin",
    "adapter_model.*",
    "adapter_config.json",
)


def weights_fingerprint(model: str | Path) -> str | None:
    """SHA-256 over a local checkpoint folder's weight files (names and bytes): an evaluation
    records it, so a folder retrained under the same name is never taken for the old model.
    None for a hub id, whose name is its identity (hashing 16 GB takes about 10 s)."""
    folder = Path(model)
    if not folder.is_dir():
        return None
    files = sorted({p for pattern in WEIGHT_FILES for p in folder.glob(pattern) if p.is_file()})
    if not files:
        raise FileNotFoundError(f"{folder} holds no weight files ({', '.join(WEIGHT_FILES)})")
    digest = hashlib.sha256()
    for path in files:
        with path.open("rb") as fh:
            digest.update(path.name.encode() + hashlib.file_digest(fh, "sha256").digest())
    return digest.hexdigest()


def _load_merged_adapter(adapter: Path, kwargs: dict[str, Any]) -> Any:
    """Base model + LoRA adapter folder, merged into plain weights."""
    from peft import PeftConfig, PeftModel
    from transformers import AutoModelForImageTextToText

    base_id = PeftConfig.from_pretrained(str(adapter)).base_model_name_or_path
    base = AutoModelForImageTextToText.from_pretrained(base_id, **kwargs)
    return PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()


def merge_lora(adapter: str | Path, out: str | Path) -> Path:
    """Save a LoRA run folder as a plain (merged) checkpoint with its processor."""
    from transformers import AutoProcessor

    out = Path(out)
    _load_merged_adapter(Path(adapter), {"dtype": torch.float32}).save_pretrained(out)
    AutoProcessor.from_pretrained(str(adapter)).save_pretrained(out)
    return out
