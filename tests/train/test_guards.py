"""The non-finite gradient guard: unit cases, then inside a real GRPO step."""

from types import SimpleNamespace

import pytest
import torch

from genseg_lib.train.guards import NonFiniteGradientError, StopOnNonFiniteGradients


def model_with_grads(*grads):
    model = torch.nn.Sequential(*(torch.nn.Linear(2, 1, bias=False) for _ in grads))
    for layer, g in zip(model, grads, strict=True):
        layer.weight.grad = None if g is None else torch.full_like(layer.weight, g)
    return model


def call(model, step=6):
    args, state = SimpleNamespace(output_dir="runs/x"), SimpleNamespace(global_step=step)
    StopOnNonFiniteGradients().on_pre_optimizer_step(args, state, None, model=model)


def test_finite_or_missing_gradients_pass():
    call(model_with_grads(0.5, None, -3.0))
    call(None)  # an event without a model


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_a_non_finite_gradient_stops_naming_the_step(bad):
    with pytest.raises(NonFiniteGradientError, match=r"at step 7; .* in runs/x"):
        call(model_with_grads(0.5, bad, None))
