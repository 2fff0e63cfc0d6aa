"""Run profiles: ``smoke`` (SynthRef, tiny models, any laptop), ``paper`` (real weights and
data) and ``paper-dryrun`` (the paper profile's code path on stand-ins).

A profile names the data root, the prompter, the segmenter and the evaluation/training sets
the notebooks use. `prepare` makes the smoke and dry-run inputs offline (SynthRef on disk; for
the dry run, stand-in datasets in the public formats and random-initialised models saved as
local folders); the paper profile only checks that its data root exists.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genseg_lib.stage0.prompter import ANSWER_TOKENS

if TYPE_CHECKING:
    from genseg_lib.analysis.experiments import GRPOSettings

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
    sam_image_size: int | None = None  # a reduced SAM input (the dry run's CPU stand-in)
    grpo_steps: int = 100  # GRPO steps per stage in notebook 02
    grpo_generations: int = 8  # sampled answers per prompt (the GRPO group)
    grpo_prompts_per_step: int = 8
    grpo_learning_rate: float | None = None  # both GRPO stages; None: the recipe's (1e-6)
    grpo_beta: float | None = None  # ... and KL weight; None: the recipe's (0.04)
    # stage 2's settings as changes to stage 1's (GRPOSettings field -> value)
    grpo_stage2_changes: dict[str, Any] = field(default_factory=dict)
    control_learning_rate: float = 1e-4  # notebook 02's supervised control A and reference B
    # GRPO, control A and reference B hold the vision tower's weights (docs/method.md §7)
    freeze_vision_tower: bool = False
    grpo_device: str = "auto"  # notebook 02's GRPO runs: auto (CUDA when present), cpu or cuda
    seeds: list[int] = field(default_factory=lambda: [0, 1])  # notebook 02's training seeds

    @property
    def is_smoke(self) -> bool:
        return self.name == "smoke"

    def grpo_settings(
        self,
        *,
        max_steps: int | None = None,
        num_generations: int | None = None,
        prompts_per_step: int | None = None,
        max_completion_length: int | None = None,
        learning_rate: float | None = None,
        beta: float | None = None,
        temperature: float = 1.0,
        device: str | None = None,
    ) -> GRPOSettings:
        """Notebook 02's GRPO settings for both stages: each value given wins, an unset one is
        the profile's; a learning rate or KL weight the profile leaves open stays the recipe's."""
        from genseg_lib.analysis.experiments import GRPOSettings

        def pick(given: Any, default: Any) -> Any:
            return default if given is None else given

        extra: dict[str, Any] = {"coord_frame": self.coord_frame} if self.coord_frame else {}
        if self.sam_image_size:
            extra["sam_image_size"] = self.sam_image_size
        if self.freeze_vision_tower:
            extra["freeze_vision_tower"] = True
        return GRPOSettings(
            max_steps=pick(max_steps, self.grpo_steps),
            num_generations=pick(num_generations, self.grpo_generations),
            prompts_per_step=pick(prompts_per_step, self.grpo_prompts_per_step),
            max_completion_length=pick(max_completion_length, self.max_completion_length),
            learning_rate=pick(learning_rate, self.grpo_learning_rate),
            beta=pick(beta, self.grpo_beta),
            temperature=temperature,
            device=pick(device, self.grpo_device),
            extra=extra,
        )

    def stage2_settings(
        self,
        stage1: GRPOSettings,
        changes: dict[str, Any] | None = None,
        no_target_share: float | None = None,
    ) -> GRPOSettings:
        """Notebook 02's stage-2 settings: stage 1's, then ``changes`` (None: the profile's
        `grpo_stage2_changes`; ``{}``: none), then the share of no-target prompts."""
        changes = self.grpo_stage2_changes if changes is None else changes
        unknown = sorted(set(changes) - {f.name for f in fields(stage1)})
        if unknown:
            raise ValueError(f"stage-2 changes {unknown}: not GRPOSettings fields")
        stage2 = replace(stage1, **changes)
        if no_target_share is not None:
            stage2 = replace(stage2, no_target_share=no_target_share)
        return stage2

    def build_segmenter(self, spec: str | None = None) -> Any:
        """The profile's segmenter (or ``spec``) at the profile's SAM input size."""
        from genseg_lib.segment.factory import build_segmenter

        return build_segmenter(spec or self.segmenter, sam_image_size=self.sam_image_size)


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
        # a 1.5 M-parameter prompter, 100 steps per stage; seed-0 runs scored on val chose
        # 3e-5 over 1e-4 for both stages (docs/method.md §7)
        grpo_learning_rate=3e-5,
        grpo_beta=0.0,
        # groups of 4 answers x 16 prompts beat 8 x 8 in stage 2 on both seeds (docs/method.md §7)
        grpo_stage2_changes={"num_generations": 4, "prompts_per_step": 16},
        freeze_vision_tower=True,
        # the shipped tables' device (CUDA sampling gives other numbers): device="auto" asks
        # for CUDA, where training runs without the cuDNN attention kernel (README)
        grpo_device="cpu",
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


def paper_dryrun_profile(cache: Path = CACHE) -> Profile:
    """The paper profile with stand-in inputs (same notebooks, branches, recipes, evaluation and
    training sets): RefCOCOg / gRefCOCO / ReasonSeg written from SynthRef in their public
    layouts, a random-initialised Qwen3-VL (real tokenizer and processor, tiny sizes) and a
    random-initialised SAM 2.1 (hiera-tiny at 256 px), saved as local folders and loaded by the
    same `from_pretrained` code as the hub ids; small enough for 2 CPU cores."""
    root = cache / "paper-dryrun"
    return replace(
        paper_profile(root / "data"),
        name="paper-dryrun",
        model=str(root / "Qwen3-VL-8B-Instruct-standin"),
        segmenter=f"sam2:{root / 'sam2.1-standin' / 'sam2.1_hiera_tiny.pt'}",
        sam_image_size=256,
        eval_limit=8,
        max_new_tokens=24,
        max_completion_length=24,
        grpo_steps=2,
        grpo_generations=2,
        grpo_prompts_per_step=2,
        seeds=[0],
    )


def get_profile(name: str, **overrides: Any) -> Profile:
    """A profile by name with fields overridden (notebook parameters); None values ignored."""
    base = {"smoke": smoke_profile, "paper": paper_profile, "paper-dryrun": paper_dryrun_profile}
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
    elif profile.name == "paper-dryrun":
        _prepare_dryrun(profile, seed)
    elif not profile.data_root.is_dir():
        raise FileNotFoundError(
            f"paper profile: data root {profile.data_root} not found; set GENSEG_DATA_ROOT or the "
            "notebook's data_root parameter (layout: README, 'Real weights and data')"
        )
    return profile


def _prepare_dryrun(profile: Profile, seed: int) -> None:
    """Write the dry run's stand-in datasets and models where they are missing."""
    from genseg_lib.data.standins import write_native_standins
    from genseg_lib.models.build import build_tiny_qwen3vl
    from genseg_lib.segment.sam2_bridge import save_random_sam2

    write_native_standins(profile.data_root, seed=seed)
    model = Path(profile.model)
    if not (model / "config.json").is_file():
        build_tiny_qwen3vl(model, seed=seed)
    sam = Path(profile.segmenter.partition(":")[2])
    if not sam.is_file():
        save_random_sam2("facebook/sam2.1-hiera-tiny", sam.parent, profile.sam_image_size, seed)
