"""Prompts -> masks: the SAM 2 bridge, a classical segmenter, oracle prompts from GT masks."""

from genseg_lib.segment.base import (
    InstancePrompt,
    PromptableSegmenter,
    answer_masks,
    as_rgb_array,
)

__all__ = ["InstancePrompt", "PromptableSegmenter", "answer_masks", "as_rgb_array"]
