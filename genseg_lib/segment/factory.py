"""The segmenter by name, as recipes, profiles and command lines spell it."""

from __future__ import annotations

from genseg_lib.segment.base import PromptableSegmenter


def build_segmenter(
    spec: str, device: str = "auto", sam_image_size: int | None = None
) -> PromptableSegmenter:
    """``classical`` (GrabCut), ``sam2:ID_OR_CKPT`` (real weights) or ``sam2-random:ID``
    (random init: tests and the dry runs only)."""
    if spec == "classical":
        from genseg_lib.segment.classical import GrabCutSegmenter

        return GrabCutSegmenter()
    kind, _, model = spec.partition(":")
    if kind in ("sam2", "sam2-random") and model:
        from genseg_lib.segment.sam2_bridge import Sam2Bridge

        return Sam2Bridge.from_pretrained(
            model, random_init=kind == "sam2-random", device=device, image_size=sam_image_size
        )
    raise ValueError(f"unknown segmenter {spec!r}: use classical, sam2:ID or sam2-random:ID")
