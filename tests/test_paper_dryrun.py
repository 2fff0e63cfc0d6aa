"""`make reproduce PROFILE=paper-dryrun`: the paper profile's notebooks, branches, recipes and
evaluation sets, run end to end on stand-ins in the public formats (RefCOCOg umd pickle,
gRefCOCO json with no-target refs, ReasonSeg labelme json) with random-initialised Qwen3-VL
and SAM 2.1 saved as local folders. What breaks only under the paper profile breaks here."""

from pathlib import Path

import pytest

from genseg_lib.data import load_dataset
from genseg_lib.profiles import get_profile, paper_profile, prepare
from genseg_lib.reproduce import main

ROOT = Path(__file__).resolve().parents[1]
BANNER = "NOTHING HERE IS A RESULT"


def test_dryrun_is_the_paper_profile_with_stand_in_inputs(tmp_path):
    sam = tmp_path / "sam" / "sam2.1_hiera_tiny.pt"
    dry = get_profile(
        "paper-dryrun",
        data_root=tmp_path / "data",
        model=str(tmp_path / "model"),
        segmenter=f"sam2:{sam}",
    )
    paper = paper_profile()
    assert (dry.eval_sets, dry.train_sets) == (paper.eval_sets, paper.train_sets)
    assert not dry.is_smoke and dry.segmenter.startswith("sam2:")
    prepare(dry)
    for name, split, kinds in [
        ("refcocog", "val", {"single"}),
        ("grefcoco", "val", {"single", "multi", "no_target"}),
        ("reasonseg", "test", {"phrase", "sentence"}),
    ]:
        samples = load_dataset(name, dry.data_root, split)
        assert {s.query_type for s in samples} <= kinds and len(samples) >= 10, name
    assert (Path(dry.model) / "config.json").is_file() and sam.is_file()
    assert dry.build_segmenter().describe()["image_size"] == 256  # loads strictly


@pytest.mark.slow
def test_all_notebooks_run_in_the_paper_dryrun_profile(tmp_path, monkeypatch):
    monkeypatch.setenv("GENSEG_CACHE", str(tmp_path / "cache"))  # kernels inherit it
    reports = tmp_path / "reports"
    main(
        [
            "--profile",
            "paper-dryrun",
            "--notebooks",
            str(ROOT / "notebooks"),
            "--reports",
            str(reports),
        ]
    )
    out = reports / "paper-dryrun"
    executed = sorted(p.name for p in (out / "notebooks").glob("*.ipynb"))
    assert executed == sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    for table in [
        "data_counts",
        "baseline",
        "grpo_stage1",
        "grpo_stage2",
        "prompt_ablation",
        "paper_tables",
    ]:
        assert BANNER in (out / "tables" / f"{table}.md").read_text(), table
    baseline = (out / "tables" / "baseline.md").read_text()
    for ds in ["refcocog:val", "grefcoco:val", "reasonseg:test"]:
        assert f"baseline {ds}" in baseline and f"oracle prompts {ds}" in baseline
    # SAM 2.1 (the stand-in) segments the oracle prompts in notebook 03 beside GrabCut
    assert "sam2:" in (out / "tables" / "prompt_ablation.md").read_text()
