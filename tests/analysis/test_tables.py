"""Report helpers: profile-labelled tables, paper comparison, run collection, reward curves."""

import json
import math

import pandas as pd
import pytest

from genseg_lib.reports import (
    PAPER_NUMBERS,
    collect_runs,
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
    folders = {
        "baseline-synthref-val": summary("synthref:val", 0.2),
        "eval-grpo-genseg-r1-s0-synthref-val": summary("synthref:val", 0.4),
        "eval-grpo-genseg-r1-s1-synthref-val": summary("synthref:val", 0.5),
        "eval-grpo-genseg-r1-g-s0-synthref-val": summary("synthref:val", 0.3),
        "eval-control-s0-synthref-val": summary("synthref:val", 0.25),
        "oracle-synthref-val": summary("synthref:val", 1.0),
    }
    for folder, s in folders.items():
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "summary.json").write_text(json.dumps(s))
    runs = collect_runs(tmp_path)
    assert set(runs) == {
        ("baseline", "synthref:val"),
        ("genseg-r1", "synthref:val"),
        ("genseg-r1-g", "synthref:val"),
        ("control", "synthref:val"),
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
    from genseg_lib.reports import grpo_gains

    base = {
        "n_samples": 2,
        "overall": {m: 0.2 for m in ["gIoU", "cIoU", "target_mIoU", "N_acc", "T_acc", "box_mIoU"]},
    }
    a = {"n_samples": 2, "overall": {**base["overall"], "N_acc": 0.5}}
    b = {"n_samples": 2, "overall": {**base["overall"], "N_acc": 0.7}}
    df = grpo_gains({("baseline", "d"): [base], ("genseg-r1-g", "d"): [a, b]})
    row = df[df.metric == "N_acc"].iloc[0]
    assert row.seeds == 2 and row.before == pytest.approx(20) and row.after == pytest.approx(60)
    assert row.gain == pytest.approx(40) and len(df) == 6
