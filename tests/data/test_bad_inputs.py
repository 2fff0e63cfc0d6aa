"""Malformed dataset files: each gets a `DataError` naming the file, the record and the
problem, and `python -m genseg_lib.data check` reports it (exit 1) before any run starts."""

import json
import pickle
import re

import pytest
from PIL import Image

from genseg_lib.data import DataError, load_dataset
from genseg_lib.data.__main__ import main as data_main

REFS = ("refcocog", "refs(umd).p")
GREFS = ("grefcoco", "grefs(unc).json")
COCO = ("refcocog", "instances.json")


def _edit_refs(root, where, edit):
    path = root.joinpath(*where)
    if path.suffix == ".p":
        refs = pickle.loads(path.read_bytes())
        edit(refs)
        path.write_bytes(pickle.dumps(refs))
    else:
        refs = json.loads(path.read_text())
        edit(refs)
        path.write_text(json.dumps(refs))


def _edit_coco(root, edit):
    path = root.joinpath(*COCO)
    coco = json.loads(path.read_text())
    edit(coco)
    path.write_text(json.dumps(coco))


def _ann(coco, ann_id):
    return next(a for a in coco["annotations"] if a["id"] == ann_id)


def _edit_reasonseg(root, edit):
    path = root / "reasonseg" / "val" / "scene_a.json"
    path.write_text(json.dumps(edit(json.loads(path.read_text()))))


def _shapes(value):
    def edit(ann):
        ann["shapes"] = value
        return ann

    return edit


# (id, dataset, mutation of the fixture data root, what the error must say)
LOAD_CASES = [
    (
        "ref without image_id",
        "refcocog",
        lambda r: _edit_refs(r, REFS, lambda refs: refs[0].pop("image_id")),
        r"refs\(umd\)\.p ref 0: no 'image_id'",
    ),
    (
        "sentence without sent_id",
        "refcocog",
        lambda r: _edit_refs(r, REFS, lambda refs: refs[2]["sentences"][0].pop("sent_id")),
        r"ref 2 sentence 0: no 'sent_id'",
    ),
    (
        "a list where an int belongs",
        "refcocog",
        lambda r: _edit_refs(r, REFS, lambda refs: refs[0].update(ann_id=[11])),
        r"ref 0: 'ann_id' is a list \(\[11\]\), expected int",
    ),
    (
        "a ref that is not an object",
        "refcocog",
        lambda r: _edit_refs(r, REFS, lambda refs: refs.append("ref")),
        r"refs\(umd\)\.p entry 3 is a str, not a ref object",
    ),
    (
        "gRefCOCO ann_id list holding text",
        "grefcoco",
        lambda r: _edit_refs(r, GREFS, lambda refs: refs[0].update(ann_id=[21, "22"])),
        r"grefs\(unc\)\.json ref 10: 'ann_id' \[21, '22'\] is not a list of integers",
    ),
    (
        "instances.json not UTF-8",
        "refcocog",
        lambda r: r.joinpath(*COCO).write_bytes(b'{"images": ["\xff\xfe"]}'),
        r"instances\.json is not UTF-8 text",
    ),
    (
        "image entry without height",
        "refcocog",
        lambda r: _edit_coco(r, lambda c: c["images"][0].pop("height")),
        r"instances\.json image 1: 'height' is None, expected a positive integer",
    ),
    (
        "annotation without an integer id",
        "refcocog",
        lambda r: _edit_coco(r, lambda c: c["annotations"][0].update(id="11")),
        r"instances\.json annotation entry 0 has no integer 'id'",
    ),
    (
        "garbage RLE counts",
        "refcocog",
        lambda r: _edit_coco(
            r, lambda c: _ann(c, 21).update(segmentation={"size": [32, 32], "counts": "zz!!"})
        ),
        r"annotation 21: RLE counts 'zz!!' are not a COCO RLE string",
    ),
    (
        "uncompressed RLE that does not cover the image",
        "refcocog",
        lambda r: _edit_coco(
            r, lambda c: _ann(c, 21).update(segmentation={"size": [32, 32], "counts": [5, 7]})
        ),
        r"annotation 21: uncompressed RLE counts must be non-negative integers adding up to 32\*32",
    ),
    (
        "ReasonSeg shape that is not an object",
        "reasonseg",
        lambda r: _edit_reasonseg(r, _shapes(["target", [[0, 0], [1, 1], [2, 0]]])),
        r"scene_a\.json shape 0: a str, not an object",
    ),
    (
        "ReasonSeg non-numeric coordinates",
        "reasonseg",
        lambda r: _edit_reasonseg(
            r, _shapes([{"label": "target", "points": [["a", 1], [2, 2], [3, 0]]}])
        ),
        r"scene_a\.json shape 0: points are not numeric pairs",
    ),
    (
        "ReasonSeg enormous coordinates",
        "reasonseg",
        lambda r: _edit_reasonseg(
            r, _shapes([{"label": "target", "points": [[1e12, 1], [2, 2], [3, 0]]}])
        ),
        r"scene_a\.json shape 0: a coordinate \(1e\+12\) lies beyond 4 image sides",
    ),
    (
        "ReasonSeg json that is a list",
        "reasonseg",
        lambda r: _edit_reasonseg(r, lambda ann: [ann]),
        r"scene_a\.json: holds a list, not an object",
    ),
    (
        "ReasonSeg text that is not queries",
        "reasonseg",
        lambda r: _edit_reasonseg(r, lambda ann: {**ann, "text": {"q": "x"}}),
        r"scene_a\.json: 'text' must be a query or a non-empty list of queries",
    ),
    (
        "ReasonSeg zero-byte image",
        "reasonseg",
        lambda r: (r / "reasonseg" / "val" / "scene_a.jpg").write_bytes(b""),
        r"scene_a\.json: cannot read its image .*scene_a\.jpg",
    ),
]


@pytest.mark.parametrize(
    "dataset,mutate,message", [c[1:] for c in LOAD_CASES], ids=[c[0] for c in LOAD_CASES]
)
def test_malformed_input_is_a_named_error_and_check_finds_it(
    data_root, capsys, dataset, mutate, message
):
    mutate(data_root)
    with pytest.raises(DataError, match=message):
        load_dataset(dataset, data_root, "val")
    capsys.readouterr()
    assert data_main(["check", dataset, str(data_root), "--split", "val"]) == 1
    out = capsys.readouterr().out
    assert re.search("ERROR .*" + message, out), out


def test_rle_whose_runs_do_not_add_up_is_found_by_check(data_root, capsys):
    """'0' is a well-formed RLE string whose one run of 0 pixels covers nothing: it loads, and
    `check` (which decodes every mask) names the sample and the problem."""
    _edit_coco(
        data_root, lambda c: _ann(c, 21).update(segmentation={"size": [32, 32], "counts": "0"})
    )
    samples = load_dataset("refcocog", data_root, "val")
    bad = next(s for s in samples if s.source["ann_id"] == 21)
    with pytest.raises(ValueError, match="do not describe a 32x32 mask"):
        bad.instance_masks()
    assert data_main(["check", "refcocog", str(data_root), "--split", "val"]) == 1
    out = capsys.readouterr().out
    assert f"ERROR {bad.sample_id}: instance 0: RLE counts b'0' do not describe a 32x32" in out


def test_undecodable_and_mis_sized_images_are_found_by_check(data_root, capsys):
    img_dir = data_root / "images" / "train2014"
    (img_dir / "COCO_train2014_000000000001.jpg").write_bytes(b"")  # zero bytes
    Image.new("RGB", (10, 10)).save(img_dir / "COCO_train2014_000000000002.jpg")  # not 32x32
    samples = load_dataset("refcocog", data_root, "val")
    broken = next(s for s in samples if s.source["image_id"] == 1)
    with pytest.raises(DataError, match=rf"sample {broken.sample_id}: cannot decode image"):
        broken.load_image()
    assert data_main(["check", "refcocog", str(data_root), "--split", "val"]) == 1
    out = capsys.readouterr().out
    assert "COCO_train2014_000000000001.jpg cannot be decoded" in out
    assert "COCO_train2014_000000000002.jpg is 10x10, the annotations say 32x32" in out
    assert "2 of 2 images" in out
