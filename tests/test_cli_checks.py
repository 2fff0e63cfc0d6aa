"""Command-line checks: sizes below 1, missing model folders and absent devices are refused at
once, naming the flag, before anything loads."""

import time

import pytest
import torch

from genseg_lib.cli import model_source, positive_int


def test_positive_int():
    assert positive_int("3") == 3
    for bad in ("0", "-2", "x", "1.5"):
        with pytest.raises(Exception, match="at least 1|whole number"):
            positive_int(bad)


def test_model_source(tmp_path, monkeypatch):
    (tmp_path / "a" / "b").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "a" / "b")  # relative paths below resolve to nothing here
    assert model_source("Qwen/Qwen3-VL-8B-Instruct") == "Qwen/Qwen3-VL-8B-Instruct"
    assert model_source(str(tmp_path)) == str(tmp_path)
    for missing in (str(tmp_path / "nope"), "./runs/x", "../x", "runs/a/b"):
        with pytest.raises(Exception, match="not found"):
            model_source(missing)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--limit", "0"], "--limit: must be at least 1"),
        (["--limit", "-5"], "--limit: must be at least 1"),
        (["--batch-size", "0"], "--batch-size: must be at least 1"),
        (["--model", "/no/such/model"], "not found"),
    ],
)
def test_evaluate_refuses_bad_arguments_at_once(flags, message, tmp_path, capsys):
    from genseg_lib.evaluate.__main__ import main

    base = {"--model": "oracle", "--dataset": "synthref:val", "--root": str(tmp_path)}
    base["--out"] = str(tmp_path / "out")
    args = [x for k, v in base.items() if k not in flags for x in (k, v)] + flags
    start = time.perf_counter()
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2 and time.perf_counter() - start < 5
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_evaluate_with_cuda_absent_fails_even_for_the_oracle(tmp_path):
    from genseg_lib.data.synthref import write_synthref
    from genseg_lib.evaluate.__main__ import main

    write_synthref(tmp_path, 20, seed=0)
    args = ["--model", "oracle", "--dataset", "synthref:val", "--root", str(tmp_path)]
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        main([*args, "--out", str(tmp_path / "o"), "--device", "cuda"])
    assert not (tmp_path / "o").exists()


def test_synthref_cli_refuses_empty_sizes(tmp_path, capsys):
    from genseg_lib.data.__main__ import main

    for flags in (["--n", "0"], ["--n", "-3"], ["--image-size", "0"]):
        with pytest.raises(SystemExit) as exc:
            main(["synthref", "--out", str(tmp_path), *flags])
        assert exc.value.code == 2 and "must be at least 1" in capsys.readouterr().err
