"""SynthRef: procedural referring-segmentation scenes, the embedded default (docs/method.md §6).

Scenes of coloured shapes on textured backgrounds with exact (occlusion-aware) instance
masks, and templated referring expressions of graded difficulty, each labelled by type:

- ``attribute``  "the small red triangle" (a minimal unique description)
- ``spatial``    "the circle left of the blue square"
- ``ordinal``    "the largest green shape", "the leftmost star"
- ``multi``      "all yellow shapes", "the red square and the blue circle"
- ``no_target``  a described object that is absent ("the purple star", "all orange circles")
- ``reasoning``  a property instead of the name ("the object that has three corners")

Every query stores the *program* that produced it; targets are resolved from the scene by
that program, so ground truth is correct by construction. Deterministic from a seed; each
split draws its scenes from its own random stream, so splits never share an image.
On disk: ``DATA_ROOT/synthref/images/<split>/<scene>.png`` + ``annotations.json``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from genseg_lib.data.sample import DataError, Sample
from genseg_lib.data.synthref.queries import make_queries, near_miss, phrase_targets, program_text
from genseg_lib.data.synthref.scenes import SceneObject, SynthRefConfig, render_scene
from genseg_lib.masks import box_from_mask, rle_encode

LOG = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
ANNOTATION_FILE = "annotations.json"
FORMAT_VERSION = 1
# bumped whenever the same seed would generate different scenes or queries, so cached copies
# are regenerated (2: no-target queries worded like attribute queries; 3: off-centre shapes —
# ring, crescent, arc, cup, corner — in 35 % of scenes; 4: val richer in no-target queries and
# 17.5 % of the queries, train unchanged; 5: no-target records name their near miss; 6:
# conjunction records name their targets in the order the query does)
GENERATOR_VERSION = 6


# ----------------------------------------------------------------------------- datasets


def _split_counts(n: int, fractions: dict[str, float]) -> dict[str, int]:
    total = sum(fractions.values())
    counts = {s: int(round(n * f / total)) for s, f in fractions.items()}
    counts[next(iter(counts))] += n - sum(counts.values())
    return counts


def generate_split(
    split: str, n_samples: int, seed: int, cfg: SynthRefConfig | None = None
) -> list[dict[str, Any]]:
    """Scenes of one split until ``n_samples`` queries exist; records hold in-memory images."""
    cfg = cfg or SynthRefConfig()
    if split not in SPLITS:
        raise ValueError(f"unknown SynthRef split {split!r}; expected one of {SPLITS}")
    if split in cfg.split_query_weights:
        cfg = replace(cfg, query_weights=cfg.split_query_weights[split])
    scenes = []
    n = 0
    scene_idx = 0
    while n < n_samples:
        rng = np.random.default_rng([seed, SPLITS.index(split), scene_idx])
        image, objects, visible = render_scene(rng, cfg)
        queries = make_queries(rng, objects, cfg)[: n_samples - n]
        scenes.append(
            {
                "scene_id": f"{split}_{scene_idx:06d}",
                "image": image,
                "objects": objects,
                "masks": visible,
                "queries": queries,
            }
        )
        n += len(queries)
        scene_idx += 1
    return scenes


def _samples_from_scenes(
    scenes: list[dict[str, Any]], split: str, image_dir: Path | None
) -> list[Sample]:
    samples = []
    for scene in scenes:
        rles = [rle_encode(m) for m in scene["masks"]]
        side = scene["image"].shape[0]
        for q, (kind, program, targets) in enumerate(scene["queries"]):
            extra = {}
            if not targets:  # what a grounding model would box instead (stage-0 labels)
                i = near_miss(program["desc"], scene["objects"])
                extra = {"near_miss": i, "near_miss_box": list(box_from_mask(scene["masks"][i]))}
            named = phrase_targets(program, scene["objects"])
            if named is not None:  # which object each phrase names (stage-0 labels)
                extra = {"phrase_targets": named}
            samples.append(
                Sample(
                    sample_id=f"synthref/{split}/{scene['scene_id']}/{q}",
                    query=program_text(program),
                    gt_masks=[rles[t] for t in targets],
                    no_target=not targets,
                    width=side,
                    height=side,
                    source={
                        "dataset": "synthref",
                        "split": split,
                        "scene_id": scene["scene_id"],
                        "targets": list(targets),
                        "target_shapes": [scene["objects"][t].shape for t in targets],
                        "program": program,
                        **extra,
                    },
                    image_path=None
                    if image_dir is None
                    else str(image_dir / f"{scene['scene_id']}.png"),
                    image=scene["image"] if image_dir is None else None,
                    query_type=kind,
                )
            )
    return samples


def synthref_samples(
    split: str, n_samples: int, seed: int = 0, cfg: SynthRefConfig | None = None
) -> list[Sample]:
    """In-memory SynthRef samples of one split (no files written)."""
    return _samples_from_scenes(generate_split(split, n_samples, seed, cfg), split, None)


def write_synthref(
    root: Path | str, n_samples: int, seed: int = 0, cfg: SynthRefConfig | None = None
) -> Path:
    """Generate all splits under ``root/synthref`` (PNG images + one annotations.json)."""
    cfg = cfg or SynthRefConfig()
    out = Path(root) / "synthref"
    records: dict[str, Any] = {
        "version": FORMAT_VERSION,
        "generator": GENERATOR_VERSION,
        "seed": seed,
        "config": asdict(cfg),
        "scenes": [],
        "samples": [],
    }
    for split, count in _split_counts(n_samples, cfg.split_fractions).items():
        image_dir = out / "images" / split
        image_dir.mkdir(parents=True, exist_ok=True)
        scenes = generate_split(split, count, seed, cfg)
        for scene in tqdm(scenes, desc=f"synthref {split}", leave=False):
            Image.fromarray(scene["image"]).save(image_dir / f"{scene['scene_id']}.png")
            records["scenes"].append(
                {
                    "scene_id": scene["scene_id"],
                    "split": split,
                    "objects": [asdict(o) for o in scene["objects"]],
                }
            )
        for s in _samples_from_scenes(scenes, split, image_dir):
            records["samples"].append(
                {
                    "sample_id": s.sample_id,
                    "split": split,
                    "image": str(Path(s.image_path).relative_to(out)),
                    "width": s.width,
                    "height": s.height,
                    "query": s.query,
                    "query_type": s.query_type,
                    "no_target": s.no_target,
                    "gt_masks": s.gt_masks,
                    "source": s.source,
                }
            )
    (out / ANNOTATION_FILE).write_text(json.dumps(records))
    LOG.info("wrote %d SynthRef samples to %s", len(records["samples"]), out)
    return out


def load_synthref(root: Path | str, split: str) -> list[Sample]:
    """Samples of one split from ``root/synthref/annotations.json`` (see `write_synthref`)."""
    folder = Path(root) / "synthref"
    path = folder / ANNOTATION_FILE
    if not path.is_file():
        raise DataError(
            f"synthref: {path} not found; generate it with "
            f"`python -m genseg_lib.data synthref --out {root} --n 1000 --seed 0`"
        )
    data = json.loads(path.read_text())
    if data.get("version") != FORMAT_VERSION:
        raise DataError(
            f"synthref: {path} has format version {data.get('version')}, expected {FORMAT_VERSION}"
        )
    have = sorted({r["split"] for r in data["samples"]})
    if split not in have:
        raise DataError(f"synthref: unknown split {split!r} in {path}; it has {have}")
    return [
        Sample(
            sample_id=r["sample_id"],
            query=r["query"],
            gt_masks=r["gt_masks"],
            no_target=r["no_target"],
            width=r["width"],
            height=r["height"],
            source=r["source"],
            image_path=str(folder / r["image"]),
            query_type=r["query_type"],
        )
        for r in data["samples"]
        if r["split"] == split
    ]


def scene_objects(records: Iterable[dict[str, Any]]) -> list[SceneObject]:
    """SceneObjects back from their JSON form (annotations.json ``scenes[*].objects``)."""
    return [SceneObject(**{**r, "centre": tuple(r["centre"])}) for r in records]
