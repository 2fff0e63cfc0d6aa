"""Where a GRPO step's time goes: a step timer and a recorder of TRL's own profiled sections
(generation, each reward, the log-prob forward), for the benchmarks."""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence

from transformers import TrainerCallback


class StepTimer(TrainerCallback):
    """Wall time of every optimizer step (on CUDA, synchronised at both ends)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._start = 0.0

    @staticmethod
    def _sync() -> None:
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()

    def on_step_begin(self, args, state, control, **kwargs):
        self._sync()
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self._sync()
        self.times.append(time.perf_counter() - self._start)


@contextlib.contextmanager
def trl_sections() -> Iterator[dict[str, list[float]]]:
    """Durations of TRL's profiled sections by name (``GRPOTrainer._generate``, each reward
    function's name, ``..._get_per_token_logps_and_entropies``), recorded while inside."""
    from trl.extras import profiling

    sections: dict[str, list[float]] = defaultdict(list)
    original = profiling.ProfilingContext._log_metrics

    def record(self, duration):
        sections[self.name].append(duration)
        original(self, duration)

    profiling.ProfilingContext._log_metrics = record
    try:
        yield sections
    finally:
        profiling.ProfilingContext._log_metrics = original


def step_split(
    sections: dict[str, list[float]], steps: Sequence[float], reward_names: Sequence[str]
) -> list[tuple[str, float]]:
    """Mean seconds per step of generation, each reward, the log-prob forward and the rest
    (backward, optimizer, data), over the last ``len(steps)`` steps."""
    n = len(steps)
    per_step = {k: sum(v[-n:]) / n for k, v in sections.items()}
    total = sum(steps) / n
    rows = [("generation", sum(v for k, v in per_step.items() if "generate" in k))]
    rows += [
        (f"reward {k.split('.')[-1]}", v)
        for k, v in per_step.items()
        if k.split(".")[-1] in reward_names
    ]
    rows.append(
        ("log-prob forward", sum(v for k, v in per_step.items() if "get_per_token_logps" in k))
    )
    rows.append(("backward + optimizer + rest", total - sum(v for _, v in rows)))
    return rows
