"""Packed vision attention: the same tower outputs and gradients as SDPA per image, in one call."""

import pytest
import torch
import torch.nn.functional as F

from genseg_lib.stage0.packed_attention import packed_sdpa, packed_vision_attention
from genseg_lib.stage0.prompter import build_synthref_prompter


def _tower_outputs(model, pixels, grid):
    model.zero_grad(set_to_none=True)
    features = model.model.visual(pixels, grid_thw=grid).pooler_output
    (features * torch.linspace(-1, 1, features.numel()).view_as(features)).sum().backward()
    grads = {
        n: p.grad.clone() for n, p in model.model.visual.named_parameters() if p.grad is not None
    }
    return features.detach(), grads


@pytest.mark.parametrize("grid", [[[1, 8, 8]] * 3, [[1, 8, 8], [1, 4, 8], [1, 8, 8]]])
def test_packed_attention_matches_attention_per_image(grid, monkeypatch):
    torch.manual_seed(0)
    model, _ = build_synthref_prompter()
    grid = torch.tensor(grid)
    patch = model.config.vision_config.patch_size
    pixels = torch.randn(int(grid.prod(-1).sum()), 3 * 2 * patch * patch)
    expected, expected_grads = _tower_outputs(model, pixels, grid)
    calls = []
    sdpa = F.scaled_dot_product_attention
    monkeypatch.setattr(
        F, "scaled_dot_product_attention", lambda *a, **k: calls.append(1) or sdpa(*a, **k)
    )
    with packed_vision_attention(model):
        got, grads = _tower_outputs(model, pixels, grid)
    assert model.config.vision_config._attn_implementation == "sdpa"
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    assert grads.keys() == expected_grads.keys()
    for name, g in grads.items():
        torch.testing.assert_close(g, expected_grads[name], rtol=1e-4, atol=1e-6)
    layers = model.config.vision_config.depth
    # same-size images: one call per layer; mixed sizes: one per image and layer, as before
    assert len(calls) == (
        layers if len(set(map(tuple, grid.tolist()))) == 1 else layers * len(grid)
    )


def test_packed_attention_refuses_a_mask():
    q = torch.zeros(1, 2, 4, 8)
    with pytest.raises(ValueError, match="unmasked"):
        packed_sdpa(
            None,
            q,
            q,
            q,
            attention_mask=torch.ones(4, 4),
            cu_seq_lens_q=torch.tensor([0, 4]),
            max_length_q=4,
        )
