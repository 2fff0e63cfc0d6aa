"""Ablation helpers: oracle prompt types through a segmenter, reward fidelity under jitter."""

import numpy as np

from genseg_lib.analysis.ablations import prompt_ablation, prompt_room, reward_fidelity
from genseg_lib.data.synthref import synthref_samples
from genseg_lib.segment.classical import GrabCutSegmenter


def test_prompt_ablation_table():
    samples = synthref_samples("val", 16, seed=0)
    df = prompt_ablation(samples, {"grabcut": GrabCutSegmenter()})
    assert list(df["prompt"]) == ["box", "box+1pt", "box+2pt", "2pt", "box+centre"]
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


def test_prompt_room_per_shape_family():
    samples = synthref_samples("val", 120, seed=0)
    df = prompt_room(samples, GrabCutSegmenter()).set_index("shape")
    single = sum(len(s.gt_masks) == 1 for s in samples)
    assert df.loc["all single-target", "n"] == single
    centred = df[df["box centre"] == "centred"]
    off = df[df["box centre"] == "off-centre"]
    assert len(off) >= 3 and len(centred) >= 3
    # the box centre is on centred shapes: no room; off them it selects background
    assert (centred["room (a) - (b)"].abs() < 1.0).all()
    assert (off["room (a) - (b)"] > 30).all()
    assert (df["GT interior points + box"] > 75).all()
    assert df.loc["all single-target", "room (a) - (b)"] > 10
