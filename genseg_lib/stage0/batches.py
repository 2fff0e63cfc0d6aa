"""Training batches built ahead, in step order, by worker processes: SynthRef rendering and the
processor cost more than a step of the small prompter on a GPU, so on a GPU machine stage 0
runs with ``workers`` > 0; on a laptop CPU the default 0 builds them in the training process."""

from __future__ import annotations

import torch


def _one_thread(_: int) -> None:
    torch.set_num_threads(1)


def step_loader(dataset: torch.utils.data.Dataset, workers: int) -> torch.utils.data.DataLoader:
    """Item ``i`` of ``dataset`` (the batch of one step) in order, built by ``workers``
    processes with one thread each."""
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=None,
        shuffle=False,
        num_workers=workers,
        worker_init_fn=_one_thread if workers else None,
        prefetch_factor=4 if workers else None,
    )
