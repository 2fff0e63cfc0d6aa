"""Training guards: stop a run before a non-finite gradient reaches the weights.

A NaN or inf gradient, once stepped, turns every weight NaN; the run then dies later with an
unrelated error (CUDA's "probability tensor contains either inf, nan or element < 0" while
sampling) and the next checkpoint holds NaN weights. Stopping before the optimizer step keeps
the weights and every saved checkpoint finite, so the run resumes from its last checkpoint.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import TrainerCallback


class NonFiniteGradientError(RuntimeError):
    """A training step produced a NaN or inf gradient."""


class StopOnNonFiniteGradients(TrainerCallback):
    """Raises `NonFiniteGradientError` before the optimizer step whose gradients hold a NaN or
    inf (after clipping, which spreads one NaN to every gradient), naming the step."""

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        model = kwargs.get("model")
        if model is None:
            return
        if not all_finite([p.grad for p in model.parameters() if p.grad is not None]):
            raise NonFiniteGradientError(
                f"non-finite gradient at step {state.global_step + 1}; the weights were not "
                f"updated. Resume from the last checkpoint in {args.output_dir}, or lower the "
                "learning rate."
            )


def all_finite(tensors: list[torch.Tensor]) -> bool:
    """Whether every value is finite, with one host sync per device rather than per tensor."""
    flags: dict[torch.device, list[torch.Tensor]] = {}
    for t in tensors:
        flags.setdefault(t.device, []).append(torch.isfinite(t).all())
    return all(bool(torch.stack(f).all()) for f in flags.values())
