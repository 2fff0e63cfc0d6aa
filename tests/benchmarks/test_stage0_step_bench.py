"""The stage-0 step benchmark runs end to end and packed vision attention gives the same losses
as attention per image (the rates are printed, not asserted)."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_stage0_step_benchmark_compares_attention_paths():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "stage0_step.py"), "--device", "cpu"]
        + ["--steps", "1", "--vision-batch-size", "4", "--batch-size", "2"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    rows = re.findall(
        r"^(vision|warm start) .*packed/per-image ([\d.]+)x \| same loss: (\w+)$", proc.stdout, re.M
    )
    assert [(name, same) for name, _, same in rows] == [
        ("vision", "True"),
        ("warm start", "True"),
    ], proc.stdout
