"""Dense SynthRef pretraining of the prompter's vision tower (a stand-in for a pretrained ViT).

Qwen3-VL Instruct grounds because its vision encoder arrives pretrained. A randomly initialised
tower trained only through the language model's answer tokens does not learn to look (measured
on single-object scenes: 1,000 supervised steps, box mIoU 0.06, the same loss with shuffled
images). So before the warm start each merged visual token learns, through small linear heads
that are thrown away afterwards, what covers its cell: the colour and shape of the dominant
object, the covered fraction, and that object's box. With it, the same 1,000 steps reached box
mIoU 0.56 on those scenes. Shape is learnt last and slowly (docs/method.md §7): scenes seen is
the lever, hence a larger batch on a GPU. Resumable like the warm start.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from genseg_lib.data.synthref import COLOURS, SHAPES, SynthRefConfig, generate_split
from genseg_lib.device import autocast, resolve_device, training_attention
from genseg_lib.stage0.batches import step_loader
from genseg_lib.stage0.packed_attention import packed_vision_attention

LOG = logging.getLogger(__name__)


@dataclass
class VisionPretrainConfig:
    """Dense-target pretraining of the vision tower (our choice; about 1.5 min per 1,000 steps)."""

    steps: int = 1000
    batch_size: int = 16
    lr: float = 1e-3
    warmup: int = 50
    weight_decay: float = 0.01
    min_objects: int = 1
    max_objects: int = 5
    min_cover: float = 0.1  # a cell belongs to an object covering at least this fraction of it
    box_weight: float = 5.0
    cover_weight: float = 5.0
    save_every: int = 250
    log_every: int = 100
    seed: int = 0
    device: str = "auto"  # auto: CUDA when present (bf16 autocast), else CPU
    workers: int = 0  # processes that build batches ahead (0: in the training process)


@dataclass
class TokenTargets:
    """Per merged visual token (raster order): class ids (background = last class), covered
    fraction, and the dominant object's box in [0, 1] (rows with ``foreground`` False unused)."""

    colour: torch.Tensor
    shape: torch.Tensor
    cover: torch.Tensor
    box: torch.Tensor
    foreground: torch.Tensor

    def to(self, device: torch.device) -> TokenTargets:
        """The same targets on ``device``."""
        return TokenTargets(
            **{k: getattr(self, k).to(device) for k in TokenTargets.__dataclass_fields__}
        )


def token_targets(
    masks: list[np.ndarray], objects: list[Any], grid: int, min_cover: float = 0.1
) -> TokenTargets:
    """Targets of a ``grid x grid`` token layout from a scene's visible masks and objects."""
    side = masks[0].shape[0] if masks else 0
    if not masks or side % grid:
        raise ValueError(f"scene side {side} is not a positive multiple of the token grid {grid}")
    cell = side // grid
    boxes = []
    for m in masks:
        ys, xs = np.nonzero(m)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] if len(xs) else [0, 0, 0, 0])
    # pixels of each object in each cell: (objects, grid, grid)
    counts = np.stack([m.reshape(grid, cell, grid, cell).sum(axis=(1, 3)) for m in masks])
    dominant = counts.argmax(axis=0).ravel()
    best = counts.max(axis=0).ravel() / (cell * cell)
    foreground = best >= min_cover
    colours, shapes = list(COLOURS), list(SHAPES)
    colour = [
        colours.index(objects[k].colour) if f else len(colours)
        for k, f in zip(dominant, foreground, strict=True)
    ]
    shape = [
        shapes.index(objects[k].shape) if f else len(shapes)
        for k, f in zip(dominant, foreground, strict=True)
    ]
    return TokenTargets(
        colour=torch.tensor(colour),
        shape=torch.tensor(shape),
        cover=torch.tensor(
            np.minimum(counts.sum(axis=0).ravel() / (cell * cell), 1.0), dtype=torch.float32
        ),
        box=torch.tensor(np.asarray(boxes, dtype=np.float32)[dominant] / side),
        foreground=torch.tensor(foreground),
    )


class TokenHeads(torch.nn.Module):
    """Linear probes on the merged visual tokens; discarded after pretraining."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.colour = torch.nn.Linear(hidden, len(COLOURS) + 1)
        self.shape = torch.nn.Linear(hidden, len(SHAPES) + 1)
        self.cover = torch.nn.Linear(hidden, 1)
        self.box = torch.nn.Linear(hidden, 4)

    @staticmethod
    def normalise(features: torch.Tensor) -> torch.Tensor:
        """Features at unit scale: the tower's output scale stays free."""
        return features / features.std().clamp_min(1e-6)

    def losses(self, features: torch.Tensor, t: TokenTargets) -> dict[str, torch.Tensor]:
        f = self.normalise(features)
        fg = t.foreground
        box = F.l1_loss(self.box(f[fg]), t.box[fg]) if fg.any() else f.sum() * 0.0
        return {
            "colour": F.cross_entropy(self.colour(f), t.colour),
            "shape": F.cross_entropy(self.shape(f), t.shape),
            "cover": F.l1_loss(self.cover(f).squeeze(-1), t.cover),
            "box": box,
        }


def token_grid(processor: Any, image_grid_thw: torch.Tensor) -> int:
    """Visual tokens per side of a batch of square images of one size (``image_grid_thw``
    counts patches; the processor merges ``merge_size`` of them per side into a token)."""
    grids = image_grid_thw[:, 1:] // processor.image_processor.merge_size
    h, w = (int(v) for v in grids[0])
    if h != w or not (grids == grids[0]).all():
        raise ValueError(
            f"SynthRef batches are square images of one size; got token grids {grids.tolist()}"
        )
    return h


def _stack(targets: list[TokenTargets]) -> TokenTargets:
    return TokenTargets(
        **{
            k: torch.cat([getattr(t, k) for t in targets])
            for k in TokenTargets.__dataclass_fields__
        }
    )


class VisionBatches(torch.utils.data.Dataset):
    """Item ``i``: pixel values, grid and token targets of step ``start + i`` (seeded by step)."""

    def __init__(
        self,
        cfg: VisionPretrainConfig,
        processor: Any,
        image_size: int,
        start: int,
        split: str = "train",
    ):
        self.cfg, self.processor, self.start, self.split = cfg, processor, start, split
        self.scene_cfg = SynthRefConfig(
            image_size=image_size,
            min_objects=cfg.min_objects,
            max_objects=cfg.max_objects,
            queries_per_scene=1,
            query_weights={"attribute": 1.0},
        )

    def __len__(self) -> int:
        return max(0, self.cfg.steps - self.start)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        seed = random.Random(f"vision-{cfg.seed}-{self.start + i}").randrange(2**31)
        scenes = generate_split(self.split, cfg.batch_size, seed, self.scene_cfg)[: cfg.batch_size]
        images = [s["image"] for s in scenes]
        batch = self.processor.image_processor(images=images, return_tensors="pt")
        grid = token_grid(self.processor, batch["image_grid_thw"])
        targets = _stack(
            [token_targets(s["masks"], s["objects"], grid, cfg.min_cover) for s in scenes]
        )
        return {
            "pixel_values": batch["pixel_values"],
            "image_grid_thw": batch["image_grid_thw"],
            **{k: getattr(targets, k) for k in TokenTargets.__dataclass_fields__},
        }


def pretrain_vision(
    model: Any, processor: Any, cfg: VisionPretrainConfig, state_path: Path, image_size: int
) -> list[dict[str, float]]:
    """Train ``model.model.visual`` in place on dense SynthRef targets; returns the log.

    ``state_path`` holds the tower, heads, optimizer and step: a rerun resumes there, and a
    finished run only reloads the tower.
    """
    device = resolve_device(cfg.device)
    visual = model.model.visual.to(device)
    heads = TokenHeads(model.config.text_config.hidden_size).to(device)
    params = [*visual.parameters(), *heads.parameters()]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / max(1, cfg.warmup))
    )
    start, history = 0, []
    if state_path.is_file():
        state = torch.load(state_path, weights_only=False, map_location=device)
        visual.load_state_dict(state["visual"])
        heads.load_state_dict(state["heads"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start, history = state["step"], state["history"]
        LOG.info("vision pretraining: resuming at step %d (%s)", start, state_path)

    def save(step: int) -> None:
        tmp = state_path.with_name(state_path.name + ".tmp")
        torch.save(
            {
                "visual": visual.state_dict(),
                "heads": heads.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "step": step,
                "history": history,
            },
            tmp,
        )
        tmp.replace(state_path)

    visual.train()
    t0 = time.perf_counter()
    batches = step_loader(VisionBatches(cfg, processor, image_size, start), cfg.workers)
    for step, item in enumerate(
        tqdm(batches, desc="vision pretraining", initial=start, total=cfg.steps), start
    ):
        batch = {k: item.pop(k) for k in ("pixel_values", "image_grid_thw")}
        targets = TokenTargets(**item).to(device)
        with autocast(device), training_attention(), packed_vision_attention(model):
            features = visual(
                batch["pixel_values"].to(device), grid_thw=batch["image_grid_thw"].to(device)
            ).pooler_output
        parts = heads.losses(features.float(), targets)
        loss = (
            parts["colour"]
            + parts["shape"]
            + cfg.box_weight * parts["box"]
            + cfg.cover_weight * parts["cover"]
        )
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        done = step + 1
        if done % cfg.log_every == 0 or done == cfg.steps:
            history.append(
                {
                    "step": done,
                    **{k: float(v.detach()) for k, v in parts.items()},
                    "minutes": (time.perf_counter() - t0) / 60,
                }
            )
            LOG.info("vision step %d: %s", done, history[-1])
        if done % cfg.save_every == 0 or done == cfg.steps:
            save(done)
    return history


@torch.no_grad()
def heldout_token_accuracy(
    model: Any,
    processor: Any,
    heads: TokenHeads,
    image_size: int,
    scenes: int = 320,
    seed: int = 1,
    batch_size: int = 16,
) -> dict[str, Any]:
    """How often the heads name the covering object's colour and shape, over the foreground
    tokens of ``scenes`` SynthRef val scenes (never trained on); ``per_shape``: shape accuracy
    by the true shape. Measures what the tower learnt, since the heads are linear."""
    cfg = VisionPretrainConfig(steps=-(-scenes // batch_size), batch_size=batch_size, seed=seed)
    data = VisionBatches(cfg, processor, image_size, 0, split="val")
    visual = model.model.visual
    was_training = visual.training
    visual.eval()
    device = next(visual.parameters()).device
    hits = {"colour": [], "shape": []}
    shapes: list[torch.Tensor] = []
    try:
        for i in range(len(data)):
            item = data[i]
            features = visual(
                item["pixel_values"].to(device), grid_thw=item["image_grid_thw"].to(device)
            ).pooler_output.float()
            f = heads.normalise(features)
            fg = item["foreground"].to(device)
            for name in hits:
                pred = getattr(heads, name)(f[fg]).argmax(-1).cpu()
                hits[name].append(pred == item[name][item["foreground"]])
            shapes.append(item["shape"][item["foreground"]])
    finally:  # the caller's training mode, even when scoring fails
        visual.train(was_training)
    colour, shape, truth = (torch.cat(v) for v in (hits["colour"], hits["shape"], shapes))
    return {
        "tokens": int(truth.numel()),
        "colour": float(colour.float().mean()),
        "shape": float(shape.float().mean()),
        "per_shape": {
            name: float(shape[truth == k].float().mean())
            for k, name in enumerate(SHAPES)
            if (truth == k).any()
        },
    }
