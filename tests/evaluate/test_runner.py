"""Evaluation runner: metrics end to end, resume after kills, bad answers, missing images."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from genseg_lib.data import load_dataset, select_samples
from genseg_lib.data.synthref import synthref_samples, write_synthref
from genseg_lib.evaluate import (
    PREDICTIONS,
    EvalConfig,
    OraclePrompter,
    VLMPrompter,
    evaluate,
    read_predictions,
)
from genseg_lib.evaluate.__main__ import main
from genseg_lib.models.vlm import GenerationOptions
from genseg_lib.segment.classical import GrabCutSegmenter

ROOT = Path(__file__).resolve().parents[2]


class Scripted:
    """A prompter that answers from a fixed list of texts (pixel frame = image pixels)."""

    coord_frame = "pixels"

    def __init__(self, texts):
        self.texts = list(texts)

    def answer(self, samples, images):
        return [self.texts.pop(0) for _ in samples], [None] * len(samples)

    def describe(self):
        return {"type": "scripted"}


def test_oracle_classical_on_synthref(tmp_path):
    samples = synthref_samples("val", 40, seed=0)
    summary = evaluate(
        samples, OraclePrompter(), GrabCutSegmenter(), tmp_path, meta={"profile": "smoke"}
    )
    assert summary["n_samples"] == 40 and summary["profile"] == "smoke"
    assert summary["overall"]["gIoU"] > 0.95 and summary["overall"]["N_acc"] == 1.0
    assert summary["validity"]["format_ok"] == 1.0
    assert set(summary["by_type"]) == {s.query_type for s in samples}
    recs = [json.loads(line) for line in (tmp_path / PREDICTIONS).read_text().splitlines()]
    assert len(recs) == 40 and {"text", "instances", "iou", "time_generate_s"} <= set(recs[0])
    table = (tmp_path / "results.md").read_text()
    assert "| all | 40 |" in table and "profile: `smoke`" in table
    assert json.loads((tmp_path / "summary.json").read_text())["n_samples"] == 40


def test_hand_computed_scores_and_garbage(tmp_path, data_root):
    # refcocog val: two sentences on the 10x10 square (image 40x30) and a 12-px bar (32x32)
    samples = load_dataset("refcocog", data_root, "val")
    texts = [
        '<think>x</think><answer>[{"bbox_2d": [10, 10, 20, 20], "points": [[12, 12], [15, 15]]}]</answer>',
        "I cannot help with that",  # garbage: invalid, empty prediction, never a crash
        "<think>x</think><answer>[]</answer>",  # says no target on a target sample
    ]

    class BoxSegmenter:  # mask = the box, so the numbers are easy to compute by hand
        def segment(self, images, prompts, keys=None):
            out = []
            for img, plist in zip(images, prompts, strict=True):
                masks = []
                for p in plist:
                    m = np.zeros((img.height, img.width), bool)
                    x1, y1, x2, y2 = (int(v) for v in p.box)
                    m[y1:y2, x1:x2] = True
                    masks.append(m)
                out.append(masks)
            return out

    summary = evaluate(samples, Scripted(texts), BoxSegmenter(), tmp_path)
    o = summary["overall"]
    assert o["gIoU"] == pytest.approx(1 / 3) and o["cIoU"] == pytest.approx(100 / (100 + 100 + 12))
    assert o["T_acc"] == pytest.approx(1 / 3) and o["box_mIoU"] == pytest.approx(1 / 3)
    assert summary["validity"]["format_ok"] == pytest.approx(2 / 3)
    assert summary["validity"]["no_target_answers"] == pytest.approx(1 / 3)
    assert summary["validity"]["top_errors"][0][1] == 1


def test_resume_skips_done_and_repairs_torn_line(tmp_path):
    samples = synthref_samples("val", 12, seed=1)
    full = evaluate(
        samples, OraclePrompter(), GrabCutSegmenter(), tmp_path / "a", EvalConfig(batch_size=4)
    )
    path = tmp_path / "b" / PREDICTIONS
    path.parent.mkdir()
    lines = (tmp_path / "a" / PREDICTIONS).read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:5]) + lines[5][:40])  # killed while writing record 6

    class Counting(OraclePrompter):
        calls = 0

        def answer(self, samples, images):
            Counting.calls += len(samples)
            return super().answer(samples, images)

    resumed = evaluate(
        samples, Counting(), GrabCutSegmenter(), tmp_path / "b", EvalConfig(batch_size=4)
    )
    assert Counting.calls == 7  # only the 7 unfinished samples were redone
    ids = [json.loads(x)["sample_id"] for x in path.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 12
    assert resumed["overall"] == full["overall"]


def test_missing_images(tmp_path):
    write_synthref(tmp_path / "data", 30, seed=0)
    samples = load_dataset("synthref", tmp_path / "data", "val")
    Path(samples[1].image_path).unlink()
    scene = samples[1].source["scene_id"]  # both queries of that scene lose their image
    with pytest.raises(
        FileNotFoundError, match=rf"sample synthref/val/{scene}/\d: image not found"
    ):
        evaluate(samples, OraclePrompter(), GrabCutSegmenter(), tmp_path / "x")
    gone = sum(not Path(s.image_path).exists() for s in samples)
    summary = evaluate(
        samples, OraclePrompter(), GrabCutSegmenter(), tmp_path / "y", EvalConfig(skip_missing=True)
    )
    assert summary["n_skipped"] == gone >= 1 and summary["n_samples"] == len(samples) - gone
    # the image comes back: the skipped samples are redone, the others kept
    write_synthref(tmp_path / "data", 30, seed=0)
    assert all(Path(s.image_path).exists() for s in samples)
    again = evaluate(
        samples, OraclePrompter(), GrabCutSegmenter(), tmp_path / "y", EvalConfig(skip_missing=True)
    )
    assert again["n_skipped"] == 0 and again["n_samples"] == len(samples)


def test_select_samples_seeded():
    samples = synthref_samples("val", 30, seed=0)
    a = select_samples(samples, 10, seed=3)
    assert [s.sample_id for s in a] == [s.sample_id for s in select_samples(samples, 10, seed=3)]
    assert [s.sample_id for s in a] != [s.sample_id for s in select_samples(samples, 10, seed=4)]
    assert len(select_samples(samples, None, 0)) == 30


def test_tiny_vlm_on_real_format_fixtures(tmp_path, data_root, tiny_vlm):
    for name, split in [("refcocog", "val"), ("grefcoco", "val"), ("reasonseg", "val")]:
        samples = load_dataset(name, data_root, split)
        prompter = VLMPrompter(tiny_vlm, GenerationOptions(max_new_tokens=8))
        summary = evaluate(
            samples, prompter, GrabCutSegmenter(), tmp_path / name, EvalConfig(batch_size=2)
        )
        assert summary["n_samples"] == len(samples)
        assert summary["validity"]["format_ok"] == 0.0  # a random model writes nothing parseable


def _lines(path):
    return path.read_text().splitlines() if path.exists() else []


def test_cli_killed_midway_resumes_without_loss_or_duplicates(tmp_path, tiny_vlm_path):
    write_synthref(tmp_path / "data", 80, seed=0)
    args = [
        "--model",
        str(tiny_vlm_path),
        "--segmenter",
        "classical",
        "--dataset",
        "synthref:val",
        "--root",
        str(tmp_path / "data"),
        "--batch-size",
        "2",
        "--max-new-tokens",
        "24",
        "--device",
        "cpu",
        "--profile",
        "smoke",
    ]
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "genseg_lib.evaluate", *args, "--out", str(out)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while len(_lines(out / PREDICTIONS)) < 4 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    n_before = len(_lines(out / PREDICTIONS))
    assert 4 <= n_before < 12, "the run should have been killed midway"
    resumed = main([*args, "--out", str(out)])
    clean = main([*args, "--out", str(tmp_path / "clean")])
    ids = [json.loads(x)["sample_id"] for x in _lines(out / PREDICTIONS)]
    assert len(ids) == len(set(ids)) == 14  # 17.5 % of 80
    a, b = read_predictions(out / PREDICTIONS), read_predictions(tmp_path / "clean" / PREDICTIONS)
    assert {k: v["text"] for k, v in a.items()} == {k: v["text"] for k, v in b.items()}
    assert resumed["overall"] == clean["overall"]


def test_resume_refuses_a_different_run(tmp_path):
    samples = synthref_samples("val", 6, seed=0)
    evaluate(samples, OraclePrompter(), GrabCutSegmenter(), tmp_path, meta={"model": "oracle"})
    evaluate(
        samples,
        OraclePrompter(),
        GrabCutSegmenter(),
        tmp_path,
        meta={"model": "oracle", "profile": "x"},
    )
    with pytest.raises(
        ValueError, match=r"different run \(differs in \['settings.data', 'settings.limit'\]\)"
    ):
        evaluate(
            samples,
            OraclePrompter(),
            GrabCutSegmenter(),
            tmp_path,
            EvalConfig(limit=3),
            meta={"model": "oracle"},
        )
    with pytest.raises(ValueError, match="settings.prompter"):
        evaluate(
            samples, Scripted(["x"] * 6), GrabCutSegmenter(), tmp_path, meta={"model": "oracle"}
        )


def test_resume_refuses_other_data_resolution_or_segmenter_settings(tmp_path, tiny_vlm_path):
    """Coinciding sample ids on other data (another --root), another --max-pixels or other
    segmenter settings are a different run, named by the field that differs."""
    from genseg_lib.models.vlm import load_vlm
    from genseg_lib.segment.classical import GrabCutConfig

    root_a, root_b = tmp_path / "a", tmp_path / "b"
    write_synthref(root_a, 40, seed=0)
    write_synthref(root_b, 40, seed=1)  # same sample ids, other scenes and queries
    a, b = load_dataset("synthref", root_a, "val"), load_dataset("synthref", root_b, "val")
    assert [s.sample_id for s in a] == [s.sample_id for s in b]
    out = tmp_path / "run"
    meta = {"model": "oracle", "dataset": "synthref:val"}
    evaluate(a, OraclePrompter(), GrabCutSegmenter(), out, meta=meta)
    with pytest.raises(ValueError, match=r"differs in \['settings.data'\]"):
        evaluate(b, OraclePrompter(), GrabCutSegmenter(), out, meta=meta)
    other_seg = GrabCutSegmenter(GrabCutConfig(iterations=2))
    with pytest.raises(ValueError, match=r"differs in \['settings.segmenter_settings'\]"):
        evaluate(a, OraclePrompter(), other_seg, out, meta=meta)
    moved = tmp_path / "moved"
    root_a.rename(moved)  # the same data elsewhere is the same run: it resumes
    a = load_dataset("synthref", moved, "val")
    evaluate(a, OraclePrompter(), GrabCutSegmenter(), out, meta=meta)

    opts = GenerationOptions(max_new_tokens=4)
    vlm_out = tmp_path / "vlm"
    small = a[:2]
    evaluate(
        small, VLMPrompter(load_vlm(tiny_vlm_path), opts), GrabCutSegmenter(), vlm_out, meta=meta
    )
    fewer_pixels = VLMPrompter(load_vlm(tiny_vlm_path, max_pixels=64 * 64), opts)
    with pytest.raises(ValueError, match=r"differs in \['settings.prompter'\]"):
        evaluate(small, fewer_pixels, GrabCutSegmenter(), vlm_out, meta=meta)


def test_resume_refuses_a_model_retrained_under_the_same_name(tmp_path, tiny_vlm_path):
    """A model folder retrained in place (same path, other weights) is a different run: its
    half-finished evaluation is never completed with the new model's answers."""
    import shutil

    from genseg_lib.models.vlm import load_vlm

    model = Path(shutil.copytree(tiny_vlm_path, tmp_path / "model"))
    samples = synthref_samples("val", 4, seed=0)
    meta = {"model": str(model), "dataset": "synthref:val"}
    opts = GenerationOptions(max_new_tokens=4)
    out = tmp_path / "run"
    evaluate(samples[:2], VLMPrompter(load_vlm(model), opts), GrabCutSegmenter(), out, meta=meta)
    vlm = load_vlm(model)
    evaluate(samples[:2], VLMPrompter(vlm, opts), GrabCutSegmenter(), out, meta=meta)  # same
    with torch.no_grad():
        next(vlm.model.parameters()).add_(0.01)
    vlm.model.save_pretrained(model)  # "retrained"
    with pytest.raises(ValueError, match=r"differs in \['settings.prompter'\]"):
        evaluate(
            samples[:2], VLMPrompter(load_vlm(model), opts), GrabCutSegmenter(), out, meta=meta
        )


def test_a_corrupt_middle_line_is_quarantined_not_the_records_after_it(tmp_path):
    samples = synthref_samples("val", 10, seed=2)
    full = evaluate(
        samples, OraclePrompter(), GrabCutSegmenter(), tmp_path, EvalConfig(batch_size=5)
    )
    path = tmp_path / PREDICTIONS
    lines = path.read_text().splitlines(keepends=True)
    bad_id = json.loads(lines[3])["sample_id"]
    lines[3] = '{"sample_id": "x", "iou": 0.5, BROKEN\n'
    lines[6] = "[1, 2]\n"  # valid JSON, but not a record
    path.write_text("".join(lines))
    records = read_predictions(path)
    assert len(records) == 8 and bad_id not in records  # the 6 after line 4 are all kept
    quarantine = (tmp_path / "predictions.quarantine.jsonl").read_text().splitlines()
    assert quarantine == ['{"sample_id": "x", "iou": 0.5, BROKEN', "[1, 2]"]
    assert len(path.read_text().splitlines()) == 8  # the bad lines left the file

    class Counting(OraclePrompter):
        calls = 0

        def answer(self, samples, images):
            Counting.calls += len(samples)
            return super().answer(samples, images)

    again = evaluate(samples, Counting(), GrabCutSegmenter(), tmp_path, EvalConfig(batch_size=5))
    assert Counting.calls == 2  # only the two quarantined samples were redone
    assert again["overall"] == pytest.approx(full["overall"], nan_ok=True)  # order of sums only


def test_an_evaluation_in_progress_locks_its_folder(tmp_path):
    from genseg_lib.runinfo import run_lock

    samples = synthref_samples("val", 4, seed=0)
    with run_lock(tmp_path):
        with pytest.raises(RuntimeError, match="in use by another run"):
            evaluate(samples, OraclePrompter(), GrabCutSegmenter(), tmp_path)
    assert not (tmp_path / PREDICTIONS).exists()
