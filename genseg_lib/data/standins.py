"""Stand-in datasets in the public formats, written from SynthRef scenes, for the
``paper-dryrun`` profile: the paper's loaders, notebooks and branches run end to end on them
before anyone downloads the real data (docs/method.md §6). Nothing here is a result.

Layout (as `refer.py` and `reasonseg.py` read it)::

    ROOT/images/train2014/COCO_train2014_%012d.jpg     every scene, one COCO-style image id
    ROOT/refcocog/refs(umd).p + instances.json         single-target queries (train/val/test)
    ROOT/grefcoco/grefs(unc).json + instances.json     all query types; no-target refs have
                                                       ann_id [-1] (train/val/testA/testB)
    ROOT/reasonseg/{train,val,test}/<name>.jpg + .json labelme polygons of the targets
"""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from genseg_lib.data.synthref.dataset import generate_split
from genseg_lib.data.synthref.queries import program_text
from genseg_lib.data.synthref.scenes import SHAPES, SynthRefConfig
from genseg_lib.masks import box_from_mask, rle_encode

MARKER = "standins.json"
# SynthRef split -> the splits it stands in for
GREFCOCO_SPLITS = {"train": ["train"], "val": ["val"], "test": ["testA", "testB"]}


def _scene_records(
    scenes: list[dict[str, Any]], split: str, first_image_id: int
) -> tuple[list[dict], list[dict], list[tuple[int, dict, list[tuple[str, str, list[int]]]]]]:
    """COCO images and annotations of ``scenes`` and, per scene, its image id, scene and
    queries as ``(type, text, annotation ids)``."""
    images, anns, per_scene = [], [], []
    for k, scene in enumerate(scenes):
        image_id = first_image_id + k
        h, w = scene["image"].shape[:2]
        images.append(
            {
                "id": image_id,
                "width": w,
                "height": h,
                "file_name": f"COCO_train2014_{image_id:012d}.jpg",
            }
        )
        ann_ids = []
        for j, (obj, mask) in enumerate(zip(scene["objects"], scene["masks"], strict=True)):
            x1, y1, x2, y2 = box_from_mask(mask)
            ann_id = image_id * 100 + j
            ann_ids.append(ann_id)
            anns.append(
                {
                    "id": ann_id,
                    "image_id": image_id,
                    "category_id": SHAPES.index(obj.shape) + 1,
                    "iscrowd": 0,
                    "segmentation": rle_encode(mask),
                    "area": int(mask.sum()),
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                }
            )
        queries = [
            (kind, program_text(program), [ann_ids[t] for t in targets])
            for kind, program, targets in scene["queries"]
        ]
        per_scene.append((image_id, scene, queries))
    return images, anns, per_scene


def _sentence(text: str, sent_id: int) -> dict[str, Any]:
    return {"sent": text, "raw": text, "tokens": text.split(), "sent_id": sent_id}


def _polygons(mask: np.ndarray) -> list[list[list[float]]]:
    """Outer contours of a mask as labelme polygons (points ``[x, y]``, at least 3)."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return [c[:, 0, :].astype(float).tolist() for c in contours if len(c) >= 3]


def write_native_standins(
    root: Path | str, scenes_per_split: int = 12, seed: int = 0, image_size: int = 160
) -> Path:
    """Write the three datasets under ``root`` from SynthRef scenes (each split its own
    scenes; two queries per scene). Idempotent: a folder written with the same settings is
    kept as it is."""
    root = Path(root)
    settings = {"scenes_per_split": scenes_per_split, "seed": seed, "image_size": image_size}
    marker = root / MARKER
    if marker.is_file() and json.loads(marker.read_text()) == settings:
        return root
    cfg = SynthRefConfig(image_size=image_size)
    image_dir = root / "images" / "train2014"
    image_dir.mkdir(parents=True, exist_ok=True)
    images, anns, refs, grefs = [], [], [], []
    sent_id = ref_id = 0
    for s, split in enumerate(("train", "val", "test")):
        scenes = generate_split(split, scenes_per_split * cfg.queries_per_scene, seed, cfg)
        split_images, split_anns, per_scene = _scene_records(scenes, split, 1 + 100_000 * s)
        images += split_images
        anns += split_anns
        rs_dir = root / "reasonseg" / split
        rs_dir.mkdir(parents=True, exist_ok=True)
        for n, (image_id, scene, queries) in enumerate(per_scene):
            jpeg = io.BytesIO()
            Image.fromarray(scene["image"]).save(jpeg, format="JPEG", quality=95)
            (image_dir / f"COCO_train2014_{image_id:012d}.jpg").write_bytes(jpeg.getvalue())
            for _kind, text, targets in queries:
                sentence = _sentence(text, sent_id)
                if len(targets) == 1:
                    refs.append(
                        {
                            "ref_id": ref_id,
                            "ann_id": targets[0],
                            "image_id": image_id,
                            "split": split,
                            "category_id": 1,
                            "sent_ids": [sent_id],
                            "sentences": [sentence],
                        }
                    )
                grefs.append(
                    {
                        "ref_id": ref_id,
                        "ann_id": targets or [-1],
                        "category_id": [1] * len(targets) or [-1],
                        "image_id": image_id,
                        "split": GREFCOCO_SPLITS[split][n % len(GREFCOCO_SPLITS[split])],
                        "no_target": not targets,
                        "sent_ids": [sent_id],
                        "sentences": [sentence],
                    }
                )
                sent_id += 1
                ref_id += 1
            # ReasonSeg: one image per scene, its first query, targets as polygons
            kind, text, targets = queries[0]
            shapes = [
                {"label": "target", "points": poly, "shape_type": "polygon"}
                for t in targets
                for poly in _polygons(scene["masks"][t - image_id * 100])
            ]
            name = f"{split}_{n:04d}"
            (rs_dir / f"{name}.jpg").write_bytes(jpeg.getvalue())
            (rs_dir / f"{name}.json").write_text(
                json.dumps({"text": [text], "is_sentence": kind == "reasoning", "shapes": shapes})
            )
    coco = {
        "images": images,
        "annotations": anns,
        "categories": [{"id": i + 1, "name": s} for i, s in enumerate(SHAPES)],
    }
    for name, ref_file, payload in (
        ("refcocog", "refs(umd).p", None),
        ("grefcoco", "grefs(unc).json", json.dumps(grefs)),
    ):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "instances.json").write_text(json.dumps(coco))
        if payload is None:
            (folder / ref_file).write_bytes(pickle.dumps(refs))
        else:
            (folder / ref_file).write_text(payload)
    marker.write_text(json.dumps(settings))
    return root
