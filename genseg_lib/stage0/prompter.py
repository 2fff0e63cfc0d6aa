"""The SynthRef prompter: a small Qwen3-VL (the real architecture, built from a config) with a
compact domain tokenizer, so the embedded default can learn on a laptop CPU.

The tokenizer is word level over exactly what the pipeline says and hears: the shared prompt,
SynthRef's referring expressions, the answer format (tags, JSON keys, single digits,
punctuation) and Qwen's chat and vision special tokens. A regex pre-tokenizer isolates those
pieces and a ``Fuse`` decoder joins them back, so any answer text round-trips exactly. It
saves and loads with ``save_pretrained`` / ``AutoProcessor`` like any checkpoint, and the
model loader, evaluation and training run it unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from genseg_lib.answer import COORD_FRAMES
from genseg_lib.data.synthref import (
    COLOUR_PROPERTIES,
    COLOURS,
    EXTREMES,
    RELATIONS,
    SHAPE_PROPERTIES,
    SHAPES,
    SIZES,
    SynthRefConfig,
    synthref_samples,
)
from genseg_lib.models.build import (
    NON_SPECIAL,
    QWEN_SPECIAL_TOKENS,
    Qwen3VLSizes,
    build_processor,
    new_qwen3vl,
    wrap_qwen_tokenizer,
)
from genseg_lib.models.prompt import system_prompt

UNK = "[UNK]"
# The Qwen-VL chat format with the user's words before the image (Qwen3-VL's own template puts
# the image first). Causal attention then lets every visual token read the query, which the
# stage-0 binding probe needs; on its own it did not speed up learning (docs/method.md §7).
TEXT_FIRST_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}"
    "{% for part in message['content'] %}"
    "{% if part['type'] == 'image' or 'image' in part %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# decoding length for SynthRef answers: one object takes 52-68 tokens, two objects 100-108
ANSWER_TOKENS = 160
PRETOKENIZE = r"</?think>|</?answer>| ?\"bbox_2d\"| ?\"points\"| ?[A-Za-z]+| ?\d| ?[^\sA-Za-z\d]|\s"


def _pieces(text: str) -> list[str]:
    return re.findall(PRETOKENIZE, text)


def domain_corpus(n_queries: int = 3000, seed: int = 0) -> Iterable[str]:
    """Texts whose pieces make the vocabulary: prompts, chat roles, SynthRef words and queries,
    and an answer sample covering every answer token."""
    yield system_prompt("norm1000")
    yield system_prompt("pixels")
    yield "system\nuser\nassistant\nQuery: "
    words = [
        *SHAPES,
        *(s + "s" for s in SHAPES),
        *COLOURS,
        *SIZES,
        *RELATIONS,
        *EXTREMES,
        "shape",
        "shapes",
    ]
    words += [
        "all",
        "the",
        "and",
        "object",
        "that",
        "is",
        "has",
        *COLOUR_PROPERTIES.values(),
        *SHAPE_PROPERTIES.values(),
    ]
    yield " ".join(words) + " " + " ".join(w.capitalize() for w in words)
    for s in synthref_samples("train", n_queries, seed=seed, cfg=SynthRefConfig(image_size=64)):
        yield s.query
    yield (
        '<think>x</think>\n<answer>[{"bbox_2d": [0, 1, 2, 3], "points": [[4, 5], [6, 7]]}, '
        '{"bbox_2d": [8, 9, 10, 11], "points": [[12, 13], [14, 15]]}]</answer><answer>[]</answer>'
    )


def build_domain_tokenizer(corpus: Iterable[str] | None = None) -> Any:
    """A `PreTrainedTokenizerFast`: word level over the domain pieces, Qwen's special tokens
    (chat, vision, ``<think>``), left padding, ``<|im_end|>`` as EOS, the Qwen-VL chat format
    with the query before the image (`TEXT_FIRST_CHAT_TEMPLATE`)."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

    pieces: dict[str, None] = {}
    for text in corpus if corpus is not None else domain_corpus():
        for piece in _pieces(text):
            pieces.setdefault(piece, None)
    for d in range(10):  # every digit, with and without a leading space
        pieces.setdefault(str(d), None)
        pieces.setdefault(f" {d}", None)
    vocab = {UNK: 0, **{p: i + 1 for i, p in enumerate(sorted(pieces))}}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(PRETOKENIZE), behavior="isolated")
    backend.decoder = decoders.Fuse()
    backend.add_tokens(
        [AddedToken(t, special=t not in NON_SPECIAL, normalized=False) for t in QWEN_SPECIAL_TOKENS]
    )
    # the fixed instruction is one token per coordinate frame: it is always the same text, and
    # 140 word tokens of it per sample would dominate the cost of every forward pass
    backend.add_tokens(
        [AddedToken(system_prompt(f), special=False, normalized=False) for f in COORD_FRAMES]
    )
    tok = wrap_qwen_tokenizer(backend, unk_token=UNK, model_max_length=4096)
    tok.chat_template = TEXT_FIRST_CHAT_TEMPLATE
    return tok


@dataclass
class PrompterSpec(Qwen3VLSizes):
    """Sizes of the SynthRef prompter (about 1.5 M parameters with the domain vocabulary);
    sizes that cannot build a model are refused here, by name."""

    hidden_size: int = 128
    intermediate_size: int = 256
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    head_dim: int = 32
    vision_hidden_size: int = 128
    vision_depth: int = 4
    vision_heads: int = 4
    mrope_section: list[int] = field(default_factory=lambda: [8, 4, 4])  # sums to head_dim / 2
    rope_theta: float = 10000.0
    max_position_embeddings: int = 2048
    deepstack_visual_indexes: list[int] | None = field(default_factory=lambda: [2, 3])
    # one visual token per 16-px patch (no 2x2 merge): 64 tokens for a 128-px scene, so that
    # objects 14-50 px wide each own several tokens instead of sharing one of 32 px
    spatial_merge_size: int = 1
    image_size: int = 128  # SynthRef side

    def __post_init__(self) -> None:
        problems = []
        if 2 * sum(self.mrope_section) != self.head_dim:
            problems.append(f"mrope_section {self.mrope_section} must sum to head_dim / 2")
        if self.image_size % (16 * self.spatial_merge_size):
            problems.append(
                f"image_size {self.image_size} must be a multiple of 16 (the patch) times "
                f"spatial_merge_size {self.spatial_merge_size}"
            )
        if self.num_attention_heads % self.num_key_value_heads:
            problems.append("num_attention_heads must be a multiple of num_key_value_heads")
        if (
            self.deepstack_visual_indexes
            and max(self.deepstack_visual_indexes) >= self.vision_depth
        ):
            problems.append(
                f"deepstack_visual_indexes {self.deepstack_visual_indexes} must index the "
                f"{self.vision_depth} vision layers"
            )
        if problems:
            raise ValueError("PrompterSpec: " + "; ".join(problems))


@torch.no_grad()
def match_vision_scale(model: Any, processor: Any, image_size: int) -> dict[str, float]:
    """Scale the vision mergers' last layers so visual tokens start at the text embeddings' scale.

    From a random init the mergers emit features about 100x larger than the token embeddings
    (std ~9 vs ~0.02-0.08); the language model's RMSNorm then divides the gradient that reaches
    the vision tower by that norm, and the prompter learns to ignore the image (measured: the
    same loss with shuffled images after 3,500 steps). Returns the factors applied.
    """
    visual = model.model.visual
    target = float(model.model.language_model.embed_tokens.weight.std())
    images = [
        s.load_image()
        for s in synthref_samples("val", 4, seed=0, cfg=SynthRefConfig(image_size=image_size))
    ]
    batch = processor.image_processor(images=images, return_tensors="pt")
    device = next(visual.parameters()).device
    out = visual(batch["pixel_values"].to(device), grid_thw=batch["image_grid_thw"].to(device))
    factors = {"merger": target / float(out.pooler_output.std())}
    for i, feature in enumerate(out.deepstack_features):
        factors[f"deepstack_{i}"] = target / float(feature.std())
    layers = [visual.merger, *visual.deepstack_merger_list]
    for layer, factor in zip(layers, factors.values(), strict=True):
        layer.linear_fc2.weight.mul_(factor)
        layer.linear_fc2.bias.mul_(factor)
    return factors


def build_synthref_prompter(
    path: str | Path | None = None, spec: PrompterSpec | None = None, seed: int = 0
):
    """A random-initialised SynthRef prompter ``(model, processor)``; saved to ``path`` if given."""
    spec = spec or PrompterSpec()
    tok = build_domain_tokenizer()
    model = new_qwen3vl(spec, tok, seed)
    side = spec.image_size * spec.image_size
    processor = build_processor(
        tok, min_pixels=side, max_pixels=side, merge_size=spec.spatial_merge_size
    )
    processor.chat_template = TEXT_FIRST_CHAT_TEMPLATE
    match_vision_scale(model, processor, spec.image_size)
    if path is not None:
        model.save_pretrained(path)
        processor.save_pretrained(path)
    return model, processor
