"""The SAM bridge benchmark runs end to end (tiny workload) and reports agreeing masks."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_benchmark_prints_ratio_and_agreement():
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "sam_bridge.py"),
            "--image-size",
            "256",
            "--images",
            "2",
            "--answers",
            "2",
            "--instances",
            "1",
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    m = re.search(
        r"speedup: ([\d.]+)x\s+max mask disagreement \(1 - IoU\): ([\d.e+-]+)", proc.stdout
    )
    assert m, proc.stdout
    assert float(m.group(2)) < 1e-2  # batched and naive paths give the same masks
    assert "2 images x 2 answers x 1 instances = 4 masks" in proc.stdout
