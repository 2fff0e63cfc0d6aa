"""Stage 0 of the embedded default: a supervised warm start of the SynthRef prompter.

It stands in for the pretraining that gives Qwen3-VL Instruct its grounding. First the vision
tower learns dense SynthRef targets (`genseg_lib.stage0.vision_pretrain`, standing in for a
pretrained ViT); then the prompter learns to answer SynthRef queries in the answer format
from grounding labels (`genseg_lib.stage0.labels`, docs/method.md §7) with a short templated
``<think>`` (the query restated), in the coordinate frame of its model family, helped by the
binding probe (`genseg_lib.stage0.binding`). Curriculum: single-object scenes first (learn to
look), then 2-3-object scenes named by attributes (learn which object the words name), then
referring scenes, mostly single-target, with a small share of multi-target and no-target
queries so that GRPO can later sample and reinforce them. Resumable: it saves its state every
``save_every`` steps and a rerun of the same command continues from there.

    python -m genseg_lib.stage0 --out checkpoints/synthref-prompter --steps 12500
"""

from __future__ import annotations

import json
import logging
import math
import random
import shlex
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm
from trl.data_utils import prepare_multimodal_messages  # imported once, before workers fork

from genseg_lib.answer import parse_answer
from genseg_lib.data import Sample
from genseg_lib.data.synthref import GENERATOR_VERSION, SynthRefConfig, synthref_samples
from genseg_lib.device import autocast, resolve_device, training_attention
from genseg_lib.evaluate.metrics import BoxAccumulator
from genseg_lib.models.prompt import build_messages
from genseg_lib.models.vlm import VLM, GenerationOptions, coord_frame_for, vision_tower_parameters
from genseg_lib.runinfo import refuse_other_run, run_info, write_run_info
from genseg_lib.segment.oracle import oracle_instances
from genseg_lib.stage0.batches import step_loader
from genseg_lib.stage0.binding import BindingProbe, box_cover_targets
from genseg_lib.stage0.labels import LABEL_RULES_VERSION, answer_text, label_instances
from genseg_lib.stage0.packed_attention import packed_vision_attention
from genseg_lib.stage0.prompter import (
    ANSWER_TOKENS,
    PrompterSpec,
    build_synthref_prompter,
    match_vision_scale,
)
from genseg_lib.stage0.vision_pretrain import VisionPretrainConfig, pretrain_vision, token_grid

LOG = logging.getLogger(__name__)
STATE = "trainer_state.pt"
PROMPTER_PREFIX = "prompter_"  # the prompter's sizes on the command line: --prompter-hidden-size
# what a rerun may change and still continue the same run: where and how fast it runs, how often
# it reports and saves, and how far it goes (more steps stretch the schedule from there on)
RESUMABLE_CHANGES = tuple(
    f"settings.{name}"
    for name in (
        "out",
        "steps",
        "time_limit_min",
        "device",
        "workers",
        "eval_every",
        "eval_samples",
        "save_every",
    )
)


@dataclass
class WarmStartConfig:
    """Supervised curriculum (our choice; calibrated on a 2-core CPU, see the README)."""

    out: str = "checkpoints/synthref-prompter"
    vision_steps: int = 1500  # dense pretraining of the vision tower first (fresh models only)
    vision_batch_size: int = 16  # scenes per vision step (a GPU takes more at the same step cost)
    steps: int = 12500
    single_object_steps: int = 1500  # phase 1: one shape per scene
    pair_steps: int = 0  # phase 2: 2-3 shapes, queries that name one by its attributes
    batch_size: int = 16
    lr: float = 1e-3
    warmup: int = 100
    min_lr_ratio: float = 0.05
    weight_decay: float = 0.01
    labels: str = "grounding"  # grounding (box-only points, stage 0) | oracle (reference B)
    multi_share: float = 0.08  # phase 3 (full scenes) query mix: small shares GRPO can build on
    no_target_share: float = 0.12
    multi_list_share: float = 0.5  # multi-target grounding labels that list every target
    no_target_abstain_share: float = 0.3  # no-target labels that say [] (the rest: near miss)
    vision_lr_scale: float = 1.0  # the pretrained tower's learning rate / lr (0: frozen)
    binding_weight: float = 1.0  # auxiliary loss: which visual tokens the labelled box covers
    binding_layer: int = 2  # ... read after this many language-model layers
    max_objects: int = 4
    eval_every: int = 500
    eval_samples: int = 64
    save_every: int = 250
    seed: int = 0
    time_limit_min: float | None = None  # stop (and save) after this many minutes
    init: str | None = None  # continue supervised training of this checkpoint (the control run)
    device: str = "auto"  # auto: CUDA when present (bf16 autocast), else CPU
    workers: int = 0  # processes that build batches ahead (0: in the training process)


def phase_config(cfg: WarmStartConfig, step: int) -> SynthRefConfig:
    """Scene/query settings of the curriculum phase that ``step`` is in."""
    if step < cfg.single_object_steps:
        return SynthRefConfig(
            min_objects=1, max_objects=1, queries_per_scene=1, query_weights={"attribute": 1.0}
        )
    if step < cfg.single_object_steps + cfg.pair_steps:
        return SynthRefConfig(
            min_objects=2,
            max_objects=3,
            queries_per_scene=1,
            query_weights={"attribute": 0.7, "reasoning": 0.3},
        )
    single = 1.0 - cfg.multi_share - cfg.no_target_share
    return SynthRefConfig(
        min_objects=2,
        max_objects=cfg.max_objects,
        queries_per_scene=1,
        query_weights={
            "attribute": 0.40 * single,
            "spatial": 0.20 * single,
            "ordinal": 0.20 * single,
            "reasoning": 0.20 * single,
            "multi": cfg.multi_share,
            "no_target": cfg.no_target_share,
        },
    )


def training_batch(
    processor: Any,
    samples: Sequence[Sample],
    coord_frame: str = "norm1000",
    label_kind: str = "grounding",
    multi_list_share: float = 0.5,
    no_target_abstain_share: float = 0.3,
) -> dict[str, torch.Tensor]:
    """Left-padded inputs with labels only on the answer (and its closing ``<|im_end|>``);
    answers follow the label rules of `genseg_lib.stage0.labels`. ``binding_targets``: per
    visual token, how much of its cell the labelled boxes cover (`stage0.binding`)."""
    texts, answer_lengths, images, covers = [], [], [], []
    tok = processor.tokenizer
    for s in samples:
        image = s.load_image()
        instances = label_instances(s, label_kind, multi_list_share, no_target_abstain_share)
        answer = answer_text(s, instances, coord_frame)
        covers.append(instances)
        chat = prepare_multimodal_messages(build_messages(s.query, coord_frame), images=[image])
        prompt = processor.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        texts.append(prompt + answer + tok.eos_token)
        answer_lengths.append(len(tok.encode(answer + tok.eos_token, add_special_tokens=False)))
        images.append(image)
    batch = processor(text=texts, images=images, padding=True, return_tensors="pt")
    labels = torch.full_like(batch["input_ids"], -100)
    for row, n in enumerate(answer_lengths):
        labels[row, -n:] = batch["input_ids"][row, -n:]
    batch["labels"] = labels
    grid = token_grid(processor, batch["image_grid_thw"])
    batch["binding_targets"] = torch.stack(
        [box_cover_targets(inst, s.width, grid) for inst, s in zip(covers, samples, strict=True)]
    )
    return batch


def step_samples(cfg: WarmStartConfig, step: int) -> list[Sample]:
    """The samples of one step, drawn from that step's own seed. Their ids name the step
    (``.../train_000003/0@step12``): a fresh draw reuses the split's ids, and the label rules
    choose by id (`labels.in_share`), so without it every step would list or abstain at the
    same batch positions."""
    seed = random.Random(f"{cfg.seed}-{step}").randrange(2**31)
    samples = synthref_samples("train", cfg.batch_size, seed=seed, cfg=phase_config(cfg, step))
    return [replace(s, sample_id=f"{s.sample_id}@step{step}") for s in samples]


class StepBatches(torch.utils.data.Dataset):
    """Item ``i`` is the training batch of step ``start + i``, built from that step's own seed:
    workers can build batches ahead in parallel, and a resumed run sees the same batches."""

    def __init__(self, cfg: WarmStartConfig, processor: Any, coord_frame: str, start: int):
        self.cfg, self.processor, self.coord_frame, self.start = cfg, processor, coord_frame, start

    def __len__(self) -> int:
        return max(0, self.cfg.steps - self.start)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        step, cfg = self.start + i, self.cfg
        batch = training_batch(
            self.processor,
            step_samples(cfg, step),
            self.coord_frame,
            cfg.labels,
            cfg.multi_list_share,
            cfg.no_target_abstain_share,
        )
        return dict(batch)


@torch.no_grad()
def quick_box_eval(
    model: Any, processor: Any, samples: Sequence[Sample], max_new_tokens: int = ANSWER_TOKENS
) -> dict[str, float]:
    """Greedy answers on ``samples``: strict-format rate and box mIoU / Acc@0.5."""
    model.eval()
    vlm = VLM(model, processor)
    acc, ok = BoxAccumulator(), 0
    for i in range(0, len(samples), 16):
        chunk = samples[i : i + 16]
        texts, _ = vlm.generate(
            [s.load_image() for s in chunk],
            [s.query for s in chunk],
            GenerationOptions(max_new_tokens=max_new_tokens),
        )
        for s, text in zip(chunk, texts, strict=True):
            ans = parse_answer(text, s.image_size, vlm.coord_frame)
            ok += ans.format_ok
            acc.add(
                [i.box for i in ans.instances],
                [i.box for i in oracle_instances(s.instance_masks())],
            )
    model.train()
    return {**acc.result(), "format_ok": ok / max(1, len(samples))}


def _lr_lambda(cfg: WarmStartConfig):
    def f(step: int) -> float:
        if step < cfg.warmup:
            return (step + 1) / cfg.warmup
        progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return f


def _new_log() -> dict[str, list]:
    """What warmstart.json reports: learning curves and every command that trained the model."""
    return {"history": [], "vision_history": [], "invocations": []}


def flag_name(field_name: str, prefix: str = "") -> str:
    """The command-line flag of a settings field (`PROMPTER_PREFIX` for the prompter's sizes)."""
    return "--" + (prefix + field_name).replace("_", "-")


def _changed_flags(values: Any, defaults: Any, prefix: str = "") -> list[str]:
    """``--flag value`` for each field of the dataclass ``values`` that differs from ``defaults``
    (an int list as ``1,2,3``)."""
    flags = []
    for f in fields(values):
        value = getattr(values, f.name)
        if value != getattr(defaults, f.name):
            text = ",".join(map(str, value)) if isinstance(value, list) else str(value)
            flags.append(f"{flag_name(f.name, prefix)} {shlex.quote(text)}")
    return flags


def cli_command(cfg: WarmStartConfig, spec: PrompterSpec | None = None) -> str:
    """The command line that runs ``cfg`` with the prompter sizes ``spec`` (flags for the
    fields that differ from the defaults; sizes as ``--prompter-*``)."""
    flags = _changed_flags(cfg, WarmStartConfig())
    if spec is not None:
        flags += _changed_flags(spec, PrompterSpec(), PROMPTER_PREFIX)
    return " ".join(["python -m genseg_lib.stage0", *flags])


def _save(
    model: Any,
    processor: Any,
    probe: BindingProbe | None,
    optimizer: Any,
    scheduler: Any,
    step: int,
    path: Path,
    log: dict[str, list],
) -> None:
    tmp = path.with_name(path.name + ".tmp")
    model.save_pretrained(tmp)
    processor.save_pretrained(tmp)
    torch.save(
        {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "binding_probe": probe.state_dict() if probe else None,
            "step": step,
            "log": log,
            "torch_rng": torch.get_rng_state(),
        },
        tmp / STATE,
    )
    if path.exists():
        import shutil

        shutil.rmtree(path)
    tmp.rename(path)


def parameter_groups(
    model: Any, probe: torch.nn.Module | None, cfg: WarmStartConfig
) -> list[dict[str, Any]]:
    """Optimizer groups: the vision tower's pretrained part (patch and position embeddings,
    blocks, merger) at ``lr * vision_lr_scale`` — frozen at 0 — and everything else at ``lr``
    (the deepstack mergers among them: dense pretraining never reads them)."""
    if cfg.vision_lr_scale == 1.0:
        return [{"params": [*model.parameters(), *(probe.parameters() if probe else [])]}]
    tower = vision_tower_parameters(model)
    tower_ids = {id(p) for p in tower}
    rest = [p for p in model.parameters() if id(p) not in tower_ids]
    groups = [{"params": [*rest, *(probe.parameters() if probe else [])]}]
    if cfg.vision_lr_scale == 0.0:
        for p in tower:
            p.requires_grad_(False)
    else:
        groups.append({"params": tower, "lr": cfg.lr * cfg.vision_lr_scale})
    return groups


def run_record(cfg: WarmStartConfig, sizes: PrompterSpec | None = None) -> dict[str, Any]:
    """``run.json`` of a warm start or supervised continuation: its settings (with the sizes
    of a fresh prompter) and the SynthRef generator and label rules its batches come from, so
    that a run made under others is refused, not continued or reused."""
    settings = asdict(cfg) if sizes is None else {**asdict(cfg), "prompter": asdict(sizes)}
    return run_info(
        "supervised" if cfg.init else "warmstart",
        settings,
        cfg.seed,
        synthref_generator=GENERATOR_VERSION,
        label_rules=LABEL_RULES_VERSION,
    )


def warm_start(cfg: WarmStartConfig, spec: PrompterSpec | None = None) -> Path:
    """Train (or resume) the warm start; writes a bf16 checkpoint to ``cfg.out``.

    ``spec`` sizes a fresh prompter (default `PrompterSpec`); a run from ``cfg.init`` keeps
    that checkpoint's sizes. A rerun continues the run in ``cfg.out`` only with the same
    settings and sizes, up to `RESUMABLE_CHANGES`; anything else is refused, not mixed in."""
    from transformers import AutoProcessor, Qwen3VLForConditionalGeneration

    if cfg.init and spec is not None:
        raise ValueError(
            f"warm start from --init {cfg.init}: the model keeps that checkpoint's sizes; "
            "prompter sizes apply to a fresh prompter only"
        )
    sizes = None if cfg.init else spec or PrompterSpec()
    info = run_record(cfg, sizes)
    out = Path(cfg.out)
    last = out.parent / (out.name + "-last")
    vision_state = out.parent / (out.name + "-vision.pt")
    resume = (last / STATE).is_file()
    if resume or (not cfg.init and cfg.vision_steps and vision_state.is_file()):
        refuse_other_run(out, info, ignore=RESUMABLE_CHANGES)
    write_run_info(out, info)
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    if resume:
        model = Qwen3VLForConditionalGeneration.from_pretrained(last, dtype=torch.float32)
        processor = AutoProcessor.from_pretrained(last)
        state = torch.load(last / STATE, weights_only=False, map_location="cpu")
        start, log = state["step"], state["log"]
        LOG.info("resuming the warm start from step %d (%s)", start, last)
    elif cfg.init:
        model = Qwen3VLForConditionalGeneration.from_pretrained(cfg.init, dtype=torch.float32)
        processor = AutoProcessor.from_pretrained(cfg.init)
        state, start, log = None, 0, _new_log()
    else:
        model, processor = build_synthref_prompter(spec=sizes, seed=cfg.seed)
        state, start, log = None, 0, _new_log()
        if cfg.vision_steps:
            vision_cfg = VisionPretrainConfig(
                steps=cfg.vision_steps,
                batch_size=cfg.vision_batch_size,
                save_every=cfg.save_every,
                seed=cfg.seed,
                device=cfg.device,
                workers=cfg.workers,
            )
            log["vision_history"] = pretrain_vision(
                model, processor, vision_cfg, vision_state, sizes.image_size
            )
            match_vision_scale(model, processor, sizes.image_size)
    model.to(device).train()
    frame = coord_frame_for(model.config.model_type)
    probe = BindingProbe(model, cfg.binding_layer).to(device) if cfg.binding_weight else None
    groups = parameter_groups(model, probe, cfg)
    params = [p for g in groups for p in g["params"]]
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(cfg))
    if state is not None:
        if probe is not None and state.get("binding_probe") is not None:
            probe.load_state_dict(state["binding_probe"])
        elif probe is not None:
            LOG.warning("%s holds no binding probe: the probe starts afresh", last / STATE)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
    val = [
        s
        for s in synthref_samples("val", 4 * cfg.eval_samples, seed=cfg.seed)
        if len(s.gt_masks) == 1
    ]
    val = val[: cfg.eval_samples]
    log["invocations"].append(
        {
            "command": cli_command(cfg, sizes),
            "from_step": start,
            "synthref_generator": GENERATOR_VERSION,
            "label_rules": LABEL_RULES_VERSION,
        }
    )
    # minutes in the curve count all invocations
    t0 = time.perf_counter() - 60 * (log["history"][-1]["minutes"] if log["history"] else 0.0)
    batches = step_loader(StepBatches(cfg, processor, frame, start), cfg.workers)
    bar = tqdm(batches, desc="warm start", initial=start, total=cfg.steps)
    losses: list[float] = []
    binding_losses: list[float] = []
    done = start
    for step, batch in enumerate(bar, start):
        targets = batch.pop("binding_targets").to(device)
        batch = {k: v.to(device) for k, v in batch.items()}
        with autocast(device), training_attention(), packed_vision_attention(model):
            loss = model(**batch).loss
            binding = probe.loss(batch["input_ids"], targets) if probe else loss.new_zeros(())
        (loss + cfg.binding_weight * binding).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        binding_losses.append(float(binding.detach()))
        done = step + 1
        if done % 50 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
        if done % cfg.eval_every == 0 or done == cfg.steps:
            metrics = quick_box_eval(model, processor, val)
            log["history"].append(
                {
                    "step": done,
                    "loss": float(np.mean(losses[-50:])),
                    "binding_loss": float(np.mean(binding_losses[-50:])),
                    **metrics,
                    "minutes": (time.perf_counter() - t0) / 60,
                }
            )
            LOG.info("step %d: %s", done, log["history"][-1])
        if done % cfg.save_every == 0 or done == cfg.steps:
            _save(model, processor, probe, optimizer, scheduler, done, last, log)
        if cfg.time_limit_min and (time.perf_counter() - t0) / 60 > cfg.time_limit_min:
            _save(model, processor, probe, optimizer, scheduler, done, last, log)
            LOG.info("time limit reached at step %d", done)
            break
    model.to("cpu", torch.bfloat16).save_pretrained(out)
    processor.save_pretrained(out)
    (out / "warmstart.json").write_text(
        json.dumps(
            {
                "config": asdict(cfg),
                "spec": None if sizes is None else asdict(sizes),
                "steps_done": done,
                **log,
            },
            indent=2,
        )
    )
    return out
