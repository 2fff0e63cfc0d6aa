"""GenSeg-R1: reason-then-segment referring segmentation (Qwen3-VL prompter + SAM 2 + GRPO)."""

__version__ = "0.1.0"
