"""The stage-0 binding probe: per-cell box cover targets, in the visual tokens' order."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

from genseg_lib.answer import Instance
from genseg_lib.data import Sample
from genseg_lib.masks import rle_encode
from genseg_lib.stage0.binding import BindingProbe, box_cover_targets
from genseg_lib.stage0.prompter import build_synthref_prompter
from genseg_lib.stage0.warmstart import training_batch


def sample(sid, masks):
    return Sample(
        sample_id=sid,
        query="the red circle",
        gt_masks=[rle_encode(m) for m in masks],
        no_target=not masks,
        width=128,
        height=128,
        image=np.zeros((128, 128, 3), np.uint8),
    )


@pytest.fixture(scope="module")
def prompter():
    return build_synthref_prompter()


def test_cover_of_each_cell_by_hand():
    # cells of 16 px on a 128-px side; the box spans x 16..40 and y 16..24
    t = box_cover_targets([Instance(box=(16.0, 16.0, 40.0, 24.0), points=())], 128, 8)
    want = torch.zeros(64)
    want[1 * 8 + 1] = 0.5  # full width, half height
    want[1 * 8 + 2] = 0.25  # half width, half height
    assert torch.allclose(t, want)
    two = box_cover_targets(
        [
            Instance(box=(16.0, 16.0, 40.0, 24.0), points=()),
            Instance(box=(0, 0, 24, 32), points=()),
        ],
        128,
        8,
    )
    assert two[1 * 8 + 1] == 0.5 and two[0] == 1.0 and two[8] == 1.0 and two[9] == 0.5
    assert not box_cover_targets([], 128, 8).any()


def test_visual_tokens_are_cells_in_raster_order(prompter):
    """Token k of the prompter's image must be cell k of the targets: a bright patch at row 2,
    column 5 lights up pixel row 2 * 8 + 5 of the processor's output."""
    _, processor = prompter
    img = np.zeros((128, 128, 3), np.uint8)
    img[32:48, 80:96] = 255
    px = processor.image_processor(images=[Image.fromarray(img)], return_tensors="pt")
    assert px["image_grid_thw"].tolist() == [[1, 8, 8]]
    assert int(px["pixel_values"].mean(dim=1).argmax()) == 2 * 8 + 5


def test_batch_targets_follow_the_labels(prompter):
    _, processor = prompter
    mask = np.zeros((128, 128), bool)
    mask[16:24, 16:40] = True
    one, none = sample("t/0", [mask]), sample("t/1", [])
    batch = training_batch(processor, [one, none], no_target_abstain_share=1.0)
    t = batch["binding_targets"]
    assert t.shape == (2, 64)
    assert torch.allclose(t[0], box_cover_targets([Instance((16.0, 16.0, 40.0, 24.0), ())], 128, 8))
    assert not t[1].any()  # an abstention covers nothing


def test_probe_loss_is_bce_on_the_visual_tokens(prompter):
    model, processor = prompter
    probe = BindingProbe(model, 2)
    with pytest.raises(ValueError, match="binding layer 9"):
        BindingProbe(model, 9)
    torch.nn.init.zeros_(probe.head.weight)
    torch.nn.init.constant_(probe.head.bias, 1.0)
    mask = np.zeros((128, 128), bool)
    mask[0:16, 0:16] = True
    s = sample("t/0", [mask])
    batch = training_batch(processor, [s])
    targets = batch.pop("binding_targets")
    with torch.no_grad():
        model(**batch)
        loss = float(probe.loss(batch["input_ids"], targets))
    # logit 1 everywhere; one cell of 64 is covered: mean of softplus(1) - t * 1
    assert loss == pytest.approx(math.log1p(math.e) - 1 / 64, rel=1e-5)
