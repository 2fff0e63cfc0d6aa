"""ReasonSeg loader: LISA's mask painting (largest first, ignore excluded)."""

import json

import pytest

from genseg_lib.data import DataError, load_dataset
from genseg_lib.data.reasonseg import reasonseg_masks


def test_one_sample_per_text_and_ignore_excluded(data_root):
    samples = load_dataset("reasonseg", data_root, "val")
    a = [s for s in samples if s.source["name"] == "scene_a"]
    assert [s.query for s in a] == ["the thing you would sit on", "where can I rest?"]
    assert a[0].query_type == "sentence" and a[0].source["is_sentence"] is True
    assert (a[0].width, a[0].height) == (30, 25)
    masks = a[0].instance_masks()
    # square 10..20 inclusive (outline + fill) = 121 px, minus the 12..15 ignore square (16 px)
    assert [int(m.sum()) for m in masks] == [105, 16]
    assert not masks[0][12:16, 12:16].any() and masks[0][10, 10] and masks[0][20, 20]
    assert masks[1][0:4, 0:4].all()  # the second target polygon, 0..3 inclusive


def test_no_shapes_is_no_target(data_root):
    (b,) = [s for s in load_dataset("reasonseg", data_root, "val") if s.source["name"] == "scene_b"]
    assert b.no_target and b.query_type == "phrase"


def test_smaller_target_painted_over_larger_ignore():
    shapes = [
        {"label": "ignore", "points": [[0, 0], [9, 0], [9, 9], [0, 9]]},
        {"label": "target", "points": [[2, 2], [4, 2], [4, 4], [2, 4]]},
    ]
    (m,) = reasonseg_masks(shapes, 12, 12, "x")
    assert m.sum() == 9 and m[2:5, 2:5].all()


def test_errors(data_root, tmp_path):
    with pytest.raises(DataError, match="unknown split 'train'.*\\['val'\\]"):
        load_dataset("reasonseg", data_root, "train")
    with pytest.raises(DataError, match="reasonseg.*not found.*LISA"):
        load_dataset("reasonseg", tmp_path, "val")
    bad = data_root / "reasonseg" / "val" / "scene_a.json"
    ann = json.loads(bad.read_text())
    ann["shapes"][0]["points"] = [[1, 1], [2, 2]]
    bad.write_text(json.dumps(ann))
    with pytest.raises(DataError, match=r"scene_a\.json shape 0: polygon needs at least 3"):
        load_dataset("reasonseg", data_root, "val")
    (data_root / "reasonseg" / "val" / "scene_b.jpg").unlink()
    bad.write_text(json.dumps({"text": ["x"], "shapes": []}))
    with pytest.raises(DataError, match=r"scene_b\.json: its image .* is missing"):
        load_dataset("reasonseg", data_root, "val")
