"""SAM 2 bridge: equal to per-prompt SAM2ImagePredictor calls, cached, batched, robust."""

import copy

import numpy as np
import pytest
import torch

from genseg_lib.answer import Instance
from genseg_lib.segment import InstancePrompt, answer_masks
from genseg_lib.segment.sam2_bridge import Sam2Bridge, Sam2Config, resolve_model

sam2_image_predictor = pytest.importorskip("sam2.sam2_image_predictor")


@pytest.fixture(scope="module")
def bridge():
    torch.manual_seed(0)
    # a reduced (256-px input) random-init hiera-tiny: same code path, fast on CPU
    return Sam2Bridge.from_pretrained(
        "facebook/sam2.1-hiera-tiny", random_init=True, image_size=256, device="cpu"
    )


def reference(bridge, image, prompt, multimask=False):
    """The per-prompt way: a fresh SAM2ImagePredictor, set_image + predict."""
    pred = sam2_image_predictor.SAM2ImagePredictor(bridge.predictor.model)
    pred._bb_feat_sizes = bridge.predictor._bb_feat_sizes
    pred.set_image(image)
    masks, scores, _ = pred.predict(
        point_coords=np.array(prompt.points) if prompt.points else None,
        point_labels=np.array(prompt.labels) if prompt.points else None,
        box=np.array(prompt.box) if prompt.box is not None else None,
        multimask_output=multimask,
    )
    return masks[int(np.argmax(scores))] > 0 if multimask else masks[0] > 0


def iou(a, b):
    union = (a | b).sum()
    return 1.0 if union == 0 else (a & b).sum() / union


def images():
    rng = np.random.default_rng(0)
    out = []
    for h, w in [(96, 128), (80, 80), (120, 90)]:
        img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        img[h // 4 : h // 2, w // 4 : w // 2] = (220, 30, 30)
        out.append(img)
    return out


def random_prompts(rng, h, w, n):
    out = []
    for _ in range(n):
        x1, x2 = sorted(rng.uniform(0, w, 2))
        y1, y2 = sorted(rng.uniform(0, h, 2))
        pts = tuple((float(rng.uniform(x1, x2)), float(rng.uniform(y1, y2))) for _ in range(2))
        out.append(InstancePrompt(box=(x1, y1, x2 + 1, y2 + 1), points=pts))
    return out


@pytest.mark.parametrize("multimask", ["single", "best"])
def test_matches_per_prompt_predictor_on_mixed_batches(bridge, multimask):
    bridge.cfg.multimask = multimask
    bridge.clear_cache()
    rng = np.random.default_rng(1)
    imgs = images()
    # entries repeat images (G answers per image) with different prompt counts, one empty
    entries = [0, 1, 0, 2, 1, 0]
    counts = [2, 1, 3, 0, 4, 1]
    batch_images = [imgs[e] for e in entries]
    batch_prompts = [
        random_prompts(rng, *imgs[e].shape[:2], c) for e, c in zip(entries, counts, strict=True)
    ]
    batch_prompts[2].append(InstancePrompt(box=(5, 5, 40, 30)))  # box only: another shape
    out = bridge.segment(batch_images, batch_prompts)
    assert [len(o) for o in out] == [len(p) for p in batch_prompts]
    for img, plist, masks in zip(batch_images, batch_prompts, out, strict=True):
        for prompt, mask in zip(plist, masks, strict=True):
            assert mask.shape == img.shape[:2] and mask.dtype == bool
            assert iou(mask, reference(bridge, img, prompt, multimask == "best")) >= 0.999
    bridge.cfg.multimask = "single"


def test_one_embedding_per_unique_image_and_lru(bridge):
    bridge.clear_cache()
    bridge.stats.clear()
    imgs = images()
    p = [InstancePrompt(box=(10, 10, 50, 50), points=((20, 20), (30, 30)))]
    bridge.cfg.max_prompts_per_call = 64
    bridge.segment([imgs[0], imgs[0], imgs[1], imgs[0]], [p, p, p, p])
    bridge.cfg.max_prompts_per_call = None
    # the three answers on image 0 share one embedding and one decoder call
    assert bridge.stats["embeddings"] == 2 and bridge.stats["decoder_calls"] == 2
    bridge.segment([imgs[0]], [p])
    assert bridge.stats["embeddings"] == 2 and bridge.stats["cache_hits"] == 1
    old = bridge.cfg.cache_size
    bridge.cfg.cache_size = 1
    bridge.segment([imgs[2]], [p])  # evicts the two older embeddings
    assert len(bridge._cache) == 1
    bridge.segment([imgs[0]], [p], keys=["sample-0"])
    assert bridge.stats["embeddings"] == 4
    bridge.cfg.cache_size = old


def test_chunking_keeps_results(bridge):
    rng = np.random.default_rng(2)
    img = images()[0]
    prompts = random_prompts(rng, *img.shape[:2], 5)
    bridge.clear_cache()
    bridge.cfg.max_prompts_per_call = 64
    whole = bridge.segment([img], [prompts])[0]
    bridge.cfg.max_prompts_per_call = 2
    bridge.stats.clear()
    chunked = bridge.segment([img], [prompts])[0]
    bridge.cfg.max_prompts_per_call = None
    assert bridge.stats["decoder_calls"] == 3
    assert all(iou(a, b) >= 0.999 for a, b in zip(whole, chunked, strict=True))


def test_edge_cases(bridge):
    img = images()[0]
    h, w = img.shape[:2]
    assert bridge.segment([img], [[]]) == [[]]
    degenerate = InstancePrompt(box=(30, 10, 30, 60), points=((30, 20), (30, 30)))
    (mask,) = bridge.segment([img], [[degenerate]])[0]
    assert mask.shape == (h, w) and not mask.any()
    outside = InstancePrompt(box=(-50, -20, 500, 40), points=((-5, 3), (700, 30)))
    (m_out,) = bridge.segment([img], [[outside]])[0]
    (m_clip,) = bridge.segment([img], [[outside.clipped(w, h)]])[0]
    assert np.array_equal(m_out, m_clip)
    pts_only = InstancePrompt(box=None, points=((40, 40), (50, 45)))
    (m_pts,) = bridge.segment([img], [[pts_only]])[0]
    assert iou(m_pts, reference(bridge, img, pts_only)) >= 0.999
    with pytest.raises(ValueError, match="2 images but 1"):
        bridge.segment([img, img], [[]])


def test_answer_masks_union(bridge):
    img = images()[0]
    a = Instance(box=(10, 10, 50, 50), points=((20, 20), (30, 30)))
    b = Instance(box=(60, 40, 120, 90), points=((70, 50), (80, 60)))
    union, empty = answer_masks(bridge, [img, img], [[a, b], []])
    ma, mb = bridge.segment(
        [img], [[InstancePrompt.from_instance(a), InstancePrompt.from_instance(b)]]
    )[0]
    assert np.array_equal(union, ma | mb)
    assert empty.shape == img.shape[:2] and not empty.any()


def test_model_resolution_rules(tmp_path):
    assert resolve_model(Sam2Config(model="facebook/sam2.1-hiera-large", random_init=True)) == (
        "configs/sam2.1/sam2.1_hiera_l.yaml",
        None,
    )
    ckpt = tmp_path / "sam2.1_hiera_small.pt"
    ckpt.write_bytes(b"")
    assert resolve_model(Sam2Config(model=str(ckpt))) == (
        "configs/sam2.1/sam2.1_hiera_s.yaml",
        str(ckpt),
    )
    odd = tmp_path / "mine.pt"
    odd.write_bytes(b"")
    with pytest.raises(ValueError, match="pass config"):
        resolve_model(Sam2Config(model=str(odd)))
    with pytest.raises(FileNotFoundError, match="neither a known id"):
        resolve_model(Sam2Config(model="facebook/sam3"))
    with pytest.raises(ValueError, match="multimask"):
        Sam2Bridge.from_pretrained(
            "facebook/sam2.1-hiera-tiny",
            random_init=True,
            image_size=256,
            device="cpu",
            multimask="all",
        )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bf16_path_matches_cpu_fp32():
    torch.manual_seed(0)
    gpu = Sam2Bridge.from_pretrained(
        "facebook/sam2.1-hiera-tiny", random_init=True, image_size=256, device="cuda"
    )
    cpu = Sam2Bridge(copy.deepcopy(gpu.predictor.model).to("cpu"), Sam2Config(device="cpu"))
    img = images()[0]
    p = [InstancePrompt(box=(10, 10, 60, 50), points=((20, 20), (30, 30)))]
    assert gpu.device.type == "cuda" and cpu.device.type == "cpu"
    assert iou(gpu.segment([img], [p])[0][0], cpu.segment([img], [p])[0][0]) > 0.95
