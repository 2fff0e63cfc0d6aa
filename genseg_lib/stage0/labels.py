"""What stage 0 is supervised on — the labels a box-grounding dataset such as RefCOCO holds,
never what the segmenter prefers (docs/method.md §7).

``grounding`` (the stand-in for Qwen3-VL Instruct's pretraining): the tight box of a referred
object and two points placed from that box alone (`box_centre_points`); for a multi-target
query only the first referred object — the first-named for a conjunction ("the red circle and
the blue star"), the one drawn first in the scene otherwise — except for a small deterministic
share of queries that list every target, in the same order; for a no-target query, the box of its
near miss (the scene object that fits the most words of the description, as a grounding model
that always answers with a box would pick), except for a small deterministic share answered
``[]``. GRPO then has to learn interior points, "find all" and abstention from rewards.

``oracle`` (reference B, privileged labels the paper never uses): every referred object with
its tight box and two interior points from the GT mask (docs/method.md §3).
"""

from __future__ import annotations

import hashlib

from genseg_lib.answer import Instance, format_answer
from genseg_lib.data import Sample
from genseg_lib.segment.oracle import box_centre_instances, box_centre_points, oracle_instances

LABEL_KINDS = ("grounding", "oracle")


# Bumped when a rule changes which label a sample gets; warm-start runs record it, so a run
# started under other rules is refused rather than continued (version 1: a CRC-32 of ids that
# repeated every step, which tied the choice to the batch position; version 2: the first
# object drawn in the scene even for a conjunction; docs/method.md §7).
LABEL_RULES_VERSION = 3


def in_share(sample: Sample, share: float) -> bool:
    """Whether ``sample`` falls in a fixed share of samples, chosen by a hash of its id (the
    same sample, the same choice): which multi-target labels list every target, which
    no-target labels abstain. BLAKE2b spreads ids that differ in a digit evenly over [0, 1),
    which a checksum such as CRC-32 does not."""
    digest = hashlib.blake2b(sample.sample_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < share


def near_miss_instance(sample: Sample) -> Instance:
    """The box-centre instance of a no-target sample's near miss (SynthRef records it)."""
    box = sample.source.get("near_miss_box")
    if box is None:
        raise ValueError(
            f"{sample.sample_id}: a no-target grounding label needs the near miss's box "
            "(source['near_miss_box'], written by SynthRef's generator)"
        )
    box = tuple(float(v) for v in box)
    return Instance(box=box, points=box_centre_points(box))


def referred_order(sample: Sample) -> list[int]:
    """Indices into ``sample.gt_masks`` in the order the query refers to them: a conjunction's
    phrase order where SynthRef records it (``source["phrase_targets"]``), else as stored."""
    named = sample.source.get("phrase_targets")
    if named is None:
        return list(range(len(sample.gt_masks)))
    targets = list(sample.source.get("targets", []))
    if sorted(named) != sorted(targets) or len(targets) != len(sample.gt_masks):
        raise ValueError(
            f"{sample.sample_id}: source['phrase_targets'] {named} does not reorder "
            f"source['targets'] {targets} ({len(sample.gt_masks)} masks)"
        )
    return [targets.index(t) for t in named]


def label_instances(
    sample: Sample, kind: str, multi_list_share: float, no_target_abstain_share: float = 0.3
) -> list[Instance]:
    """The instances the supervised answer for ``sample`` holds (empty for an abstention)."""
    if kind not in LABEL_KINDS:
        raise ValueError(f"unknown label kind {kind!r}; expected one of {LABEL_KINDS}")
    masks = sample.instance_masks()
    if kind == "oracle":
        return oracle_instances(masks)
    if sample.no_target:
        return [] if in_share(sample, no_target_abstain_share) else [near_miss_instance(sample)]
    instances = box_centre_instances(masks)
    instances = [instances[i] for i in referred_order(sample)]
    if len(instances) > 1 and not in_share(sample, multi_list_share):
        instances = instances[:1]
    return instances


def answer_text(sample: Sample, instances: list[Instance], coord_frame: str = "norm1000") -> str:
    """The supervised answer text for ``instances``: the query restated as reasoning, then the
    instances in ``coord_frame``."""
    return format_answer(instances, sample.image_size, coord_frame=coord_frame, think=sample.query)


def label_text(
    sample: Sample,
    kind: str = "grounding",
    coord_frame: str = "norm1000",
    multi_list_share: float = 0.5,
    no_target_abstain_share: float = 0.3,
) -> str:
    """The supervised answer text of ``sample``'s label (`label_instances`, `answer_text`)."""
    instances = label_instances(sample, kind, multi_list_share, no_target_abstain_share)
    return answer_text(sample, instances, coord_frame)
