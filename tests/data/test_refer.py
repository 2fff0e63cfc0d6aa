"""RefCOCOg and gRefCOCO loaders on fixtures in the public formats."""

import json
import pickle

import numpy as np
import pytest

from genseg_lib.data import DataError, load_dataset
from genseg_lib.masks import rle_decode


def test_refcocog_one_sample_per_sentence(data_root):
    val = load_dataset("refcocog", data_root, "val")
    assert [s.sample_id for s in val] == [
        "refcocog/val/0/0",
        "refcocog/val/0/1",
        "refcocog/val/2/3",
    ]
    first = val[0]
    assert first.query == "the square in the middle" and not first.no_target
    assert (first.width, first.height) == (40, 30)
    mask = first.gt_mask()
    assert mask.shape == (30, 40) and mask.sum() == 100 and mask[10:20, 10:20].all()
    assert first.source == {
        "dataset": "refcocog",
        "split": "val",
        "ref_id": 0,
        "ann_id": 11,
        "image_id": 1,
        "sent_id": 0,
    }
    assert first.image_path.endswith("images/train2014/COCO_train2014_000000000001.jpg")
    assert first.load_image().size == (40, 30)
    # uncompressed RLE annotation: rows 2..3, cols 3..8
    bar = val[2].gt_mask()
    assert bar.sum() == 12 and bar[2:4, 3:9].all()


def test_refcocog_compressed_rle_annotation(data_root):
    (train,) = load_dataset("refcocog", data_root, "train")
    assert train.gt_mask().sum() == 20 and train.gt_mask()[0:5, 0:4].all()


def test_grefcoco_multi_and_no_target(data_root):
    val = {s.source["ref_id"]: s for s in load_dataset("grefcoco", data_root, "val")}
    multi = val[10]
    assert len(multi.gt_masks) == 2 and multi.query_type == "multi"
    # annotation 22: a 2-point polygon is dropped, the square kept
    assert [rle_decode(r).sum() for r in multi.gt_masks] == [12, 100]
    single = val[11]
    assert single.query_type == "single" and single.source["ann_id"] == [11]
    nt = [s for s in load_dataset("grefcoco", data_root, "val") if s.no_target]
    assert [s.query for s in nt] == ["the dog", "a cat"]
    assert all(
        s.gt_masks == [] and s.gt_mask().sum() == 0 and s.query_type == "no_target" for s in nt
    )


def test_grefcoco_skips_crowd_annotations(data_root):
    (s,) = load_dataset("grefcoco", data_root, "testA")
    assert len(s.gt_masks) == 1 and rle_decode(s.gt_masks[0]).sum() == 12


def test_grefcoco_pickle_variant(data_root):
    folder = data_root / "grefcoco"
    refs = json.loads((folder / "grefs(unc).json").read_text())
    (folder / "grefs(unc).json").unlink()
    with (folder / "grefs(unc).p").open("wb") as fh:
        pickle.dump(refs, fh)
    assert len(load_dataset("grefcoco", data_root, "val")) == 4


def test_missing_annotation_file_says_where(tmp_path):
    with pytest.raises(DataError, match=r"refs\(umd\)\.p not found.*DATA_ROOT/refcocog/.*refer"):
        load_dataset("refcocog", tmp_path, "val")
    with pytest.raises(DataError, match=r"grefs\(unc\)\.json not found"):
        load_dataset("grefcoco", tmp_path, "val")


def test_unknown_split_and_dataset(data_root):
    with pytest.raises(DataError, match=r"unknown split 'testB'.*\['testA', 'val'\]"):
        load_dataset("grefcoco", data_root, "testB")
    with pytest.raises(DataError, match="unknown dataset"):
        load_dataset("coco", data_root, "val")


def test_malformed_polygon_names_file_and_annotation(data_root):
    path = data_root / "refcocog" / "instances.json"
    coco = json.loads(path.read_text())
    coco["annotations"][0]["segmentation"] = [[1, 2, 3]]
    path.write_text(json.dumps(coco))
    with pytest.raises(DataError, match=r"instances\.json annotation 11: polygon 0 has an odd"):
        load_dataset("refcocog", data_root, "val")
    coco["annotations"][0]["segmentation"] = [[1, 2, 3, 4]]
    path.write_text(json.dumps(coco))
    with pytest.raises(DataError, match="annotation 11: no polygon with at least 3 points"):
        load_dataset("refcocog", data_root, "val")


def test_ref_pointing_to_missing_annotation(data_root):
    path = data_root / "grefcoco" / "grefs(unc).json"
    refs = json.loads(path.read_text())
    refs[1]["ann_id"] = 999
    path.write_text(json.dumps(refs))
    with pytest.raises(DataError, match=r"ref 11 refers to annotation 999"):
        load_dataset("grefcoco", data_root, "val")


def test_missing_image_error_names_sample(data_root):
    (data_root / "images" / "train2014" / "COCO_train2014_000000000001.jpg").unlink()
    s = load_dataset("refcocog", data_root, "val")[0]
    with pytest.raises(FileNotFoundError, match="sample refcocog/val/0/0: image not found"):
        s.load_image()


def test_sample_rejects_inconsistent_records():
    from genseg_lib.data import Sample

    with pytest.raises(ValueError, match="no_target=True but 1"):
        Sample(
            "x",
            "q",
            [{"size": [2, 2], "counts": "04"}],
            True,
            2,
            2,
            image=np.zeros((2, 2, 3), np.uint8),
        )
    with pytest.raises(ValueError, match="exactly one of image_path and image"):
        Sample("x", "q", [], True, 2, 2)
