"""The papermill runner behind `make reproduce`: order, parameters, report index."""

import nbformat
import pytest

from genseg_lib.reproduce import main, notebook_order, run_notebooks, write_index


def _notebook(path, body):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile = "paper"\nreport_dir = "."\nscale = 1')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)


def test_notebook_order(tmp_path):
    for name in ["10_b.ipynb", "02_a.ipynb", "notes.ipynb"]:
        (tmp_path / name).write_text("{}")
    assert [p.name for p in notebook_order(tmp_path)] == ["02_a.ipynb", "10_b.ipynb"]


def test_run_notebooks_passes_parameters_and_indexes(tmp_path):
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    _notebook(
        nbs / "00_first.ipynb",
        "import pathlib\npathlib.Path(report_dir, 'tables').mkdir(exist_ok=True)\n"
        "pathlib.Path(report_dir, 'tables', 'x.md').write_text(f'{profile} {scale * 2}')",
    )
    reports = tmp_path / "reports"
    main(
        ["--profile", "smoke", "--notebooks", str(nbs), "--reports", str(reports), "-p", "scale=21"]
    )
    assert (reports / "smoke" / "tables" / "x.md").read_text() == "smoke 42"
    assert (reports / "smoke" / "notebooks" / "00_first.ipynb").exists()
    index = (reports / "README.md").read_text()
    assert "profile `smoke`" in index and "smoke/tables/x.md" in index and "torch" in index


def test_unknown_profile_and_failing_notebook(tmp_path):
    with pytest.raises(ValueError, match="profile"):
        run_notebooks([], tmp_path, "laptop")
    _notebook(tmp_path / "00_bad.ipynb", "raise RuntimeError('boom')")
    import papermill

    with pytest.raises(papermill.PapermillExecutionError, match="boom"):
        run_notebooks([tmp_path / "00_bad.ipynb"], tmp_path / "r", "smoke")
    assert write_index(tmp_path / "r", "smoke").exists()


def test_index_lists_reports_not_run_internals(tmp_path):
    root = tmp_path / "reports"
    for rel in [
        "smoke/tables/t.md",
        "smoke/tables/t.csv",
        "smoke/figures/f.png",
        "smoke/notebooks/02_x.ipynb",
        "smoke/runs/eval-a/results.md",
        "smoke/runs/eval-a/predictions.jsonl",
        "smoke/runs/grpo-a/model.safetensors",
    ]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x")
    text = write_index(root, "smoke").read_text()
    assert "## Profile `smoke`" in text and "paper" not in text.split("## Profile")[1]
    for listed in [
        "(smoke/tables/t.md)",
        "(smoke/figures/f.png)",
        "(smoke/runs/eval-a/results.md)",
    ]:
        assert listed in text
    assert "(smoke/notebooks/02_x.ipynb)" in text
    assert "predictions.jsonl" not in text and "safetensors" not in text and "t.csv" not in text


def test_sweep_grid_writes_one_folder_per_point(tmp_path):
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    _notebook(
        nbs / "02_x.ipynb",
        "import pathlib\npathlib.Path(report_dir, 'v.txt').write_text(str(scale))",
    )
    reports = tmp_path / "reports"
    main(
        ["--notebooks", str(nbs), "--reports", str(reports), "--only", "02", "--sweep", "scale=1,3"]
    )
    base = reports / "smoke" / "sweeps" / "02_x"
    assert (base / "scale=1" / "v.txt").read_text() == "1"
    assert (base / "scale=3" / "v.txt").read_text() == "3"
