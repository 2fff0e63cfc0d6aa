"""The generation benchmark runs end to end and its two paths give identical texts (the
ratio is printed, not asserted)."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generation_benchmark_prints_ratio():
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "generation.py"),
            "--n",
            "4",
            "--batch-size",
            "2",
            "--max-new-tokens",
            "8",
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    m = re.search(r"throughput ratio: ([\d.]+)x\s+identical texts: (\d+)/4", proc.stdout)
    assert m, proc.stdout
    assert m.group(2) == "4"  # batched and one-by-one decoding give the same texts
