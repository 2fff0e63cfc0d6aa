"""Dense vision pretraining: hand-computed token targets, a few steps move the tower, resume."""

import numpy as np
import pytest
import torch

from genseg_lib.data.synthref import COLOURS, SHAPES, SceneObject
from genseg_lib.stage0.prompter import build_synthref_prompter
from genseg_lib.stage0.vision_pretrain import (
    TokenHeads,
    VisionPretrainConfig,
    pretrain_vision,
    token_targets,
)


def _obj(shape: str, colour: str) -> SceneObject:
    return SceneObject(shape=shape, colour=colour, size="small", centre=(0, 0), radius=1, angle=0)


def test_token_targets_hand_computed():
    # 8x8 scene, 2x2 tokens of 4x4 pixels
    a = np.zeros((8, 8), bool)
    a[0:4, 0:4] = True  # fills token 0
    a[0:1, 4:6] = True  # 2 pixels of token 1 (2/16 = 0.125)
    b = np.zeros((8, 8), bool)
    b[6:8, 6:7] = True  # 2 pixels of token 3... shared below
    b[7, 4] = True  # 3 pixels in token 3 in all (3/16 = 0.1875)
    objects = [_obj(SHAPES[1], list(COLOURS)[2]), _obj(SHAPES[3], list(COLOURS)[4])]
    t = token_targets([a, b], objects, grid=2, min_cover=0.15)
    assert t.foreground.tolist() == [True, False, False, True]  # token 1: 0.125 < 0.15
    bg_colour, bg_shape = len(COLOURS), len(SHAPES)
    assert t.colour.tolist() == [2, bg_colour, bg_colour, 4]
    assert t.shape.tolist() == [1, bg_shape, bg_shape, 3]
    assert t.cover.tolist() == pytest.approx([1.0, 0.125, 0.0, 0.1875])
    # boxes are the whole object's tight box (pixel edges) over the side
    assert t.box[0].tolist() == pytest.approx([0, 0, 6 / 8, 4 / 8])
    assert t.box[3].tolist() == pytest.approx([4 / 8, 6 / 8, 7 / 8, 1.0])


def test_token_targets_dominant_object_wins_a_shared_cell():
    a, b = np.zeros((4, 4), bool), np.zeros((4, 4), bool)
    a[0, :] = True  # 4 pixels
    b[1:3, :] = True  # 8 pixels
    t = token_targets([a, b], [_obj("circle", "red"), _obj("star", "blue")], grid=1)
    assert t.colour.tolist() == [list(COLOURS).index("blue")]
    assert t.cover.tolist() == pytest.approx([12 / 16])


def test_token_targets_reject_a_grid_that_does_not_divide_the_side():
    with pytest.raises(ValueError, match="multiple of the token grid"):
        token_targets([np.zeros((10, 10), bool)], [_obj("circle", "red")], grid=4)


def test_box_loss_is_zero_without_foreground():
    heads = TokenHeads(8)
    t = token_targets([np.zeros((4, 4), bool)], [_obj("circle", "red")], grid=2)
    parts = heads.losses(torch.randn(4, 8), t)
    assert float(parts["box"]) == 0.0 and all(torch.isfinite(v) for v in parts.values())


def test_pretraining_moves_the_tower_saves_and_resumes(tmp_path):
    model, processor = build_synthref_prompter()
    before = {k: v.clone() for k, v in model.model.visual.state_dict().items()}
    cfg = VisionPretrainConfig(steps=2, batch_size=2, save_every=1, log_every=1)
    state = tmp_path / "vision.pt"
    log = pretrain_vision(model, processor, cfg, state, image_size=128)
    assert [h["step"] for h in log] == [1, 2]
    moved = model.model.visual.state_dict()
    assert any(not torch.equal(before[k], moved[k]) for k in before)
    assert torch.load(state, weights_only=False)["step"] == 2
    # a finished run only reloads the tower; a longer one continues from step 2
    fresh, _ = build_synthref_prompter()
    assert pretrain_vision(fresh, processor, cfg, state, image_size=128) == log
    for k, v in fresh.model.visual.state_dict().items():
        assert torch.equal(v, moved[k])
    cfg.steps = 3
    log = pretrain_vision(fresh, processor, cfg, state, image_size=128)
    assert [h["step"] for h in log] == [1, 2, 3]


def test_token_grid_counts_merged_patches_and_refuses_mixed_sizes():
    from types import SimpleNamespace

    from genseg_lib.stage0.vision_pretrain import token_grid

    merge1 = SimpleNamespace(image_processor=SimpleNamespace(merge_size=1))
    merge2 = SimpleNamespace(image_processor=SimpleNamespace(merge_size=2))
    same = torch.tensor([[1, 8, 8], [1, 8, 8]])
    assert token_grid(merge1, same) == 8 and token_grid(merge2, same) == 4
    with pytest.raises(ValueError, match="square images of one size"):
        token_grid(merge1, torch.tensor([[1, 8, 8], [1, 8, 4]]))
    with pytest.raises(ValueError, match="square images of one size"):
        token_grid(merge1, torch.tensor([[1, 8, 4]]))


def test_heldout_accuracy_counts_foreground_tokens_of_val_scenes():
    from genseg_lib.stage0.vision_pretrain import VisionBatches, heldout_token_accuracy

    model, processor = build_synthref_prompter()
    heads = TokenHeads(model.config.text_config.hidden_size)
    star, red = list(SHAPES).index("star"), list(COLOURS).index("red")
    with torch.no_grad():  # heads that always answer "red star"
        for head, k in ((heads.shape, star), (heads.colour, red)):
            head.weight.zero_()
            head.bias.zero_()
            head.bias[k] = 1.0
    model.train()
    got = heldout_token_accuracy(model, processor, heads, 128, scenes=8, seed=3, batch_size=4)
    assert model.model.visual.training  # the tower's mode is given back
    cfg = VisionPretrainConfig(steps=2, batch_size=4, seed=3)
    items = [VisionBatches(cfg, processor, 128, 0, split="val")[i] for i in range(2)]
    fg_shape = torch.cat([it["shape"][it["foreground"]] for it in items])
    fg_colour = torch.cat([it["colour"][it["foreground"]] for it in items])
    assert got["tokens"] == fg_shape.numel() > 0
    assert got["shape"] == pytest.approx(float((fg_shape == star).float().mean()))
    assert got["colour"] == pytest.approx(float((fg_colour == red).float().mean()))
    assert got["per_shape"].get("star", 1.0) == 1.0
    assert all(v == 0.0 for name, v in got["per_shape"].items() if name != "star")
    # val scenes, not the training stream of the same seed
    train = VisionBatches(cfg, processor, 128, 0)[0]
    assert not torch.equal(train["pixel_values"], items[0]["pixel_values"])
    # ... even when scoring fails part-way
    heads.normalise = lambda features: features[:, :0]  # no features: the heads cannot apply
    with pytest.raises(RuntimeError):
        heldout_token_accuracy(model, processor, heads, 128, scenes=4, seed=3, batch_size=4)
    assert model.model.visual.training
