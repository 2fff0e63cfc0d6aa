"""Prompters for evaluation: anything that answers queries about images in the answer format
of docs/method.md §2 — a VLM with fixed decoding options, or the oracle (GT prompts)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any, Protocol

from PIL import Image

from genseg_lib.answer import PARSER_VERSION, format_answer
from genseg_lib.data import Sample
from genseg_lib.models.vlm import VLM, GenerationOptions
from genseg_lib.segment.oracle import oracle_instances


class Prompter(Protocol):
    """Answers queries about images; ``coord_frame`` says how to read the coordinates."""

    coord_frame: str

    def answer(
        self, samples: Sequence[Sample], images: Sequence[Image.Image]
    ) -> tuple[list[str], list[tuple[int, int] | None]]:
        """Raw answer texts and, per sample, the frame size of ``pixels`` coordinates."""
        ...

    def describe(self) -> dict[str, Any]:
        """Everything that changes the answers (part of an evaluation's identity)."""
        ...


class VLMPrompter:
    """A `VLM` with fixed generation options (greedy by default)."""

    def __init__(self, vlm: VLM, options: GenerationOptions | None = None):
        self.vlm = vlm
        self.options = options or GenerationOptions()
        self.coord_frame = vlm.coord_frame

    def answer(self, samples, images):
        return self.vlm.generate(images, [s.query for s in samples], self.options)

    def describe(self) -> dict[str, Any]:
        return {
            "type": "vlm",
            "coord_frame": self.coord_frame,
            "options": asdict(self.options),
            "pixels": self.vlm.pixel_bounds(),
            "weights": self.vlm.weights,
            "parser": PARSER_VERSION,
        }


class OraclePrompter:
    """The perfect prompter: GT tight boxes and interior points (docs/method.md §3) — an upper
    bound on what the segmenter can make of prompts."""

    coord_frame = "norm1000"

    def describe(self) -> dict[str, Any]:
        return {"type": "oracle", "parser": PARSER_VERSION}

    def answer(self, samples, images):
        texts = [
            format_answer(oracle_instances(s.instance_masks()), s.image_size, think="oracle")
            for s in samples
        ]
        return texts, [None] * len(samples)
