"""Samples -> datasets.Dataset for TRL: prompt, image and serialisable GT columns."""

import json

import numpy as np
import pytest

from genseg_lib.data import load_dataset
from genseg_lib.data.synthref import synthref_samples
from genseg_lib.masks import rle_decode
from genseg_lib.models.build import build_processor, qwen_tokenizer
from genseg_lib.models.prompt import build_messages
from genseg_lib.train.dataset import to_hf_dataset


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
    processor = build_processor(qwen_tokenizer())  # patch 16 x merge 2: multiples of 32 px
    ds = to_hf_dataset(
        load_dataset("grefcoco", data_root, "val"), "pixels", processor.image_processor
    )
    nt = [r for r in ds if r["no_target"]]
    assert len(nt) == 2 and all(r["gt_masks"] == [] and r["gt_boxes"] == [] for r in nt)
    assert "pixel positions" in nt[0]["prompt"][0]["content"]
    assert ds[0]["image"].size == (32, 32)  # decoded lazily from the path
    assert {r["coord_frame"] for r in ds} == {"pixels"}


def test_frame_columns_follow_the_policy(data_root):
    samples = load_dataset("refcocog", data_root, "val")  # a 40 x 30 image first
    assert samples[0].image_size == (40, 30)
    ds = to_hf_dataset(samples)
    assert ds[0]["coord_frame"] == "norm1000" and ds[0]["frame_size"] == [40, 30]
    processor = build_processor(qwen_tokenizer())
    ds = to_hf_dataset(samples, "pixels", processor.image_processor)
    # the processor resizes 40 x 30 to 32 x 32: pixel answers refer to that frame
    assert ds[0]["frame_size"] == [32, 32]
    with pytest.raises(ValueError, match="image processor"):
        to_hf_dataset(samples, "pixels")


def test_oversampling_reaches_each_share_and_keeps_the_rest():
    from genseg_lib.train.dataset import oversample_kinds, sample_kind

    samples = synthref_samples("train", 300, seed=0)
    kinds = [sample_kind(s) for s in samples]
    assert kinds == [
        "no_target" if s.no_target else "multi_target" if len(s.gt_masks) > 1 else "single_target"
        for s in samples
    ]
    singles = sorted(s.sample_id for s in samples if sample_kind(s) == "single_target")
    assert 0 < kinds.count("multi_target") < 0.2 * len(samples)  # a small pool: drawn again
    shares = {"no_target": 0.3, "multi_target": 0.35}
    mixed = oversample_kinds(samples, shares, seed=1)
    for kind, share in shares.items():
        assert abs(sum(sample_kind(s) == kind for s in mixed) / len(mixed) - share) < 0.01
    assert sorted(s.sample_id for s in mixed if sample_kind(s) == "single_target") == singles
    assert [s.sample_id for s in mixed] == [
        s.sample_id for s in oversample_kinds(samples, shares, seed=1)
    ]
    alone = oversample_kinds(samples, {"no_target": 0.3}, seed=1)  # multi kept, not drawn
    assert sum(sample_kind(s) == "multi_target" for s in alone) == kinds.count("multi_target")
    assert abs(sum(s.no_target for s in alone) / len(alone) - 0.3) < 0.01
    assert not any(s.no_target for s in oversample_kinds(samples, {"no_target": 0.0}, seed=1))
    with pytest.raises(ValueError, match="no no_target sample"):
        oversample_kinds([s for s in samples if not s.no_target], {"no_target": 0.3}, seed=1)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        oversample_kinds(samples, {"no_target": 0.6, "multi_target": 0.4}, seed=1)
    with pytest.raises(ValueError, match="not a sample kind"):
        oversample_kinds(samples, {"multi": 0.3}, seed=1)
