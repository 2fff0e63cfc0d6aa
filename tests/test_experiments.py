"""Experiment helpers: subset metrics from an evaluation, seed spread tables, galleries."""

import math

import pytest

from genseg_lib.data.synthref import synthref_samples
from genseg_lib.evaluate import OraclePrompter, evaluate
from genseg_lib.experiments import (
    SINGLE_TARGET_TYPES,
    answers_from_runs,
    mean_spread,
    seed_table,
    subset_summary,
)
from genseg_lib.segment.classical import GrabCutSegmenter
from genseg_lib.viz import answer_gallery


def test_subset_summary_and_gallery(tmp_path):
    samples = synthref_samples("val", 30, seed=0)
    evaluate(
        samples,
        OraclePrompter(),
        GrabCutSegmenter(),
        tmp_path / "run",
        meta={"dataset": "synthref:val"},
    )
    single = subset_summary(tmp_path / "run", SINGLE_TARGET_TYPES)
    assert single["n_samples"] == sum(s.query_type in SINGLE_TARGET_TYPES for s in samples)
    assert math.isnan(single["overall"]["N_acc"]) and single["dataset"] == "synthref:val"
    nt = subset_summary(tmp_path / "run", ["no_target"])
    assert nt["overall"]["N_acc"] == 1.0
    assert subset_summary(tmp_path / "run")["n_samples"] == 30
    answers, masks = answers_from_runs(
        samples[:3], {"oracle": tmp_path / "run"}, GrabCutSegmenter()
    )
    assert len(answers["oracle"]) == 3 and masks["oracle"][0].shape == (128, 128)
    assert len(answer_gallery(samples[:3], answers, masks).axes) == 3


def test_mean_spread_and_seed_table():
    assert mean_spread([1.0, 3.0]) == (2.0, pytest.approx(math.sqrt(2)))
    assert mean_spread([5.0]) == (5.0, 0.0)
    s = [{"n_samples": 4, "overall": {"gIoU": 0.5}}, {"n_samples": 4, "overall": {"gIoU": 0.7}}]
    t = seed_table({"r": s}, ["gIoU"])
    assert t.iloc[0]["gIoU"] == pytest.approx(60.0) and t.iloc[0]["seeds"] == 2
    assert t.iloc[0]["gIoU ±"] == pytest.approx(14.142, abs=1e-3)
