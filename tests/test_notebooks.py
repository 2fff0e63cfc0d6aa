"""Every notebook runs headless (papermill, smoke profile, smallest parameters) and writes the
tables and figures the reports index promises."""

from pathlib import Path

import pytest

from genseg_lib.reproduce import main

ROOT = Path(__file__).resolve().parents[1]
SMALLEST = {
    "eval_limit": 8,
    "max_new_tokens": 16,
    "max_steps": 1,
    "max_completion_length": 12,
    "num_generations": 2,
    "prompts_per_step": 1,
    "n_samples": 3,
    "n_gallery": 2,
    "seeds": "[0]",
    "sigmas": "[0.0, 0.2]",
    "room_limit": 40,
    "ceiling_steps": 2,
}
TABLES = [
    "data_counts",
    "baseline",
    "baseline_validity",
    "grpo_before_after",
    "grpo_stage1",
    "grpo_stage2",
    "grpo_points_by_shape",
    "grpo_no_target_by_wording",
    "prompt_ablation",
    "prompt_room",
    "grpo_goals",
    "reward_fidelity",
    "reward_fidelity_correlation",
    "paper_tables",
    "grpo_gains",
]
FIGURES = [
    "data_distributions",
    "data_gallery",
    "grpo_reward_curves",
    "grpo_gallery",
    "grpo_points_by_shape",
    "prompt_ablation",
    "reward_fidelity",
    "demo_example",
]


@pytest.mark.slow
def test_all_notebooks_execute_in_smoke_profile(tmp_path, monkeypatch):
    monkeypatch.setenv("GENSEG_CACHE", str(tmp_path / "cache"))  # kernels inherit it
    reports = tmp_path / "reports"
    args = ["--profile", "smoke", "--notebooks", str(ROOT / "notebooks"), "--reports", str(reports)]
    for key, value in SMALLEST.items():
        args += ["-p", f"{key}={value}"]
    main(args)
    smoke = reports / "smoke"
    executed = sorted(p.name for p in (smoke / "notebooks").glob("*.ipynb"))
    assert executed == sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    for t in TABLES:
        md = (smoke / "tables" / f"{t}.md").read_text()
        assert "profile `smoke`" in md and (smoke / "tables" / f"{t}.csv").exists(), t
    for f in FIGURES:
        assert (smoke / "figures" / f"{f}.png").stat().st_size > 1000, f
    # the long reference B trains the steps it is given, beside the 1-step runs
    stage1 = (smoke / "tables" / "grpo_stage1.md").read_text()
    assert "reference B, long (+2 supervised steps at 0.001, oracle prompts)" in stage1
    index = (reports / "README.md").read_text()
    assert "smoke/tables/paper_tables.md" in index and "profile `smoke`" in index
    assert "not a reproduction" in (smoke / "tables" / "paper_tables.md").read_text()
