"""Samples -> datasets.Dataset for TRL: prompt, image and serialisable GT columns."""

import json

import numpy as np

from genseg_lib.data import load_dataset
from genseg_lib.data.hf import to_hf_dataset
from genseg_lib.data.synthref import synthref_samples
from genseg_lib.masks import rle_decode
from genseg_lib.prompt import build_messages


def test_synthref_in_memory_to_dataset():
    samples = synthref_samples("val", 12, seed=0)
    ds = to_hf_dataset(samples)
    assert len(ds) == 12
    row = ds[0]
    assert row["prompt"] == build_messages(samples[0].query)
    assert (
        row["prompt"][0]["role"] == "system"
        and "<answer>[]</answer>" in row["prompt"][0]["content"]
    )
    assert row["image"].size == (128, 128)
    assert np.array_equal(np.asarray(row["image"]), samples[0].image)
    assert (
        len(row["gt_boxes"])
        == len(row["gt_masks"])
        == len(row["gt_points"])
        == len(samples[0].gt_masks)
    )
    for rle, box, pts in zip(row["gt_masks"], row["gt_boxes"], row["gt_points"], strict=True):
        m = rle_decode(rle)
        x1, y1, x2, y2 = box
        assert m[int(y1) : int(y2), int(x1) : int(x2)].sum() == m.sum()  # box holds the mask
        assert all(m[int(y), int(x)] for x, y in pts)
    assert json.loads(row["source"])["dataset"] == "synthref"


def test_no_target_rows_have_empty_gt(data_root):
    ds = to_hf_dataset(load_dataset("grefcoco", data_root, "val"), coord_frame="pixels")
    nt = [r for r in ds if r["no_target"]]
    assert len(nt) == 2 and all(r["gt_masks"] == [] and r["gt_boxes"] == [] for r in nt)
    assert "pixel positions" in nt[0]["prompt"][0]["content"]
    assert ds[0]["image"].size == (32, 32)  # decoded lazily from the path
