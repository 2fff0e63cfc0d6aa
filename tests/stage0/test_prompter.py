"""The SynthRef prompter: domain tokenizer round trip, Qwen ids wiring, save/load, 64 image
tokens (one per 16-px patch), the query before the image."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from genseg_lib.answer import format_answer
from genseg_lib.data.synthref import synthref_samples
from genseg_lib.models.build import QWEN_SPECIAL_TOKENS
from genseg_lib.models.prompt import build_messages, system_prompt
from genseg_lib.models.vlm import GenerationOptions, load_vlm
from genseg_lib.stage0.prompter import UNK, build_domain_tokenizer, build_synthref_prompter


@pytest.fixture(scope="module")
def tok():
    return build_domain_tokenizer()


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("prompter")
    build_synthref_prompter(path)
    return path


def test_vocabulary_is_small_and_covers_the_domain(tok):
    assert len(tok) < 400
    unk = tok.convert_tokens_to_ids(UNK)
    texts = [
        system_prompt(),
        system_prompt("pixels"),
        *(s.query for s in synthref_samples("val", 300, seed=5)),
    ]
    for text in texts:
        assert unk not in tok.encode(text, add_special_tokens=False), text
    for t in QWEN_SPECIAL_TOKENS:
        assert tok.convert_tokens_to_ids(t) != unk


coords = st.tuples(*[st.floats(0, 128, allow_nan=False)] * 4)


@settings(max_examples=200, deadline=None)
@given(
    boxes=st.lists(coords, max_size=4),
    think=st.sampled_from(["", "the red circle", "all yellow shapes"]),
)
def test_answers_round_trip_exactly(tok, boxes, think):
    insts = [
        ((min(a, c), min(b, d), max(a, c), max(b, d)), ((a, b), (c, d))) for a, b, c, d in boxes
    ]
    text = format_answer(insts, (128, 128), think=think)
    ids = tok.encode(text, add_special_tokens=False)
    assert tok.decode(ids) == text and tok.decode(ids, skip_special_tokens=True) == text
    assert tok.convert_tokens_to_ids(UNK) not in ids


def test_one_box_answer_is_compact(tok):
    text = format_answer([((10, 20, 50, 60), ((12, 30), (40, 50)))], (128, 128))
    assert len(tok.encode(text, add_special_tokens=False)) <= 50


def test_model_ids_match_tokenizer_and_save_load(saved, tok):
    vlm = load_vlm(saved, device="cpu")
    cfg = vlm.model.config
    ptok = vlm.processor.tokenizer
    assert cfg.image_token_id == ptok.convert_tokens_to_ids("<|image_pad|>")
    assert cfg.vision_start_token_id == ptok.convert_tokens_to_ids("<|vision_start|>")
    assert cfg.text_config.vocab_size == len(ptok) and ptok.eos_token == "<|im_end|>"
    assert 1_000_000 < vlm.model.num_parameters() < 4_000_000
    img = Image.fromarray(np.zeros((128, 128, 3), np.uint8))
    batch = vlm.encode([img], ["the red circle"])
    assert int((batch["input_ids"] == cfg.image_token_id).sum()) == 64
    assert int(batch["mm_token_type_ids"].sum()) == 64
    torch.manual_seed(0)
    options = GenerationOptions(max_new_tokens=6, do_sample=True)
    texts, _ = vlm.generate([img], ["the red circle"], options)
    # the exact words the seeded, untrained prompter samples from its domain vocabulary
    assert texts == [" Rightmost sharp shapes from And with"]
    chat = vlm.processor.apply_chat_template(
        vlm.messages("the red circle", img), tokenize=False, add_generation_prompt=True
    )
    assert (
        chat.endswith("<|im_start|>assistant\n")
        and build_messages("the red circle")[1]["content"] in chat
    )
    # the user's words come before the image, in generation and in training alike
    user = "<|im_start|>user\nQuery: the red circle<|vision_start|><|image_pad|><|vision_end|>"
    assert user + "<|im_end|>" in chat
    assert chat.index("the red circle") < chat.index("<|vision_start|>")


def test_vision_scale_matches_text_embeddings():
    import torch

    from genseg_lib.stage0.prompter import match_vision_scale

    model, processor = build_synthref_prompter()
    emb = float(model.model.language_model.embed_tokens.weight.detach().std())
    images = [s.load_image() for s in synthref_samples("val", 4, seed=0)]
    batch = processor.image_processor(images=images, return_tensors="pt")
    with torch.no_grad():
        out = model.model.visual(batch["pixel_values"], grid_thw=batch["image_grid_thw"])
    assert abs(float(out.pooler_output.std()) / emb - 1) < 0.05  # built at the text scale
    again = match_vision_scale(model, processor, 128)
    assert all(abs(f - 1) < 0.05 for f in again.values())  # already matched: ~no-op
