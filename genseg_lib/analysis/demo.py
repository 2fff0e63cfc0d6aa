"""The demo behind notebooks/05_demo (and `make demo`): one query on one image -> reasoning,
prompts, mask.

`run_query`, `render`, `letterbox` and `unknown_words` are plain functions (tested headless);
`build_widget` wires them to ipywidgets: pick a sample or upload an image, type a query, press
Segment. A word-level prompter (the SynthRef one) only knows its domain's words, so a query
with other words is refused before the model runs rather than answered with garbage.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from genseg_lib.analysis.viz import draw, grid
from genseg_lib.answer import Answer, parse_answer
from genseg_lib.data import Sample
from genseg_lib.data.synthref.queries import EXTREMES, RELATIONS
from genseg_lib.data.synthref.scenes import COLOURS, SHAPES, SIZES
from genseg_lib.masks import union_masks
from genseg_lib.models.vlm import VLM, GenerationOptions
from genseg_lib.segment.base import InstancePrompt, PromptableSegmenter, as_rgb_array

WORD = re.compile(r"[A-Za-z]+")
# the SynthRef words a reader can use, by kind (shown when the prompter is word-level)
WORD_GROUPS = {
    "colours": list(COLOURS),
    "shapes": list(SHAPES),
    "sizes": list(SIZES),
    "relations": list(RELATIONS),
    "ordinals": list(EXTREMES),
    "others": ["the", "all", "and", "shape", "shapes", "object", "that", "is", "has"],
}


class QueryRefused(ValueError):
    """A query the prompter cannot read: empty, or with words outside its vocabulary."""


@dataclass
class DemoResult:
    image: np.ndarray  # RGB uint8 (H, W, 3): what the prompter saw (letterboxed uploads)
    query: str
    text: str  # the model's raw answer (reasoning included)
    answer: Answer
    mask: np.ndarray  # union of instance masks, bool (H, W)
    note: str = ""  # how the image was prepared, when it was


def _tokenizer(vlm: Any) -> Any:
    processor = getattr(vlm, "processor", None)
    return getattr(processor, "tokenizer", None)


def unknown_words(tokenizer: Any, query: str) -> list[str]:
    """Words of ``query`` the tokenizer can only read as its unknown token (in query order,
    once each); none for a tokenizer without one (byte-level BPE reads everything)."""
    unk = getattr(tokenizer, "unk_token_id", None) if tokenizer is not None else None
    if unk is None:
        return []
    out: list[str] = []
    for word in WORD.findall(query):
        # queries follow "Query: " in the prompt, so every word is read with a leading space
        if unk in tokenizer.encode(" " + word, add_special_tokens=False) and word not in out:
            out.append(word)
    return out


def known_words(tokenizer: Any) -> dict[str, list[str]] | None:
    """For a word-level prompter, the domain words it knows, by kind; None for BPE ones."""
    if getattr(tokenizer, "unk_token_id", None) is None:
        return None
    return {
        kind: [w for w in words if not unknown_words(tokenizer, w)]
        for kind, words in WORD_GROUPS.items()
    }


def check_query(tokenizer: Any, query: str) -> str:
    """The query, stripped; `QueryRefused` when it is empty or holds unknown words."""
    query = query.strip()
    if not query:
        raise QueryRefused("type a query first")
    unknown = unknown_words(tokenizer, query)
    if unknown:
        raise QueryRefused(
            f"this prompter does not know the word(s) {', '.join(repr(w) for w in unknown)}: "
            "it would read them as a blank and answer about something else. Use the words "
            "listed under the query box."
        )
    return query


def letterbox(image: Image.Image, size: int) -> Image.Image:
    """``image`` scaled to fit a ``size`` x ``size`` square (aspect ratio kept) and padded
    with its median border colour, the size a prompter trained on square images expects."""
    w, h = image.size
    scale = size / max(w, h)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    scaled = image.convert("RGB").resize((new_w, new_h), Image.Resampling.BILINEAR)
    arr = np.asarray(image.convert("RGB"))
    border = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])
    fill = tuple(int(v) for v in np.median(border, axis=0))
    canvas = Image.new("RGB", (size, size), fill)
    canvas.paste(scaled, ((size - new_w) // 2, (size - new_h) // 2))
    return canvas


def run_query(
    vlm: VLM,
    segmenter: PromptableSegmenter,
    image: Image.Image | np.ndarray,
    query: str,
    options: GenerationOptions | None = None,
    input_size: int | None = None,
) -> DemoResult:
    """Check the query, ask the prompter, parse its answer, segment the prompts. With
    ``input_size``, an image of another size is letterboxed to that square first."""
    query = check_query(_tokenizer(vlm), query)
    pil = Image.fromarray(as_rgb_array(image))
    note = ""
    if input_size and pil.size != (input_size, input_size):
        note = (
            f"the {pil.size[0]}x{pil.size[1]} image was letterboxed to {input_size}x{input_size}, "
            "the size this prompter was trained on"
        )
        pil = letterbox(pil, input_size)
    rgb = np.asarray(pil)
    texts, frames = vlm.generate([pil], [query], options or GenerationOptions(max_new_tokens=256))
    answer = parse_answer(texts[0], pil.size, vlm.coord_frame, frame_size=frames[0])
    prompts = [InstancePrompt.from_instance(i) for i in answer.instances]
    masks = segmenter.segment([rgb], [prompts])[0]
    return DemoResult(rgb, query, texts[0], answer, union_masks(masks, shape=rgb.shape[:2]), note)


def render(result: DemoResult):
    """A figure: the image with boxes and points, and with the mask drawn as an outline (a
    tint would change the very colours the queries name)."""
    fig, (left, right) = grid(2, cols=2, size=3.6)
    verdict = (
        "no target" if result.answer.no_target else f"{len(result.answer.instances)} instance(s)"
    )
    draw(left, result.image, result.answer.instances, title=f"{result.query}\n{verdict}")
    draw(right, result.image, mask=result.mask, title="mask (union, outlined)", outline=True)
    return fig


def build_widget(
    vlm: VLM,
    segmenter: PromptableSegmenter,
    samples: Sequence[Sample],
    options: GenerationOptions | None = None,
    input_size: int | None = None,
):
    """ipywidgets UI: sample picker or upload (with a clear button), query box with the
    prompter's vocabulary and a live unknown-word flag, Segment button (busy while it runs),
    output area. ``input_size``: letterbox uploads to this square (the prompter's training
    size)."""
    import ipywidgets as W
    import matplotlib.pyplot as plt
    from IPython.display import display

    tokenizer = _tokenizer(vlm)
    picker = W.Dropdown(
        options=[(f"{s.sample_id}: {s.query}", i) for i, s in enumerate(samples)],
        description="sample",
        layout=W.Layout(width="95%"),
    )
    upload = W.FileUpload(accept="image/*", multiple=False, description="or upload")
    clear = W.Button(description="clear upload", disabled=True)
    source = W.HTML()
    query = W.Text(
        value=samples[0].query if samples else "", description="query", layout=W.Layout(width="95%")
    )
    groups = known_words(tokenizer)
    vocab = W.HTML(
        "<small>words this prompter knows: "
        + "; ".join(f"<b>{k}</b> {', '.join(v)}" for k, v in groups.items())
        + " (plurals of the shapes too)</small>"
        if groups
        else ""
    )
    flag = W.HTML()
    button = W.Button(description="Segment", button_style="primary", icon="play")
    out = W.Output()

    def uploaded() -> tuple[str, bytes] | None:
        if not upload.value:
            return None
        item = (
            upload.value[0]
            if isinstance(upload.value, (list, tuple))
            else next(iter(upload.value.values()))
        )
        return item.get("name", "upload"), bytes(item["content"])

    def show_source(*_):
        up = uploaded()
        clear.disabled = up is None
        if up is None:
            source.value = f"<small>image: sample {samples[picker.value].sample_id}</small>"
        else:
            fit = f", letterboxed to {input_size}x{input_size}" if input_size else ""
            source.value = f"<small>image: upload {up[0]}{fit}</small>"

    def show_flag(*_):
        unknown = unknown_words(tokenizer, query.value)
        flag.value = (
            f"<span style='color:#b00020'>unknown word(s): {', '.join(unknown)}</span>"
            if unknown
            else ""
        )

    def on_pick(change):
        query.value = samples[change["new"]].query
        upload.value = ()  # a picked sample replaces an upload
        show_source()

    def on_clear(_):
        upload.value = ()
        show_source()

    def current_image():
        up = uploaded()
        if up is not None:
            return Image.open(io.BytesIO(up[1])).convert("RGB")
        return samples[picker.value].load_image()

    def on_click(_):
        button.disabled, button.description, button.icon = True, "Segmenting…", "spinner"
        out.clear_output(wait=True)
        try:
            with out:
                try:
                    result = run_query(
                        vlm, segmenter, current_image(), query.value, options, input_size
                    )
                except QueryRefused as exc:
                    ui.last_result = None
                    print(f"Not run: {exc}")
                    return
                ui.last_result = result
                if result.note:
                    print(f"({result.note})")
                print(result.text)
                display(render(result))
                plt.close("all")
        finally:
            button.disabled, button.description, button.icon = False, "Segment", "play"

    picker.observe(on_pick, names="value")
    upload.observe(show_source, names="value")
    query.observe(show_flag, names="value")
    clear.on_click(on_clear)
    button.on_click(on_click)
    show_source()
    show_flag()
    ui = W.VBox([picker, W.HBox([upload, clear, source]), query, vocab, flag, button, out])
    ui.picker, ui.upload, ui.clear, ui.query, ui.flag, ui.button, ui.out = (
        picker,
        upload,
        clear,
        query,
        flag,
        button,
        out,
    )
    ui.last_result = None
    ui.run = lambda: on_click(None)  # headless trigger (tests, papermill)
    return ui
