"""The demo's function, figure and widget, headless."""

import io
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from genseg_lib.analysis.demo import (
    QueryRefused,
    build_widget,
    known_words,
    letterbox,
    render,
    run_query,
    unknown_words,
)
from genseg_lib.data.synthref import synthref_samples
from genseg_lib.models.vlm import GenerationOptions
from genseg_lib.segment.classical import GrabCutSegmenter

PROMPTER = Path(__file__).resolve().parents[2] / "checkpoints" / "synthref-prompter"


class Fixed:
    """A prompter stub answering one fixed text (the demo must show whatever comes back)."""

    coord_frame = "norm1000"

    def __init__(self, text):
        self.text = text

    def generate(self, images, queries, options=None):
        return [self.text] * len(images), [None] * len(images)


def test_run_query_segments_the_answer():
    s = synthref_samples("val", 4, seed=0)[0]
    (mask,) = s.instance_masks()
    ys, xs = np.nonzero(mask)
    box = [
        xs.min() * 1000 / 128,
        ys.min() * 1000 / 128,
        (xs.max() + 1) * 1000 / 128,
        (ys.max() + 1) * 1000 / 128,
    ]
    cx, cy = xs.mean() * 1000 / 128, ys.mean() * 1000 / 128
    text = f'<think>the one</think><answer>[{{"bbox_2d": {[round(v) for v in box]}, "points": [[{cx:.0f}, {cy:.0f}], [{cx:.0f}, {cy:.0f}]]}}]</answer>'
    res = run_query(Fixed(text), GrabCutSegmenter(), s.image, s.query)
    assert res.answer.format_ok and res.answer.think == "the one"
    iou = (res.mask & mask).sum() / (res.mask | mask).sum()
    assert iou > 0.8
    fig = render(res)
    assert len(fig.axes) == 2
    # the right panel shows the image untouched and outlines the mask: every outline vertex
    # lies between a mask pixel and a background pixel
    right = fig.axes[1]
    assert np.array_equal(np.asarray(right.images[0].get_array()), s.image)
    vertices = np.concatenate([p.vertices for c in right.collections for p in c.get_paths()])
    assert len(vertices) > 20
    for x, y in vertices:
        near = {
            bool(res.mask[yy, xx])
            for yy in {int(np.floor(y)), int(np.ceil(y))}
            for xx in {int(np.floor(x)), int(np.ceil(x))}
        }
        assert near == {True, False}, (x, y)


def test_no_target_and_garbage_render(tiny_vlm):
    img = np.zeros((64, 64, 3), np.uint8)
    res = run_query(
        Fixed("<think>x</think><answer>[]</answer>"), GrabCutSegmenter(), img, "the cat"
    )
    assert res.answer.no_target and not res.mask.any()
    res = run_query(
        tiny_vlm, GrabCutSegmenter(), img, "the red circle", GenerationOptions(max_new_tokens=8)
    )
    assert not res.answer.format_ok and not res.mask.any()
    drawn = np.asarray(render(res).axes[1].images[0].get_array())
    assert np.array_equal(drawn, img)  # nothing segmented: the image is shown untouched


def test_widget_headless_click():
    samples = synthref_samples("val", 4, seed=0)
    ui = build_widget(Fixed("<think>x</think><answer>[]</answer>"), GrabCutSegmenter(), samples)
    ui.picker.value = 2
    assert ui.query.value == samples[2].query
    ui.run()
    assert ui.last_result.query == samples[2].query and ui.last_result.answer.no_target
    assert (ui.button.description, ui.button.disabled) == ("Segment", False)  # not busy after


class WordLevel(Fixed):
    """A stub with the shipped SynthRef prompter's word-level tokenizer."""

    def __init__(self, text):
        from transformers import AutoTokenizer

        super().__init__(text)
        self.processor = SimpleNamespace(tokenizer=AutoTokenizer.from_pretrained(PROMPTER))


def test_unknown_words_and_empty_queries_are_refused_before_the_model_runs(capsys):
    vlm = WordLevel("<think>x</think><answer>[]</answer>")
    tok = vlm.processor.tokenizer
    assert unknown_words(tok, "a photo of a dog") == ["photo", "dog"]
    assert unknown_words(tok, "the small red ring left of the blue cup") == []
    assert unknown_words(None, "a photo of a dog") == []  # BPE prompters read every word
    words = known_words(tok)
    assert "crescent" in words["shapes"] and words["relations"] == [
        "left of",
        "right of",
        "above",
        "below",
    ]
    img = np.zeros((128, 128, 3), np.uint8)
    with pytest.raises(QueryRefused, match="'photo', 'dog'"):
        run_query(vlm, GrabCutSegmenter(), img, "a photo of a dog")
    with pytest.raises(QueryRefused, match="type a query"):
        run_query(vlm, GrabCutSegmenter(), img, "   ")
    samples = synthref_samples("val", 4, seed=0)
    ui = build_widget(vlm, GrabCutSegmenter(), samples)
    ui.query.value = "the dog"
    assert "unknown word(s): dog" in ui.flag.value
    ui.run()
    assert ui.last_result is None
    # (headless, the output area passes prints through)
    assert "Not run: this prompter does not know the word(s) 'dog'" in capsys.readouterr().out


def test_letterbox_keeps_the_aspect_and_pads_with_the_border_colour():
    img = Image.new("RGB", (320, 240), (10, 20, 30))
    img.paste((200, 0, 0), (100, 80, 220, 160))  # a red block in the middle
    box = letterbox(img, 128)
    arr = np.asarray(box)
    assert box.size == (128, 128)
    # 320x240 -> 128x96, centred: 16 rows of padding above and below
    assert (arr[:16] == (10, 20, 30)).all() and (arr[-16:] == (10, 20, 30)).all()
    assert (arr[64, 64] == (200, 0, 0)).all() and (arr[16:112, 0] == (10, 20, 30)).all()


def test_uploads_are_letterboxed_and_cleared():
    samples = synthref_samples("val", 4, seed=0)
    vlm = Fixed("<think>x</think><answer>[]</answer>")
    ui = build_widget(vlm, GrabCutSegmenter(), samples, input_size=128)
    big = io.BytesIO()
    Image.fromarray(samples[1].image).resize((320, 240)).save(big, format="PNG")
    upload = (
        {
            "name": "big.png",
            "type": "image/png",
            "size": 1,
            "content": memoryview(big.getvalue()),
            "last_modified": datetime.now(UTC),
        },
    )
    ui.upload.value = upload
    assert not ui.clear.disabled
    ui.run()
    assert ui.last_result.image.shape == (128, 128, 3)
    assert "320x240 image was letterboxed to 128x128" in ui.last_result.note
    ui.clear.click()
    assert not ui.upload.value and ui.clear.disabled
    ui.run()
    assert np.array_equal(ui.last_result.image, samples[0].image) and ui.last_result.note == ""
    ui.upload.value = upload
    ui.picker.value = 3  # picking a sample replaces the upload
    assert not ui.upload.value
    ui.run()
    assert np.array_equal(ui.last_result.image, samples[3].image)
