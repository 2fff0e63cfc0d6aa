"""A pixel-frame (Qwen2.5-VL-style) model trains and evaluates in pixels end to end: the GRPO
prompt, the reward columns and the evaluation parser all use the frame the model answers in."""

import json

import pytest

from genseg_lib.data import load_dataset
from genseg_lib.data.synthref import write_synthref
from genseg_lib.evaluate import PREDICTIONS, EvalConfig, VLMPrompter, evaluate
from genseg_lib.models.build import build_tiny_qwen25vl
from genseg_lib.models.vlm import GenerationOptions, load_vlm
from genseg_lib.segment.classical import GrabCutSegmenter
from genseg_lib.train.grpo import recipe_settings, train


@pytest.fixture(scope="module")
def qwen25(tmp_path_factory):
    return build_tiny_qwen25vl(tmp_path_factory.mktemp("q25") / "model")


def test_pixel_frame_model_trains_and_evaluates_in_pixels(qwen25, tmp_path):
    write_synthref(tmp_path / "data", 40, seed=0)
    seen = []

    def spy(prompts, completions, **columns):
        seen.append((columns["coord_frame"], columns["frame_size"], str(prompts[0][0]["content"])))
        return [0.0] * len(completions)

    args, grpo = recipe_settings(
        "genseg-r1",
        {
            "model": str(qwen25),
            "dataset": "synthref:train",
            "root": str(tmp_path / "data"),
            "out": str(tmp_path / "run"),
            "limit": 4,
            "max_steps": 1,
            "per_device_train_batch_size": 2,
            "num_generations": 2,
            "max_completion_length": 8,
            "use_cpu": True,
            "gradient_checkpointing": False,
            "report_to": "none",
            "save_strategy": "no",
        },
    )
    train(args, grpo, [spy])
    frames, sizes, system = seen[0]
    assert set(frames) == {"pixels"}
    assert "pixel positions" in system and "0 to 1000" not in system
    # SynthRef images are 128 x 128: the processor (patch 14 x merge 2) resizes them to 140 x 140
    assert [list(s) for s in sizes] == [[140, 140]] * len(sizes)

    samples = load_dataset("synthref", tmp_path / "data", "val")[:3]
    vlm = load_vlm(tmp_path / "run", device="cpu")
    assert vlm.coord_frame == "pixels"
    evaluate(
        samples,
        VLMPrompter(vlm, GenerationOptions(max_new_tokens=4)),
        GrabCutSegmenter(),
        tmp_path / "eval",
        EvalConfig(batch_size=3),
    )
    records = [json.loads(x) for x in (tmp_path / "eval" / PREDICTIONS).read_text().splitlines()]
    assert {r["coord_frame"] for r in records} == {"pixels"}
    assert [r["frame_size"] for r in records] == [[140, 140]] * 3  # the frame training used
