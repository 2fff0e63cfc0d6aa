"""The demo behind notebooks/05_demo: one query on one image -> reasoning, prompts, mask.

`run_query` and `render` are plain functions (tested headless); `build_widget` wires them to
ipywidgets: pick a sample or upload an image, type a query, press Segment.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from genseg_lib.analysis.viz import draw, grid
from genseg_lib.answer import Answer, parse_answer
from genseg_lib.data import Sample
from genseg_lib.masks import union_masks
from genseg_lib.models.vlm import VLM, GenerationOptions
from genseg_lib.segment.base import InstancePrompt, PromptableSegmenter, as_rgb_array


@dataclass
class DemoResult:
    image: np.ndarray  # RGB uint8 (H, W, 3)
    query: str
    text: str  # the model's raw answer (reasoning included)
    answer: Answer
    mask: np.ndarray  # union of instance masks, bool (H, W)


def run_query(
    vlm: VLM,
    segmenter: PromptableSegmenter,
    image: Image.Image | np.ndarray,
    query: str,
    options: GenerationOptions | None = None,
) -> DemoResult:
    """Ask the prompter, parse its answer, segment the prompts."""
    rgb = as_rgb_array(image)
    pil = Image.fromarray(rgb)
    texts, frames = vlm.generate([pil], [query], options or GenerationOptions(max_new_tokens=256))
    answer = parse_answer(texts[0], pil.size, vlm.coord_frame, frame_size=frames[0])
    prompts = [InstancePrompt.from_instance(i) for i in answer.instances]
    masks = segmenter.segment([rgb], [prompts])[0]
    return DemoResult(rgb, query, texts[0], answer, union_masks(masks, shape=rgb.shape[:2]))


def render(result: DemoResult):
    """A figure: the image with boxes and points, and with the mask overlay."""
    fig, (left, right) = grid(2, cols=2, size=3.6)
    verdict = (
        "no target" if result.answer.no_target else f"{len(result.answer.instances)} instance(s)"
    )
    draw(left, result.image, result.answer.instances, title=f"{result.query}\n{verdict}")
    draw(right, result.image, mask=result.mask, title="mask (union)")
    return fig


def build_widget(
    vlm: VLM,
    segmenter: PromptableSegmenter,
    samples: Sequence[Sample],
    options: GenerationOptions | None = None,
):
    """ipywidgets UI: sample picker or upload, query box, Segment button, output area."""
    import ipywidgets as W
    import matplotlib.pyplot as plt
    from IPython.display import display

    picker = W.Dropdown(
        options=[(f"{s.sample_id}: {s.query}", i) for i, s in enumerate(samples)],
        description="sample",
        layout=W.Layout(width="95%"),
    )
    upload = W.FileUpload(accept="image/*", multiple=False, description="or upload")
    query = W.Text(
        value=samples[0].query if samples else "", description="query", layout=W.Layout(width="95%")
    )
    button = W.Button(description="Segment", button_style="primary")
    out = W.Output()

    def on_pick(change):
        query.value = samples[change["new"]].query

    def current_image():
        if upload.value:
            item = (
                upload.value[0]
                if isinstance(upload.value, (list, tuple))
                else next(iter(upload.value.values()))
            )
            return Image.open(io.BytesIO(bytes(item["content"]))).convert("RGB")
        return samples[picker.value].load_image()

    def on_click(_):
        out.clear_output(wait=True)
        with out:
            result = run_query(vlm, segmenter, current_image(), query.value, options)
            ui.last_result = result
            print(result.text)
            display(render(result))
            plt.close("all")

    picker.observe(on_pick, names="value")
    button.on_click(on_click)
    ui = W.VBox([picker, upload, query, button, out])
    ui.last_result = None
    ui.run = lambda: on_click(None)  # headless trigger (tests, papermill)
    return ui
