"""Drawing samples, answers and masks with matplotlib (galleries, the demo)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from genseg_lib.answer import Instance

COLOURS = ["#ff3b30", "#34c759", "#0a84ff", "#ffcc00", "#af52de", "#ff9500"]


def overlay(
    image: np.ndarray, mask: np.ndarray, colour: str = "#0a84ff", alpha: float = 0.45
) -> np.ndarray:
    """RGB image with ``mask`` tinted (uint8, same shape)."""
    rgb = np.array(matplotlib.colors.to_rgb(colour)) * 255
    out = np.asarray(image, dtype=np.float32).copy()
    out[mask] = (1 - alpha) * out[mask] + alpha * rgb
    return out.clip(0, 255).astype(np.uint8)


def draw(
    ax,
    image: np.ndarray,
    instances: Sequence[Instance] = (),
    mask: np.ndarray | None = None,
    title: str = "",
    colour: str = "#0a84ff",
    outline: bool = False,
) -> None:
    """Image, optional mask (tinted, or drawn as an outline so the image's own colours stay
    as they are), boxes and points of instances, on one axes."""
    if mask is not None and outline:
        ax.imshow(image)
        if np.any(mask):
            ax.contour(np.asarray(mask, dtype=float), levels=[0.5], colors="white", linewidths=2.2)
            ax.contour(np.asarray(mask, dtype=float), levels=[0.5], colors=colour, linewidths=1.2)
    else:
        ax.imshow(overlay(image, mask, colour) if mask is not None else image)
    for k, inst in enumerate(instances):
        c = COLOURS[k % len(COLOURS)]
        x1, y1, x2, y2 = inst.box
        ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False, lw=1.5, ec=c))
        for x, y in inst.points:
            ax.plot(x - 0.5, y - 0.5, marker="*", ms=9, mec="black", mfc=c)
    ax.set_title(textwrap.fill(title, 34), fontsize=8)
    ax.axis("off")


def grid(n: int, cols: int = 4, size: float = 2.6):
    """A figure with ``n`` axes in rows of ``cols`` (extra axes hidden)."""
    rows = max(1, -(-n // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * size, rows * size * 1.1), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    return fig, list(axes.flat[:n])


def answer_gallery(samples, answers_by_run: dict[str, list], masks_by_run: dict[str, list]):
    """Rows of samples, one column per run: the run's answer (boxes, points, think) and mask
    outline (a tint would change the colours the queries name).

    ``answers_by_run[run][i]`` is an `Answer` for ``samples[i]``; ``masks_by_run`` likewise."""
    runs = list(answers_by_run)
    fig, axes = plt.subplots(
        len(samples), len(runs), figsize=(3.2 * len(runs), 3.3 * len(samples)), squeeze=False
    )
    for i, s in enumerate(samples):
        for j, run in enumerate(runs):
            ans = answers_by_run[run][i]
            think = (ans.think or "").strip()
            verdict = (
                "[] no target"
                if ans.no_target
                else f"{len(ans.instances)} inst."
                if ans.instances
                else "unreadable"
            )
            draw(
                axes[i][j],
                np.asarray(s.load_image()),
                ans.instances,
                mask=masks_by_run[run][i],
                title=f"{run}: {s.query}\nthink: {think[:40]} | {verdict}",
                outline=True,
            )
    return fig
