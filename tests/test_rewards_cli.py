"""`python -m genseg_lib.rewards`: a file of completions scored by a preset, term by term."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from genseg_lib.masks import rle_encode
from genseg_lib.rewards import main

ROOT = Path(__file__).resolve().parents[1]
SEGZERO = (
    '<think>the cup</think><answer>{"bbox": [100, 100, 199, 199], '
    '"points_1": [150, 120], "points_2": [130, 180]}</answer>'
)
OURS = (
    '<think>the cup</think><answer>[{"bbox_2d": [100, 100, 200, 200], '
    '"points": [[150, 120], [130, 180]]}]</answer>'
)


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _row(completion, **extra):
    return {
        "completion": completion,
        "width": 840,
        "height": 840,
        "gt_boxes": [[100, 100, 200, 200]],
        "gt_points": [[[150, 120], [130, 180]]],
        **extra,
    }


def test_segzero_scores_each_term_and_the_total(tmp_path):
    inp = _write(tmp_path / "c.jsonl", [_row(SEGZERO), _row("no answer at all")])
    assert main(["--preset", "segzero", "--in", str(inp), "--out", str(tmp_path / "s.jsonl")]) == 0
    good, bad = [json.loads(x) for x in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert good["row"] == 0 and good["total"] == 5.0 and set(good["terms"].values()) == {1.0}
    assert bad["total"] == 0.0 and len(bad["terms"]) == 5


def test_our_preset_reads_pixels_and_masks(tmp_path):
    m = np.zeros((840, 840), bool)
    m[100:200, 100:200] = True
    row = _row(OURS, coord_frame="pixels", gt_masks=[rle_encode(m)])
    inp = _write(tmp_path / "c.jsonl", [row])
    out = tmp_path / "s.jsonl"
    assert main(["--preset", "genseg-r1", "--in", str(inp), "--out", str(out)]) == 0
    (scored,) = [json.loads(x) for x in out.read_text().splitlines()]
    # the same box as the GT, both points inside its mask: every term 1
    assert scored["terms"] == {"format": 1.0, "box_iou": 1.0, "box_l1": 1.0, "points_in_mask": 1.0}
    assert scored["total"] == 4.0


@pytest.mark.parametrize(
    "preset,rows,message",
    [
        ("genseg-r1-g", [_row(OURS)], "runs the segmenter"),
        ("genseg-r1", [_row(OURS)], "every row needs 'gt_masks'"),
        ("segzero", [{"completion": "x", "width": 840}], "line 1: no 'height'"),
        ("segzero", [_row(SEGZERO), _row(SEGZERO, width=0)], "line 2: 'width' must be a positive"),
        ("segzero", [_row(SEGZERO, gt_boxes=[[1, 2, 3]])], "'gt_boxes' must be a list of"),
        ("segzero", [_row(SEGZERO, coord_frame="norm1000")], "read 840x840-frame pixels"),
    ],
)
def test_bad_rows_and_presets_are_named_errors(tmp_path, preset, rows, message):
    inp = _write(tmp_path / "c.jsonl", rows)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "genseg_lib.rewards",
            "--preset",
            preset,
            "--in",
            str(inp),
            "--out",
            str(tmp_path / "s.jsonl"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
