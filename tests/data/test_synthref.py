"""SynthRef: ground truth checked against the scene by an independent reading of each query."""

import re
import time
from collections import Counter

import numpy as np
import pytest

from genseg_lib.data import load_dataset
from genseg_lib.data.synthref import (
    COLOUR_PROPERTIES,
    COLOURS,
    QUERY_TYPES,
    SHAPE_PROPERTIES,
    SHAPES,
    SynthRefConfig,
    generate_split,
    program_text,
    scene_objects,
    synthref_samples,
    write_synthref,
)
from genseg_lib.masks import rle_decode

CFG = SynthRefConfig()
MARGIN = CFG.relation_margin * CFG.image_size


def parse_desc(words):
    """{'size','colour','shape'} from words like ['small', 'red', 'triangles']."""
    desc = {"size": None, "colour": None, "shape": None}
    for w in words:
        w1 = w[:-1] if w.endswith("s") and w[:-1] in SHAPES else w
        if w in ("small", "large"):
            desc["size"] = w
        elif w in COLOURS:
            desc["colour"] = w
        elif w1 in SHAPES:
            desc["shape"] = w1
        else:
            assert w in ("shape", "shapes"), f"unexpected word {w!r}"
    return desc


def fits(obj, desc):
    return all(desc[k] is None or getattr(obj, k) == desc[k] for k in desc)


def read_query(text, objects):
    """Target indices of a query, read from its words (independent of the generator)."""
    if text.startswith("all "):
        d = parse_desc(text[4:].split())
        return [i for i, o in enumerate(objects) if fits(o, d)]
    if " and the " in text and not text.startswith("the object that"):
        out = []
        for part in text.split(" and "):
            (hit,) = read_query(part, objects)
            out.append(hit)
        return sorted(out)
    if text.startswith("the object that "):
        d = {"size": None, "colour": None, "shape": None}
        for c, phrase in COLOUR_PROPERTIES.items():
            if f"is {phrase}" in text:
                d["colour"] = c
        for s, phrase in SHAPE_PROPERTIES.items():
            if f"has {phrase}" in text:
                d["shape"] = s
        assert d["colour"] or d["shape"], text
        return [i for i, o in enumerate(objects) if fits(o, d)]
    m = re.fullmatch(r"the (.+?) (left of|right of|above|below) the (.+)", text)
    if m:
        d, rel, a = parse_desc(m.group(1).split()), m.group(2), parse_desc(m.group(3).split())
        (anchor,) = [i for i, o in enumerate(objects) if fits(o, a)]
        ax, ay = objects[anchor].cx, objects[anchor].cy
        ok = {
            "left of": lambda o: o.cx < ax - MARGIN,
            "right of": lambda o: o.cx > ax + MARGIN,
            "above": lambda o: o.cy < ay - MARGIN,
            "below": lambda o: o.cy > ay + MARGIN,
        }[rel]
        return [i for i, o in enumerate(objects) if i != anchor and fits(o, d) and ok(o)]
    m = re.fullmatch(r"the (largest|smallest|leftmost|rightmost|topmost|bottommost) (.+)", text)
    if m:
        d = parse_desc(m.group(2).split())
        cands = [i for i, o in enumerate(objects) if fits(o, d)]
        assert len(cands) >= 2, text
        key = {
            "largest": lambda i: -objects[i].area,
            "smallest": lambda i: objects[i].area,
            "leftmost": lambda i: objects[i].cx,
            "rightmost": lambda i: -objects[i].cx,
            "topmost": lambda i: objects[i].cy,
            "bottommost": lambda i: -objects[i].cy,
        }[m.group(1)]
        ranked = sorted(cands, key=key)
        a, b = abs(key(ranked[0])), abs(key(ranked[1]))
        if m.group(1) in ("largest", "smallest"):
            assert max(a, b) >= CFG.ordinal_margin * min(a, b), text  # a clear winner
        else:
            assert abs(a - b) > MARGIN, text
        return [ranked[0]]
    assert text.startswith("the "), text
    d = parse_desc(text[4:].split())
    return [i for i, o in enumerate(objects) if fits(o, d)]


@pytest.fixture(scope="module")
def scenes():
    return generate_split("val", 400, seed=3)


def test_every_query_matches_its_scene(scenes):
    n = 0
    for scene in scenes:
        objects = scene["objects"]
        for kind, program, targets in scene["queries"]:
            text = program_text(program)
            assert read_query(text, objects) == sorted(targets), (scene["scene_id"], text)
            if kind == "no_target":
                assert targets == []
            elif kind == "multi":
                assert len(targets) >= 2
            else:
                assert len(targets) == 1
            n += 1
    assert n == 400


def test_masks_are_the_visible_pixels_of_their_objects(scenes):
    for scene in scenes[:40]:
        img = scene["image"].astype(int)
        masks = scene["masks"]
        total = np.sum(masks, axis=0)
        assert total.max() <= 1  # visible masks never overlap
        for obj, mask in zip(scene["objects"], masks, strict=True):
            assert mask.sum() == obj.area > 0
            mean = img[mask].mean(axis=0)
            # the pixels under a mask carry that object's colour (jitter +-12, shade sd 4)
            assert np.abs(mean - np.array(COLOURS[obj.colour])).max() < 16, obj


def test_query_types_and_mix():
    samples = synthref_samples("train", 600, seed=0)
    types = {t: sum(s.query_type == t for s in samples) for t in QUERY_TYPES}
    assert set(types) == set(QUERY_TYPES) and min(types.values()) >= 40, types
    for s in samples:
        assert s.no_target == (s.query_type == "no_target")
        assert (len(s.gt_masks) >= 2) == (s.query_type == "multi")


def test_val_is_rich_in_no_target_queries_and_train_is_unchanged():
    """The smoke val split (700 of 4000) holds >= 150 no-target and >= 400 single-target
    queries; its own mix leaves train's scenes and queries exactly as the default mix makes."""
    val = synthref_samples("val", 700, seed=0)
    counts = Counter(s.query_type for s in val)
    assert counts["no_target"] >= 150, counts
    assert sum(counts[t] for t in ("attribute", "spatial", "ordinal", "reasoning")) >= 400
    plain = SynthRefConfig(split_query_weights={})
    assert [s.query for s in synthref_samples("train", 60, seed=0)] == [
        s.query for s in synthref_samples("train", 60, seed=0, cfg=plain)
    ]
    plain_val = Counter(s.query_type for s in synthref_samples("val", 700, seed=0, cfg=plain))
    assert plain_val["no_target"] < 100, plain_val  # the override is what makes the difference


def test_no_target_queries_are_worded_like_attribute_queries():
    """The words alone must not give a no-target query away: same description styles."""

    def styles(kind):
        return {
            tuple(k for k in ("size", "colour", "shape") if s.source["program"]["desc"].get(k))
            for s in samples
            if s.query_type == kind and s.source["program"]["kind"] == "describe"
        }

    samples = synthref_samples("train", 1500, seed=0)
    assert styles("attribute") == styles("no_target")
    assert len(styles("no_target")) == 5


def test_single_object_scenes_skip_query_types_that_need_two_objects():
    cfg = SynthRefConfig(min_objects=1, max_objects=1, queries_per_scene=2)
    samples = synthref_samples("train", 40, seed=0, cfg=cfg)
    assert samples and {s.query_type for s in samples} <= {
        "attribute",
        "ordinal",
        "reasoning",
        "no_target",
    }


def test_deterministic_and_splits_disjoint():
    a = synthref_samples("val", 50, seed=7)
    b = synthref_samples("val", 50, seed=7)
    assert [s.query for s in a] == [s.query for s in b]
    assert all(np.array_equal(x.image, y.image) for x, y in zip(a, b, strict=True))
    c = synthref_samples("val", 50, seed=8)
    assert [s.query for s in a] != [s.query for s in c]
    hashes = {}
    for split in ("train", "val", "test"):
        hashes[split] = {s.image.tobytes() for s in synthref_samples(split, 100, seed=7)}
    assert not (hashes["train"] & hashes["val"]) and not (hashes["train"] & hashes["test"])
    assert not (hashes["val"] & hashes["test"])


def test_write_and_load_round_trip(tmp_path):
    start = time.perf_counter()
    out = write_synthref(tmp_path, 1000, seed=1)
    elapsed = time.perf_counter() - start
    assert elapsed < 30, f"1,000 samples took {elapsed:.1f} s"
    counts = {s: len(load_dataset("synthref", tmp_path, s)) for s in ("train", "val", "test")}
    assert counts == {"train": 700, "val": 175, "test": 125}
    val = load_dataset("synthref", tmp_path, "val")
    mem = synthref_samples("val", 175, seed=1)
    for disk, m in zip(val, mem, strict=True):
        assert disk.sample_id == m.sample_id and disk.query == m.query
        assert np.array_equal(np.asarray(disk.load_image()), m.image)  # PNG is lossless
        assert [rle_decode(r).sum() for r in disk.gt_masks] == [
            rle_decode(r).sum() for r in m.gt_masks
        ]
    import json

    data = json.loads((out / "annotations.json").read_text())
    objs = scene_objects(data["scenes"][0]["objects"])
    assert objs[0].shape in SHAPES


def test_loader_errors(tmp_path):
    from genseg_lib.data import DataError

    with pytest.raises(DataError, match="python -m genseg_lib.data synthref"):
        load_dataset("synthref", tmp_path, "val")
    write_synthref(tmp_path, 20, seed=0)
    with pytest.raises(DataError, match="unknown split 'dev'"):
        load_dataset("synthref", tmp_path, "dev")


def test_off_centre_scenes_are_a_third_and_named_in_the_source():
    from genseg_lib.data.synthref import CENTRED_SHAPES, OFF_CENTRE_SHAPES

    samples = synthref_samples("train", 1200, seed=3)
    by_scene = {}
    for s in samples:
        by_scene.setdefault(s.source["scene_id"], set()).update(s.source["target_shapes"])
    kinds = [
        "off" if shapes <= set(OFF_CENTRE_SHAPES) else "on"
        for shapes in by_scene.values()
        if shapes
    ]
    assert all(
        set(s.source["target_shapes"]) <= {*CENTRED_SHAPES, *OFF_CENTRE_SHAPES} for s in samples
    )
    assert 0.27 < kinds.count("off") / len(kinds) < 0.43
    assert {t for s in samples for t in s.source["target_shapes"]} >= set(OFF_CENTRE_SHAPES)


def test_no_target_samples_name_their_near_miss():
    """The object a grounding model would box for an absent description: it fits every word
    but the changed one; its visible box is in the record (stage-0 labels use it)."""
    from genseg_lib.data.synthref.queries import near_miss
    from genseg_lib.data.synthref.scenes import SceneObject
    from genseg_lib.masks import box_from_mask

    objs = [
        SceneObject("circle", "red", "small", (10.0, 10.0), 5.0, 0.0),
        SceneObject("circle", "purple", "large", (30.0, 10.0), 9.0, 0.0),
        SceneObject("star", "red", "large", (50.0, 10.0), 9.0, 0.0),
        SceneObject("star", "purple", "small", (70.0, 10.0), 5.0, 0.0),
    ]
    assert (
        near_miss({"shape": "star", "colour": "purple", "size": "large"}, objs) == 1
    )  # tie: first
    assert near_miss({"shape": "star", "colour": "purple", "size": None}, objs) == 3
    assert near_miss({"shape": "ring", "colour": None, "size": "small"}, objs) == 0
    scenes = {s["scene_id"]: s for s in generate_split("val", 300, seed=3)}
    n = 0
    for s in synthref_samples("val", 300, seed=3):
        if not s.no_target:
            assert "near_miss" not in s.source
            continue
        scene = scenes[s.source["scene_id"]]
        desc = s.source["program"]["desc"]
        miss = scene["objects"][s.source["near_miss"]]
        words = [k for k, v in desc.items() if v is not None]
        assert sum(getattr(miss, k) == desc[k] for k in words) == len(words) - 1, s.query
        assert s.source["near_miss_box"] == list(
            box_from_mask(scene["masks"][s.source["near_miss"]])
        )
        n += 1
    assert n >= 20


def test_conjunctions_name_their_targets_in_phrase_order():
    """A conjunction's record lists the object each phrase names, in the text's order (read
    from the text phrase by phrase); ``targets`` stays sorted, the masks follow ``targets``."""
    scenes = {s["scene_id"]: s for s in generate_split("val", 400, seed=3)}
    orders = []
    for s in synthref_samples("val", 400, seed=3):
        if s.source["program"]["kind"] != "and":
            assert "phrase_targets" not in s.source
            continue
        objects = scenes[s.source["scene_id"]]["objects"]
        named = [read_query(part, objects) for part in s.query.split(" and ")]
        assert [n[0] for n in named] == s.source["phrase_targets"], s.query
        assert s.source["targets"] == sorted(s.source["phrase_targets"])
        orders.append(s.source["phrase_targets"] == s.source["targets"])
    assert len(orders) >= 15
    assert 0.2 < np.mean(orders) < 0.8  # phrase order is not scene order
