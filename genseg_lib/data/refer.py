"""RefCOCOg (umd) and gRefCOCO (unc) loaders, reading the public files unchanged.

Layout under one data root, as the ``refer`` / ``grefer`` APIs (and ReLA, LISA, Seg-Zero)
expect::

    DATA_ROOT/refcocog/refs(umd).p           pickle: list of refs
    DATA_ROOT/refcocog/instances.json        COCO images, annotations, categories
    DATA_ROOT/grefcoco/grefs(unc).json       (or grefs(unc).p)
    DATA_ROOT/grefcoco/instances.json
    DATA_ROOT/images/train2014/COCO_train2014_%012d.jpg

One `Sample` per sentence. Like grefer/ReLA, ``iscrowd`` annotations are skipped and polygons
with fewer than 3 points dropped; segmentations may be polygons, compressed RLE or
uncompressed RLE.
"""

from __future__ import annotations

import json
import logging
import pickle
import re
from pathlib import Path
from typing import Any

from pycocotools import mask as mask_utils

from genseg_lib.data.sample import DataError, Sample
from genseg_lib.masks import RLE, valid_polygon

LOG = logging.getLogger(__name__)

SOURCES = {
    "refcocog": "refcocog.zip of the refer project (github.com/lichengunc/refer), umd split",
    "grefcoco": "the gRefCOCO release of ReLA (github.com/henghuiding/gRefCOCO)",
}
IMAGE_DIR = Path("images") / "train2014"
# compressed COCO RLE: 6-bit groups written as the characters 48 ('0') to 111 ('o')
RLE_ALPHABET = re.compile(r"[0-o]+")


def _missing(path: Path, dataset: str) -> DataError:
    return DataError(
        f"{dataset}: {path} not found. Expected the layout DATA_ROOT/{path.parent.name}/"
        f"{path.name}; get it from {SOURCES[dataset]} and unpack it under the data root."
    )


def _read_refs(candidates: list[Path], dataset: str) -> list[dict]:
    for path in candidates:
        if path.is_file():
            try:
                if path.suffix == ".p":
                    with path.open("rb") as fh:
                        refs = pickle.load(fh)
                else:
                    refs = json.loads(path.read_text())
            except (
                pickle.UnpicklingError,
                json.JSONDecodeError,
                EOFError,
                UnicodeDecodeError,
            ) as exc:
                raise DataError(f"{dataset}: cannot read {path}: {exc}") from exc
            if not isinstance(refs, list):
                raise DataError(f"{dataset}: {path} holds a {type(refs).__name__}, not a ref list")
            for i, ref in enumerate(refs):
                if not isinstance(ref, dict):
                    raise DataError(
                        f"{dataset}: {path} entry {i} is a {type(ref).__name__}, not a ref object"
                    )
            return refs
    raise _missing(candidates[0], dataset)


class CocoIndex:
    """images and annotations of a COCO ``instances.json``, by id, with RLE conversion."""

    def __init__(self, path: Path, dataset: str):
        if not path.is_file():
            raise _missing(path, dataset)
        try:
            coco = json.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as exc:
            raise DataError(f"{dataset}: {path} is not UTF-8 text: {exc}") from exc
        except json.JSONDecodeError as exc:
            raise DataError(f"{dataset}: {path} is not valid JSON: {exc}") from exc
        if not isinstance(coco, dict):
            raise DataError(f"{dataset}: {path} holds a {type(coco).__name__}, not a COCO object")
        for key in ("images", "annotations"):
            if not isinstance(coco.get(key), list):
                raise DataError(f"{dataset}: {path} has no '{key}' list")
        self.path = path
        self.dataset = dataset
        self.images = self._by_id(coco["images"], "image")
        self.anns = self._by_id(coco["annotations"], "annotation")
        self._rle_cache: dict[int, RLE] = {}

    def _by_id(self, entries: list, kind: str) -> dict[int, dict]:
        out = {}
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or not _is_int(entry.get("id")):
                raise DataError(f"{self.dataset}: {self.path} {kind} entry {i} has no integer 'id'")
            out[entry["id"]] = entry
        return out

    def image(self, image_id: int, record: str) -> dict:
        """The image entry ``image_id``, checked: positive integer ``height`` and ``width``."""
        if image_id not in self.images:
            raise DataError(
                f"{self.dataset}: {record} refers to image {image_id}, not in {self.path}"
            )
        img = self.images[image_id]
        for key in ("height", "width"):
            if not _is_int(img.get(key)) or img[key] <= 0:
                raise DataError(
                    f"{self.dataset}: {self.path} image {image_id}: '{key}' is "
                    f"{img.get(key)!r:.40}, expected a positive integer"
                )
        if "file_name" in img and not isinstance(img["file_name"], str):
            raise DataError(
                f"{self.dataset}: {self.path} image {image_id}: 'file_name' is not text"
            )
        return img

    def ann_rle(self, ann_id: int, record: str) -> RLE | None:
        """Compressed RLE (``counts`` str) of one annotation; None for an ``iscrowd`` one."""
        if ann_id in self._rle_cache:
            return self._rle_cache[ann_id]
        if ann_id not in self.anns:
            raise DataError(
                f"{self.dataset}: {record} refers to annotation {ann_id}, not in {self.path}"
            )
        ann = self.anns[ann_id]
        if ann.get("iscrowd", 0):
            return None
        if not _is_int(ann.get("image_id")):
            raise DataError(f"{self.dataset}: {self.path} annotation {ann_id} has no 'image_id'")
        img = self.image(ann["image_id"], f"annotation {ann_id}")
        rle = segmentation_to_rle(
            ann.get("segmentation"), img["height"], img["width"], f"{self.path} annotation {ann_id}"
        )
        self._rle_cache[ann_id] = rle
        return rle


def segmentation_to_rle(seg: Any, height: int, width: int, where: str) -> RLE:
    """COCO segmentation (polygons, compressed or uncompressed RLE) -> compressed RLE."""
    if isinstance(seg, list):
        polys = []
        for i, poly in enumerate(seg):
            if not isinstance(poly, list) or not all(isinstance(v, (int, float)) for v in poly):
                raise DataError(f"{where}: polygon {i} is not a flat list of numbers")
            if len(poly) % 2:
                raise DataError(f"{where}: polygon {i} has an odd number of coordinates")
            if valid_polygon(poly):
                polys.append(poly)
            else:
                LOG.debug("%s: dropping polygon %d with fewer than 3 points", where, i)
        if not polys:
            raise DataError(f"{where}: no polygon with at least 3 points")
        rle = mask_utils.merge(mask_utils.frPyObjects(polys, height, width))
    elif isinstance(seg, dict) and "counts" in seg and "size" in seg:
        if not isinstance(seg["size"], list) or list(seg["size"]) != [height, width]:
            raise DataError(
                f"{where}: RLE size {seg['size']!r:.40} differs from image {height}x{width}"
            )
        counts = seg["counts"]
        if isinstance(counts, bytes):
            counts = counts.decode("ascii", errors="replace")
        if isinstance(counts, list):
            if not all(_is_int(c) and c >= 0 for c in counts) or sum(counts) != height * width:
                raise DataError(
                    f"{where}: uncompressed RLE counts must be non-negative integers adding up "
                    f"to {height}*{width}"
                )
            rle = mask_utils.frPyObjects(seg, height, width)
        elif isinstance(counts, str) and RLE_ALPHABET.fullmatch(counts):
            rle = {"size": seg["size"], "counts": counts}
        else:
            raise DataError(f"{where}: RLE counts {counts!r:.40} are not a COCO RLE string")
    else:
        raise DataError(f"{where}: segmentation is neither polygons nor RLE")
    counts = rle["counts"]
    return {
        "size": [height, width],
        "counts": counts.decode() if isinstance(counts, bytes) else counts,
    }


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _field(ref: dict, key: str, kinds: tuple[type, ...], record: str) -> Any:
    """``ref[key]``, which must be present and of one of ``kinds``; else a named error."""
    if key not in ref:
        raise DataError(f"{record}: no '{key}'")
    value = ref[key]
    if isinstance(value, bool) or not isinstance(value, kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise DataError(
            f"{record}: '{key}' is a {type(value).__name__} ({value!r:.40}), expected {names}"
        )
    return value


def _check_split(refs: list[dict], split: str, dataset: str, path: Path) -> None:
    splits = sorted({str(r.get("split")) for r in refs})
    if split not in splits:
        raise DataError(f"{dataset}: unknown split {split!r} in {path}; it has {splits}")


def _image_path(root: Path, img: dict) -> str:
    name = img.get("file_name") or f"COCO_train2014_{int(img['id']):012d}.jpg"
    return str(root / IMAGE_DIR / name)


def _sentences(ref: dict, record: str) -> list[dict]:
    """The ref's sentences, each checked: an object with ``sent`` text and a ``sent_id``."""
    sents = ref.get("sentences")
    if not isinstance(sents, list) or not sents:
        raise DataError(f"{record}: no sentences")
    for i, sent in enumerate(sents):
        where = f"{record} sentence {i}"
        if not isinstance(sent, dict):
            raise DataError(f"{where}: a {type(sent).__name__}, not an object")
        _field(sent, "sent", (str,), where)
        _field(sent, "sent_id", (int, str), where)
    return sents


def load_refcocog(root: Path | str, split: str) -> list[Sample]:
    """RefCOCOg (umd split): one sample per sentence, one instance per ref."""
    root = Path(root)
    refs_path = root / "refcocog" / "refs(umd).p"
    refs = _read_refs([refs_path], "refcocog")
    coco = CocoIndex(root / "refcocog" / "instances.json", "refcocog")
    _check_split(refs, split, "refcocog", refs_path)
    samples = []
    for ref in refs:
        if ref.get("split") != split:
            continue
        record = f"refcocog: {refs_path} ref {ref.get('ref_id')}"
        _field(ref, "ref_id", (int, str), record)
        img = coco.image(_field(ref, "image_id", (int,), record), record)
        rle = coco.ann_rle(_field(ref, "ann_id", (int,), record), record)
        if rle is None:
            raise DataError(f"{record}: its annotation {ref['ann_id']} is a crowd region")
        for sent in _sentences(ref, record):
            samples.append(
                Sample(
                    sample_id=f"refcocog/{split}/{ref['ref_id']}/{sent['sent_id']}",
                    query=sent["sent"],
                    gt_masks=[rle],
                    no_target=False,
                    width=int(img["width"]),
                    height=int(img["height"]),
                    source={
                        "dataset": "refcocog",
                        "split": split,
                        "ref_id": ref["ref_id"],
                        "ann_id": ref["ann_id"],
                        "image_id": ref["image_id"],
                        "sent_id": sent["sent_id"],
                    },
                    image_path=_image_path(root, img),
                    query_type="single",
                )
            )
    return samples


def load_grefcoco(root: Path | str, split: str) -> list[Sample]:
    """gRefCOCO (unc split): multi-target and no-target refs, one sample per sentence."""
    root = Path(root)
    folder = root / "grefcoco"
    candidates = [folder / "grefs(unc).json", folder / "grefs(unc).p"]
    refs = _read_refs(candidates, "grefcoco")
    refs_path = next(p for p in candidates if p.is_file())
    coco = CocoIndex(folder / "instances.json", "grefcoco")
    _check_split(refs, split, "grefcoco", refs_path)
    samples, skipped = [], 0
    for ref in refs:
        if ref.get("split") != split:
            continue
        record = f"grefcoco: {refs_path} ref {ref.get('ref_id')}"
        _field(ref, "ref_id", (int, str), record)
        img = coco.image(_field(ref, "image_id", (int,), record), record)
        ann_id = _field(ref, "ann_id", (int, list), record)
        ann_ids = ann_id if isinstance(ann_id, list) else [ann_id]
        if not all(_is_int(a) for a in ann_ids):
            raise DataError(f"{record}: 'ann_id' {ann_id!r:.60} is not a list of integers")
        no_target = bool(ref.get("no_target", False)) or ann_ids == [-1]
        if no_target and ann_ids not in ([-1], []):
            raise DataError(f"{record}: no_target but ann_id {ann_ids}")
        if -1 in ann_ids and not no_target:
            raise DataError(f"{record}: ann_id {ann_ids} mixes -1 (no target) with annotations")
        rles = [] if no_target else [coco.ann_rle(a, record) for a in ann_ids]
        rles = [r for r in rles if r is not None]
        if not no_target and not rles:
            skipped += 1  # every referred annotation is a crowd region: nothing to segment
            continue
        for sent in _sentences(ref, record):
            samples.append(
                Sample(
                    sample_id=f"grefcoco/{split}/{ref['ref_id']}/{sent['sent_id']}",
                    query=sent["sent"],
                    gt_masks=rles,
                    no_target=no_target,
                    width=int(img["width"]),
                    height=int(img["height"]),
                    source={
                        "dataset": "grefcoco",
                        "split": split,
                        "ref_id": ref["ref_id"],
                        "ann_id": ann_ids,
                        "image_id": ref["image_id"],
                        "sent_id": sent["sent_id"],
                    },
                    image_path=_image_path(root, img),
                    query_type="no_target"
                    if no_target
                    else ("multi" if len(rles) > 1 else "single"),
                )
            )
    if skipped:
        LOG.warning(
            "grefcoco/%s: skipped %d refs whose annotations are all crowd regions", split, skipped
        )
    return samples
