"""The demo's function, figure and widget, headless."""

import numpy as np

from genseg_lib.analysis.demo import build_widget, render, run_query
from genseg_lib.data.synthref import synthref_samples
from genseg_lib.models.vlm import GenerationOptions
from genseg_lib.segment.classical import GrabCutSegmenter


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
    # the right panel tints exactly the mask's pixels and leaves every other pixel as it was
    drawn = np.asarray(fig.axes[1].images[0].get_array())
    changed = (drawn != s.image).any(axis=2)
    assert np.array_equal(changed, res.mask & (s.image != drawn).any(axis=2))
    assert changed[res.mask].mean() > 0.95 and not changed[~res.mask].any()


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
    picker, upload, query, button, out = ui.children
    picker.value = 2
    assert query.value == samples[2].query
    ui.run()
    assert ui.last_result.query == samples[2].query and ui.last_result.answer.no_target
