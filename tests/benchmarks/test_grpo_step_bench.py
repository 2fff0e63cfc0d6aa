"""The GRPO step-split benchmark runs end to end and accounts for the step."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_grpo_step_benchmark_prints_split():
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "grpo_step.py"),
            "--segmenter",
            "classical",
            "--steps",
            "2",
            "--prompts",
            "1",
            "--generations",
            "2",
            "--max-completion-length",
            "8",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    out = proc.stdout
    for row in [
        "generation",
        "reward sam_mask_iou",
        "log-prob forward",
        "backward + optimizer + rest",
        "step",
    ]:
        assert re.search(rf"{re.escape(row)}\s+[\d.]+ s", out), out
    assert "SAM reward on a step's worth of readable answers" in out
