"""The stage-0 step benchmark runs end to end and packed vision attention gives the same losses
as attention per image, with every attention kernel allowed and with cuDNN's off as training
runs (the rates are printed, not asserted)."""

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
        r"^(vision|warm start) +(all kernels|cuDNN off) .*packed/per-image ([\d.]+)x \| "
        r"same loss: (\w+)$",
        proc.stdout,
        re.M,
    )
    assert [(name, mode, same) for name, mode, _, same in rows] == [
        ("vision", "all kernels", "True"),
        ("vision", "cuDNN off", "True"),
        ("warm start", "all kernels", "True"),
        ("warm start", "cuDNN off", "True"),
    ], proc.stdout
    ratios = re.findall(
        r"^(vision|warm start) +packed, cuDNN off / all kernels: ([\d.]+)x$", proc.stdout, re.M
    )
    assert [name for name, _ in ratios] == ["vision", "warm start"], proc.stdout
