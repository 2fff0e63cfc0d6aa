"""benchmarks/paper_scale.py: the released Qwen3-VL sizes it builds, and a tiny CPU run that
accounts for the whole step and projects epoch times from it."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from genseg_lib.models.build import QWEN3VL_PUBLISHED_SIZES, qwen3vl_config, qwen_tokenizer

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("size,billions", [("2b", 2.128), ("4b", 4.438), ("8b", 8.767)])
def test_published_sizes_have_the_released_parameter_counts(size, billions):
    """Built on the meta device (no memory): the counts of the released checkpoints."""
    from transformers import Qwen3VLForConditionalGeneration

    cfg = qwen3vl_config(QWEN3VL_PUBLISHED_SIZES[size], qwen_tokenizer(), vocab_size=151936)
    with torch.device("meta"):
        model = Qwen3VLForConditionalGeneration(cfg)
    assert sum(p.numel() for p in model.parameters()) / 1e9 == pytest.approx(billions, abs=1e-3)


def test_tiny_run_prints_the_split_and_projections():
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "paper_scale.py"),
            *("--size", "tiny", "--segmenter", "classical", "--steps", "2"),
            *("--prompts", "2", "--generations", "2", "--max-completion-length", "8"),
            *("--image-size", "128", "--eval-queries", "4", "--device", "cpu"),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    out = proc.stdout
    rows = dict(re.findall(r"^  (\S[^\n]*?)\s+([\d.]+) s\s", out, flags=re.M))
    for name in ["generation", "reward sam_mask_iou", "log-prob forward", "step"]:
        assert name in rows, out
    step = float(rows.pop("step"))
    assert sum(float(v) for v in rows.values()) == pytest.approx(step, abs=0.01)
    epoch_h = float(re.search(r"RefCOCOg umd train epoch .*: ([\d.]+) h", out).group(1))
    assert epoch_h == pytest.approx(80512 / 2 * step / 3600, rel=0.01)
    assert "peak GPU memory (training): n/a (CPU)" in out
    assert re.search(r"generation: \d+ tokens/s, [\d.]+ ms per decoding step", out)
