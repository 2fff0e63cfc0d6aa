"""Report helpers: profile-labelled tables, paper comparison, runs collected by their run.json,
reward curves."""

import json
import math

import pandas as pd
import pytest

from genseg_lib.analysis.runs import collect_runs
from genseg_lib.analysis.tables import (
    PAPER_NUMBERS,
    measured_for_paper,
    paper_comparison,
    reward_curves,
    save_table,
)


def test_save_table_labels_profile(tmp_path):
    path = save_table(
        pd.DataFrame({"a": [1.234, float("nan")], "b": ["x", "y"]}), tmp_path, "t", "smoke", "Cap"
    )
    text = path.read_text()
    assert text.startswith("**Cap**") and "NOT a reproduction" in text
    assert "| 1.23 | x |" in text and "| – | y |" in text
    assert (tmp_path / "tables" / "t.csv").exists()


def summary(dataset, giou):
    return {"dataset": dataset, "n_samples": 3, "overall": {"gIoU": giou, "cIoU": 0.5, "n": 3}}


def test_collect_and_compare(tmp_path):
    # folder names say nothing (or mislead): the arm comes from each run.json
    folders = {
        "a": ("evaluation", "baseline", summary("synthref:val", 0.2)),
        "eval-control-b": ("evaluation", "genseg-r1", summary("synthref:val", 0.4)),
        "c": ("evaluation", "genseg-r1", summary("synthref:val", 0.5)),
        "d": ("evaluation", "genseg-r1-g", summary("synthref:val", 0.3)),
        "e": ("evaluation", "control", summary("synthref:val", 0.25)),
        "f": ("evaluation", "oracle", summary("synthref:val", 1.0)),
        "baseline-g": ("grpo", None, summary("synthref:val", 0.9)),  # not an evaluation
    }
    for folder, (kind, arm, s) in folders.items():
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "summary.json").write_text(json.dumps(s))
        (tmp_path / folder / "run.json").write_text(json.dumps({"kind": kind, "arm": arm}))
    (tmp_path / "h").mkdir()  # no run.json: not counted
    (tmp_path / "h" / "summary.json").write_text(json.dumps(summary("synthref:val", 0.7)))
    runs = collect_runs(tmp_path)
    assert set(runs) == {
        ("baseline", "synthref:val"),
        ("genseg-r1", "synthref:val"),
        ("genseg-r1-g", "synthref:val"),
        ("control", "synthref:val"),
        ("oracle", "synthref:val"),
    }
    assert len(runs[("genseg-r1", "synthref:val")]) == 2
    smoke = measured_for_paper(runs, "smoke")
    assert smoke[("RefCOCOg val", "GenSeg-R1-8B", "gIoU")] == pytest.approx(45.0)  # mean of seeds
    assert smoke[("RefCOCOg val", "Qwen3-VL-8B Instruct", "gIoU")] == pytest.approx(20.0)
    assert smoke[("gRefCOCO val", "GenSeg-R1-G", "cIoU")] == pytest.approx(50.0)
    assert measured_for_paper(runs, "paper") == {}  # SynthRef is no paper benchmark
    table = paper_comparison(smoke, "smoke", "synthref:val")
    assert len(table) == len(PAPER_NUMBERS) and set(table["profile"]) == {"smoke"}
    row = table[(table.model == "GenSeg-R1-8B") & (table.metric == "gIoU")].iloc[0]
    assert row.paper == 73.82 and row.measured == pytest.approx(45.0)
    assert math.isnan(table[table.model == "Seg-Zero-7B"].iloc[0].measured)


def test_reward_curves():
    state = {
        "log_history": [
            {
                "step": 1,
                "reward": 0.5,
                "rewards/format/mean": 1.0,
                "rewards/box_iou/mean": 0.0,
                "rewards/box_iou/std": 0.1,
            },
            {"step": 1, "train_runtime": 3},
        ]
    }
    df = reward_curves(state)
    assert list(df.columns) == ["step", "format", "box_iou", "reward"] and len(df) == 1


def test_grpo_gains_mean_over_seeds():
    from genseg_lib.analysis.tables import grpo_gains

    base = {
        "n_samples": 2,
        "overall": {m: 0.2 for m in ["gIoU", "cIoU", "target_mIoU", "N_acc", "T_acc", "box_mIoU"]},
    }
    a = {"n_samples": 2, "overall": {**base["overall"], "N_acc": 0.5}}
    b = {"n_samples": 2, "overall": {**base["overall"], "N_acc": 0.7}}
    oracle = {"n_samples": 2, "overall": {**base["overall"], "N_acc": 1.0}}
    df = grpo_gains(
        {("baseline", "d"): [base], ("genseg-r1-g", "d"): [a, b], ("oracle", "d"): [oracle]}
    )
    row = df[df.metric == "N_acc"].iloc[0]
    assert row.seeds == 2 and row.before == pytest.approx(20) and row.after == pytest.approx(60)
    assert row.gain == pytest.approx(40) and len(df) == 6
