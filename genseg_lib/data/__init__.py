"""Samples in one shape: loaders for RefCOCOg, gRefCOCO, ReasonSeg and SynthRef
(docs/method.md §6)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from genseg_lib.data.reasonseg import load_reasonseg
from genseg_lib.data.refer import load_grefcoco, load_refcocog
from genseg_lib.data.sample import DataError, Sample, samples_fingerprint, select_samples
from genseg_lib.data.synthref import load_synthref

LOADERS: dict[str, Callable[[Path | str, str], list[Sample]]] = {
    "refcocog": load_refcocog,
    "grefcoco": load_grefcoco,
    "reasonseg": load_reasonseg,
    "synthref": load_synthref,
}

SPLITS: dict[str, tuple[str, ...]] = {
    "refcocog": ("train", "val", "test"),
    "grefcoco": ("train", "val", "testA", "testB"),
    "reasonseg": ("train", "val", "test"),
    "synthref": ("train", "val", "test"),
}


def load_dataset(name: str, root: Path | str, split: str) -> list[Sample]:
    """All samples of ``name``'s ``split`` under the data root ``root`` (docs/method.md §6)."""
    if name not in LOADERS:
        raise DataError(f"unknown dataset {name!r}; expected one of {sorted(LOADERS)}")
    return LOADERS[name](root, split)


__all__ = [
    "DataError",
    "LOADERS",
    "SPLITS",
    "Sample",
    "load_dataset",
    "samples_fingerprint",
    "select_samples",
]
