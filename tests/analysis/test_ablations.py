"""Ablation helpers: oracle prompt types through a segmenter, reward fidelity under jitter."""

import numpy as np

from genseg_lib.analysis.ablations import prompt_ablation, reward_fidelity
from genseg_lib.data.synthref import synthref_samples
from genseg_lib.segment.classical import GrabCutSegmenter


def test_prompt_ablation_table():
    samples = synthref_samples("val", 16, seed=0)
    df = prompt_ablation(samples, {"grabcut": GrabCutSegmenter()})
    assert list(df["prompt"]) == ["box", "box+1pt", "box+2pt", "2pt"]
    assert (df["n"] == sum(not s.no_target for s in samples)).all()
    box2 = df.set_index("prompt").loc["box+2pt", "gIoU"]
    assert box2 > 90 and df.set_index("prompt").loc["2pt", "gIoU"] < box2


def test_reward_fidelity_degrades_with_jitter():
    samples = synthref_samples("val", 10, seed=0)
    per, summary = reward_fidelity(samples, GrabCutSegmenter(), sigmas=(0.0, 0.3), seed=0)
    zero, big = summary.iloc[0], summary.iloc[1]
    assert zero["box_iou"] > 0.99 and zero["final_mask_iou"] > 0.9
    assert big["box_iou"] < zero["box_iou"] and big["final_mask_iou"] < zero["final_mask_iou"]
    rho = summary.attrs["spearman"]["geometric_mean"]
    assert np.isfinite(rho) and rho > 0.3
    assert len(per) == 2 * sum(not s.no_target for s in samples)
