"""run.json records: which differences between two runs count."""

import pytest

from genseg_lib.runinfo import refuse_other_run, run_differences, run_info, write_run_info


def test_differences_are_named_to_the_asked_depth_and_skip_what_does_not_count():
    a = run_info("grpo", {"grpo": {"learning_rate": 1e-6, "use_cpu": True}, "n": 1}, 0)
    b = run_info("grpo", {"grpo": {"learning_rate": 1e-4, "use_cpu": False}, "n": 1}, 0)
    b["code_version"] = "another commit"
    assert run_differences(a, b) == ["settings.grpo"]
    assert run_differences(a, b, depth=3) == [
        "settings.grpo.learning_rate",
        "settings.grpo.use_cpu",
    ]
    assert run_differences(a, b, depth=3, ignore=["settings.grpo.use_cpu"]) == [
        "settings.grpo.learning_rate"
    ]
    assert run_differences(a, {**a, "seed": 1, "arm": "x"}) == ["arm", "seed"]
    # a setting that one record lacks is a difference
    c = run_info("grpo", {"grpo": {"learning_rate": 1e-6}, "n": 1}, 0)
    assert run_differences(a, c, depth=3) == ["settings.grpo.use_cpu"]


def test_refuse_other_run_names_the_folder_and_the_field(tmp_path):
    info = run_info("supervised", {"lr": 1e-4, "device": "cuda"}, 3)
    refuse_other_run(tmp_path, info)  # no record yet: nothing to refuse
    write_run_info(tmp_path, info)
    refuse_other_run(
        tmp_path,
        run_info("supervised", {"lr": 1e-4, "device": "cpu"}, 3),
        ignore=["settings.device"],
    )
    with pytest.raises(ValueError, match=rf"{tmp_path} holds a different run .*'settings.lr'"):
        refuse_other_run(tmp_path, run_info("supervised", {"lr": 3e-5, "device": "cuda"}, 3))
