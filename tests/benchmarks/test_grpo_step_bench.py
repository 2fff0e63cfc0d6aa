"""The GRPO step-split benchmark runs end to end, accounts for the step, and its SAM reward
scores near-GT answers high."""

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
    m = re.search(r"SAM reward on a step's worth of readable answers.*mean reward ([\d.]+)", out)
    # answers 3 px off the GT prompts segment almost the GT mask; a broken reward scores ~0
    assert m and float(m.group(1)) > 0.6, out
