"""Tables and figures under ``reports/<profile>/``, always labelled with their profile, with
the paper's numbers beside measured ones (docs/method.md §1)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# docs/method.md §1, in percent. "≈" values are derived from the paper's stated gaps.
PAPER_NUMBERS: list[dict[str, Any]] = [
    {"benchmark": "RefCOCOg val", "model": "GenSeg-R1-8B", "metric": "cIoU", "paper": 71.27},
    {"benchmark": "RefCOCOg val", "model": "GenSeg-R1-8B", "metric": "gIoU", "paper": 73.82},
    {"benchmark": "RefCOCOg val", "model": "Qwen3-VL-8B Instruct", "metric": "cIoU", "paper": 56.0},
    {"benchmark": "RefCOCOg val", "model": "Qwen3-VL-8B Instruct", "metric": "gIoU", "paper": 51.9},
    {"benchmark": "RefCOCOg val", "model": "Seg-Zero-7B", "metric": "cIoU", "paper": 68.3},
    {"benchmark": "RefCOCOg val", "model": "GenSeg-R1", "metric": "box_mIoU", "paper": 81.01},
    {"benchmark": "gRefCOCO val", "model": "GenSeg-R1-G", "metric": "target_mIoU", "paper": 76.69},
    {"benchmark": "gRefCOCO val", "model": "GenSeg-R1-G", "metric": "N_acc", "paper": 82.40},
    {"benchmark": "gRefCOCO val", "model": "GenSeg-R1-G", "metric": "cIoU", "paper": 76.83},
    {"benchmark": "ReasonSeg test", "model": "GenSeg-R1-4B", "metric": "gIoU", "paper": 68.40},
    {"benchmark": "ReasonSeg test", "model": "Seg-Zero-7B", "metric": "gIoU", "paper": 61.4},
    {"benchmark": "ReasonSeg test", "model": "Seg-R1-7B", "metric": "gIoU", "paper": 57.7},
]
DATASET_BENCHMARK = {
    "refcocog:val": "RefCOCOg val",
    "grefcoco:val": "gRefCOCO val",
    "reasonseg:test": "ReasonSeg test",
}
PROFILE_NOTE = {
    "smoke": "profile `smoke`: SynthRef with small models on CPU — a pipeline check on a different "
    "dataset, NOT a reproduction of the paper's numbers",
    "paper": "profile `paper`: real weights and data",
    "paper-dryrun": "PROFILE `paper-dryrun`: THE PAPER'S CODE PATH ON STAND-INS (datasets written "
    "from SynthRef in the public formats, random-initialised models) — NOTHING HERE IS A RESULT",
}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.2f}"
    return str(value)


def save_table(
    df: pd.DataFrame, report_dir: str | Path, name: str, profile: str, caption: str
) -> Path:
    """Write ``tables/<name>.md`` (caption + profile line + table) and ``tables/<name>.csv``."""
    out = Path(report_dir) / "tables"
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / f"{name}.csv", index=False)
    header = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "---|" * len(df.columns)
    rows = ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    text = "\n".join(
        [
            f"**{caption}**",
            "",
            f"_{PROFILE_NOTE.get(profile, profile)}_",
            "",
            header,
            rule,
            *rows,
            "",
        ]
    )
    (out / f"{name}.md").write_text(text)
    return out / f"{name}.md"


def save_figure(fig: Any, report_dir: str | Path, name: str) -> Path:
    """Save a matplotlib figure as ``figures/<name>.png``."""
    out = Path(report_dir) / "figures"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path


def metrics_frame(summaries: dict[str, dict[str, Any]], keys: list[str]) -> pd.DataFrame:
    """One row per run (``name -> summary.json``), metric columns in percent."""
    rows = []
    for name, summary in summaries.items():
        row: dict[str, Any] = {"run": name, "n": summary["n_samples"]}
        for k in keys:
            v = summary["overall"].get(k, math.nan)
            row[k] = 100 * v if isinstance(v, (int, float)) else v
        rows.append(row)
    return pd.DataFrame(rows)


def load_summary(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def paper_comparison(
    measured: dict[tuple[str, str, str], float], profile: str, measured_on: str
) -> pd.DataFrame:
    """The paper's rows with a ``measured`` column from ``(benchmark, model, metric) -> percent``
    (NaN where this repository has no matching run), the data it was measured on, the profile."""
    df = pd.DataFrame(PAPER_NUMBERS)
    df["measured"] = [
        measured.get((r.benchmark, r.model, r.metric), math.nan) for r in df.itertuples()
    ]
    df["measured on"] = measured_on
    df["profile"] = profile
    return df


def reward_curves(state: dict[str, Any]) -> pd.DataFrame:
    """Per-step reward terms (``rewards/<term>/mean``) and total reward from a trainer state."""
    rows = [
        {
            "step": h["step"],
            **{
                k.split("/")[1]: v
                for k, v in h.items()
                if k.startswith("rewards/") and k.endswith("/mean")
            },
            "reward": h.get("reward"),
        }
        for h in state["log_history"]
        if "reward" in h
    ]
    return pd.DataFrame(rows)


# which of this repository's arms stands in for which paper model (docs/method.md §1)
RUN_FOR_PAPER_MODEL = {
    "baseline": ["Qwen3-VL-8B Instruct"],
    "genseg-r1": ["GenSeg-R1-8B", "GenSeg-R1", "GenSeg-R1-4B"],
    "genseg-r1-g": ["GenSeg-R1-G"],
}


def seed_mean(summaries: list[dict[str, Any]], metric: str) -> float:
    """An overall metric in percent, averaged over the summaries of one run's seeds."""
    return 100 * float(np.mean([s["overall"][metric] for s in summaries]))


def measured_for_paper(
    runs: dict[tuple[str, str], list[dict[str, Any]]], profile: str
) -> dict[tuple[str, str, str], float]:
    """``(run kind, dataset) -> summaries (seeds)`` into ``(benchmark, paper model, metric) ->
    percent`` (mean over seeds).

    In the paper profile a run counts for the benchmark of its dataset; in the smoke profile
    SynthRef runs stand in for every benchmark (and the table says so)."""
    out: dict[tuple[str, str, str], float] = {}
    for (kind, dataset), summaries in runs.items():
        benchmarks = (
            list(DATASET_BENCHMARK.values())
            if profile == "smoke"
            else [DATASET_BENCHMARK.get(dataset)]
        )
        metrics = {k for s in summaries for k, v in s["overall"].items() if isinstance(v, float)}
        for bench in filter(None, benchmarks):
            for paper_model in RUN_FOR_PAPER_MODEL.get(kind, []):
                for metric in metrics:
                    out[(bench, paper_model, metric)] = seed_mean(summaries, metric)
    return out


TRAINED_ARMS = ("genseg-r1", "genseg-r1-g", "control", "reference")
GAIN_METRICS = ["gIoU", "cIoU", "target_mIoU", "N_acc", "T_acc", "box_mIoU"]


def grpo_gains(runs: dict[tuple[str, str], list[dict[str, Any]]]) -> pd.DataFrame:
    """Per trained arm and dataset: metric before (baseline), after (mean over seeds) and
    the gain, in percent / percentage points."""
    rows = []
    for (kind, dataset), summaries in sorted(runs.items()):
        base = runs.get(("baseline", dataset))
        if kind not in TRAINED_ARMS or not base:
            continue
        for metric in GAIN_METRICS:
            before, after = seed_mean(base, metric), seed_mean(summaries, metric)
            rows.append(
                {
                    "run": kind,
                    "dataset": dataset,
                    "seeds": len(summaries),
                    "metric": metric,
                    "before": before,
                    "after": after,
                    "gain": after - before,
                }
            )
    return pd.DataFrame(rows)


def mean_spread(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value; NaN-free values only)."""
    vals = [v for v in values if not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return math.nan, math.nan
    return float(np.mean(vals)), float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0


def seed_table(
    groups: dict[str, list[dict[str, Any]]], metrics: Sequence[str], section: str = "overall"
) -> pd.DataFrame:
    """A row per group of runs (seeds): ``metric`` mean and ``metric ±`` spread, in percent."""
    rows = []
    for name, summaries in groups.items():
        row: dict[str, Any] = {"run": name, "seeds": len(summaries), "n": summaries[0]["n_samples"]}
        for m in metrics:
            mean, sd = mean_spread([100 * s[section][m] for s in summaries])
            row[m], row[f"{m} ±"] = mean, sd
        rows.append(row)
    return pd.DataFrame(rows)
