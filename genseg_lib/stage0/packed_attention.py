"""One attention call for a batch of same-size images in the prompter's vision tower.

Qwen3-VL's vision tower packs a batch's patches into one sequence. With SDPA or eager attention
it then splits that sequence and calls attention once per image (a Python loop: 64 calls per
layer for a 64-scene vision step, most of a small tower's step on a GPU); only flash-style
implementations receive the packed boundaries (``cu_seqlens``). SynthRef scenes all have one
size, so the packed sequence reshapes to a batch and one SDPA call gives the same result.
Registered under a name containing "flash" because that is what makes the tower pass the
boundaries; batches of mixed sizes fall back to one call per image, as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from transformers import AttentionInterface

PACKED_ATTENTION = "flash_packed_sdpa"


def packed_sdpa(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    scaling: float | None = None,
    dropout: float = 0.0,
    cu_seq_lens_q: torch.Tensor | None = None,
    max_length_q: int | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Bidirectional attention within each packed image; ``query`` etc. are ``(1, heads,
    tokens, dim)``, the result ``(1, tokens, heads, dim)`` as flash attention returns it."""
    if attention_mask is not None or cu_seq_lens_q is None or max_length_q is None:
        raise ValueError("packed_sdpa serves the vision tower's packed, unmasked attention only")
    _, heads, total, dim = query.shape
    images = cu_seq_lens_q.numel() - 1
    if max_length_q * images == total:  # every image has the longest length: one batch
        q, k, v = (
            t.view(heads, images, max_length_q, dim).transpose(0, 1) for t in (query, key, value)
        )
        out = F.scaled_dot_product_attention(q, k, v, scale=scaling, dropout_p=dropout)
        out = out.transpose(0, 1).reshape(heads, total, dim)
    else:
        lengths = (cu_seq_lens_q[1:] - cu_seq_lens_q[:-1]).tolist()
        out = torch.cat(
            [
                F.scaled_dot_product_attention(q, k, v, scale=scaling, dropout_p=dropout)
                for q, k, v in zip(
                    *(t.split(lengths, dim=2) for t in (query, key, value)), strict=True
                )
            ],
            dim=2,
        )[0]
    return out.transpose(0, 1).unsqueeze(0), None


AttentionInterface.register(PACKED_ATTENTION, packed_sdpa)


@contextmanager
def packed_vision_attention(model: Any) -> Iterator[None]:
    """Within the block, ``model``'s vision tower attends with `packed_sdpa`; the previous
    implementation is restored after (saved configs never name it: it is not serialised)."""
    vision_config = model.config.vision_config
    before = vision_config._attn_implementation
    model.set_attn_implementation({"vision_config": PACKED_ATTENTION})
    try:
        yield
    finally:
        model.set_attn_implementation({"vision_config": before})
