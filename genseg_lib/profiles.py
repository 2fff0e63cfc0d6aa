"""Run profiles: ``smoke`` (SynthRef, tiny models, any laptop) and ``paper`` (real weights/data).

A profile names the data root, the prompter, the segmenter and the evaluation/training sets
the notebooks use. `prepare` makes the smoke profile's inputs offline (SynthRef on disk, the
tiny model); the paper profile only checks that its data root exists.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from genseg_lib.stage0.prompter import ANSWER_TOKENS

LOG = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("GENSEG_CACHE", REPO / ".cache"))
# the shipped stage-0 SynthRef prompter (re-create: the commands under "invocations" in its
# warmstart.json, or `make warmstart`)
SYNTHREF_PROMPTER = REPO / "checkpoints" / "synthref-prompter"


@dataclass
class Profile:
    """Everything a notebook needs to know about where models and data come from."""

    name: str
    data_root: Path
    model: str  # the baseline prompter (hub id or folder)
    segmenter: str  # classical | sam2:ID | sam2-random:ID
    eval_sets: list[str] = field(default_factory=list)  # NAME:SPLIT
    train_sets: dict[str, str] = field(default_factory=dict)  # recipe -> NAME:SPLIT
    eval_limit: int | None = None
    synthref_samples: int = 0  # smoke: SynthRef size to generate
    max_new_tokens: int = 256  # greedy decoding length in evaluation and the demo
    max_completion_length: int = 512  # sampled completion length in GRPO
    coord_frame: str | None = None  # None: the model family's frame (docs/method.md §2)

    @property
    def is_smoke(self) -> bool:
        return self.name == "smoke"


def smoke_profile(cache: Path = CACHE) -> Profile:
    """SynthRef, the shipped SynthRef prompter (stage-0 warm start, standing in for Qwen3-VL
    Instruct) and the GrabCut segmenter: no download, a 2-core CPU."""
    return Profile(
        name="smoke",
        data_root=cache / "data",
        model=str(SYNTHREF_PROMPTER),
        segmenter="classical",
        eval_sets=["synthref:val"],
        train_sets={"genseg-r1": "synthref:train", "genseg-r1-g": "synthref:train"},
        eval_limit=None,
        synthref_samples=4000,  # val: 700 queries (447 single-target, 85 multi, 168 no-target)
        max_new_tokens=ANSWER_TOKENS,
        max_completion_length=ANSWER_TOKENS,
    )


def paper_profile(data_root: Path | None = None) -> Profile:
    """The paper's setting: Qwen3-VL-8B Instruct, SAM 2.1 large, RefCOCOg/gRefCOCO/ReasonSeg."""
    root = data_root or Path(os.environ.get("GENSEG_DATA_ROOT", REPO / "data"))
    return Profile(
        name="paper",
        data_root=root,
        model="Qwen/Qwen3-VL-8B-Instruct",
        segmenter="sam2:facebook/sam2.1-hiera-large",
        eval_sets=["refcocog:val", "grefcoco:val", "reasonseg:test"],
        train_sets={"genseg-r1": "refcocog:train", "genseg-r1-g": "grefcoco:train"},
    )


def get_profile(name: str, **overrides: Any) -> Profile:
    """A profile by name with fields overridden (notebook parameters); None values ignored."""
    base = {"smoke": smoke_profile, "paper": paper_profile}
    if name not in base:
        raise ValueError(f"unknown profile {name!r}; expected one of {sorted(base)}")
    profile = base[name]()
    clean = {k: v for k, v in overrides.items() if v is not None}
    if "data_root" in clean:
        clean["data_root"] = Path(clean["data_root"])
    return replace(profile, **clean)


def _synthref_matches(path: Path, profile: Profile, seed: int) -> bool:
    """Whether a SynthRef folder on disk is the one this profile asks for (generator version,
    size and seed)."""
    from genseg_lib.data.synthref import GENERATOR_VERSION

    if not path.is_file():
        return False
    data = json.loads(path.read_text())
    return (
        data.get("generator") == GENERATOR_VERSION
        and data.get("seed") == seed
        and len(data.get("samples", [])) == profile.synthref_samples
    )


def prepare(profile: Profile, seed: int = 0) -> Profile:
    """Make the smoke inputs if missing (SynthRef on disk, the tiny model); check paper data."""
    if profile.is_smoke:
        from genseg_lib.data.synthref import ANNOTATION_FILE, write_synthref
        from genseg_lib.models.build import build_tiny_qwen3vl

        if not _synthref_matches(profile.data_root / "synthref" / ANNOTATION_FILE, profile, seed):
            write_synthref(profile.data_root, profile.synthref_samples, seed=seed)
        model = Path(profile.model)
        if model == CACHE / "tiny-qwen3vl" and not (model / "config.json").is_file():
            build_tiny_qwen3vl(model)
        if model == SYNTHREF_PROMPTER and not (model / "config.json").is_file():
            raise FileNotFoundError(
                f"the SynthRef prompter checkpoint is missing at {model}; re-create it with "
                "`make warmstart` (README)"
            )
    elif not profile.data_root.is_dir():
        raise FileNotFoundError(
            f"paper profile: data root {profile.data_root} not found; set GENSEG_DATA_ROOT or the "
            "notebook's data_root parameter (layout: README, 'Real weights and data')"
        )
    return profile
