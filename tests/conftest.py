"""Shared fixtures: tiny dataset folders in the public formats (refer pickles, COCO json,
ReasonSeg json) and a tiny random Qwen3-VL built once per session (offline)."""

import json
import pickle

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils


def _jpg(path, width, height, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(path)


def _coco(images, annotations):
    return {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "thing", "supercategory": "thing"}],
    }


SQUARE = [10, 10, 20, 10, 20, 20, 10, 20]  # pixels 10..19 x 10..19 -> 100 px


def _rect_rle(h, w, y1, y2, x1, x2, compressed=True):
    m = np.zeros((h, w), np.uint8)
    m[y1:y2, x1:x2] = 1
    rle = mask_utils.encode(np.asfortranarray(m))
    if compressed:
        return {"size": [h, w], "counts": rle["counts"].decode()}
    flat = m.flatten(order="F")
    runs, cur, n = [], 0, 0
    for v in flat:
        if v != cur:
            runs.append(n)
            cur, n = v, 0
        n += 1
    runs.append(n)
    return {"size": [h, w], "counts": runs}


@pytest.fixture
def data_root(tmp_path):
    root = tmp_path / "data"
    img_dir = root / "images" / "train2014"
    images = [
        {"id": 1, "width": 40, "height": 30, "file_name": "COCO_train2014_000000000001.jpg"},
        {"id": 2, "width": 32, "height": 32, "file_name": "COCO_train2014_000000000002.jpg"},
    ]
    for img in images:
        _jpg(img_dir / img["file_name"], img["width"], img["height"], img["id"])
    anns = [
        {
            "id": 11,
            "image_id": 1,
            "category_id": 1,
            "iscrowd": 0,
            "segmentation": [SQUARE],
            "area": 100,
            "bbox": [10, 10, 10, 10],
        },
        {
            "id": 12,
            "image_id": 1,
            "category_id": 1,
            "iscrowd": 0,
            "segmentation": _rect_rle(30, 40, 0, 5, 0, 4),
            "area": 20,
            "bbox": [0, 0, 4, 5],
        },
        {
            "id": 21,
            "image_id": 2,
            "category_id": 1,
            "iscrowd": 0,
            "segmentation": _rect_rle(32, 32, 2, 4, 3, 9, compressed=False),
            "area": 12,
            "bbox": [3, 2, 6, 2],
        },
        # a polygon with 2 points (dropped, like grefer) next to a valid one
        {
            "id": 22,
            "image_id": 2,
            "category_id": 1,
            "iscrowd": 0,
            "segmentation": [[0, 0, 5, 5], SQUARE],
            "area": 100,
            "bbox": [10, 10, 10, 10],
        },
        {
            "id": 23,
            "image_id": 2,
            "category_id": 1,
            "iscrowd": 1,
            "segmentation": _rect_rle(32, 32, 0, 32, 0, 32),
            "area": 1024,
            "bbox": [0, 0, 32, 32],
        },
    ]
    (root / "refcocog").mkdir(parents=True)
    (root / "refcocog" / "instances.json").write_text(json.dumps(_coco(images, anns)))
    refs = [
        {
            "ref_id": 0,
            "ann_id": 11,
            "image_id": 1,
            "split": "val",
            "category_id": 1,
            "file_name": "COCO_train2014_000000000001_11.jpg",
            "sent_ids": [0, 1],
            "sentences": [
                {
                    "sent": "the square in the middle",
                    "raw": "The square in the middle.",
                    "tokens": ["the", "square"],
                    "sent_id": 0,
                },
                {
                    "sent": "middle square",
                    "raw": "middle square",
                    "tokens": ["middle", "square"],
                    "sent_id": 1,
                },
            ],
        },
        {
            "ref_id": 1,
            "ann_id": 12,
            "image_id": 1,
            "split": "train",
            "category_id": 1,
            "file_name": "COCO_train2014_000000000001_12.jpg",
            "sent_ids": [2],
            "sentences": [
                {"sent": "top left block", "raw": "top left block", "tokens": [], "sent_id": 2}
            ],
        },
        {
            "ref_id": 2,
            "ann_id": 21,
            "image_id": 2,
            "split": "val",
            "category_id": 1,
            "file_name": "COCO_train2014_000000000002_21.jpg",
            "sent_ids": [3],
            "sentences": [{"sent": "thin bar", "raw": "thin bar", "tokens": [], "sent_id": 3}],
        },
    ]
    with (root / "refcocog" / "refs(umd).p").open("wb") as fh:
        pickle.dump(refs, fh)

    (root / "grefcoco").mkdir(parents=True)
    (root / "grefcoco" / "instances.json").write_text(json.dumps(_coco(images, anns)))
    grefs = [
        {
            "ref_id": 10,
            "ann_id": [21, 22],
            "category_id": [1, 1],
            "image_id": 2,
            "split": "val",
            "no_target": False,
            "sent_ids": [10],
            "sentences": [
                {"sent": "both things", "raw": "both things", "tokens": [], "sent_id": 10}
            ],
        },
        {
            "ref_id": 11,
            "ann_id": 11,
            "category_id": 1,
            "image_id": 1,
            "split": "val",
            "no_target": False,
            "sent_ids": [11],
            "sentences": [{"sent": "the square", "raw": "the square", "tokens": [], "sent_id": 11}],
        },
        {
            "ref_id": 12,
            "ann_id": [-1],
            "category_id": [-1],
            "image_id": 1,
            "split": "val",
            "no_target": True,
            "sent_ids": [12, 13],
            "sentences": [
                {"sent": "the dog", "raw": "the dog", "tokens": [], "sent_id": 12},
                {"sent": "a cat", "raw": "a cat", "tokens": [], "sent_id": 13},
            ],
        },
        {
            "ref_id": 13,
            "ann_id": [21, 23],
            "category_id": [1, 1],
            "image_id": 2,
            "split": "testA",
            "no_target": False,
            "sent_ids": [14],
            "sentences": [{"sent": "bar and crowd", "raw": "", "tokens": [], "sent_id": 14}],
        },
    ]
    (root / "grefcoco" / "grefs(unc).json").write_text(json.dumps(grefs))

    rs = root / "reasonseg" / "val"
    _jpg(rs / "scene_a.jpg", 30, 25, 7)
    (rs / "scene_a.json").write_text(
        json.dumps(
            {
                "text": ["the thing you would sit on", "where can I rest?"],
                "is_sentence": True,
                "shapes": [
                    {
                        "label": "target",
                        "points": [[10, 10], [20, 10], [20, 20], [10, 20]],
                        "shape_type": "polygon",
                    },
                    {
                        "label": "ignore",
                        "points": [[12, 12], [15, 12], [15, 15], [12, 15]],
                        "shape_type": "polygon",
                    },
                    {
                        "label": "target",
                        "points": [[0, 0], [3, 0], [3, 3], [0, 3]],
                        "shape_type": "polygon",
                    },
                    {"label": "flag", "points": [[0, 0]], "shape_type": "polygon"},
                ],
            }
        )
    )
    _jpg(rs / "scene_b.jpg", 16, 16, 8)
    (rs / "scene_b.json").write_text(
        json.dumps({"text": ["nothing here"], "is_sentence": False, "shapes": []})
    )
    return root


@pytest.fixture(scope="session")
def tiny_vlm_path(tmp_path_factory):
    from genseg_lib.models.build import build_tiny_qwen3vl

    return build_tiny_qwen3vl(tmp_path_factory.mktemp("tiny-qwen3vl"))


@pytest.fixture(scope="session")
def tiny_vlm(tiny_vlm_path):
    from genseg_lib.models.vlm import load_vlm

    return load_vlm(tiny_vlm_path, device="cpu")
