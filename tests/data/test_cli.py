"""`python -m genseg_lib.data` check and synthref commands."""

import subprocess
import sys

from genseg_lib.data.__main__ import main


def test_synthref_then_check(tmp_path, capsys):
    assert main(["synthref", "--out", str(tmp_path), "--n", "40", "--seed", "2"]) == 0
    assert main(["check", "synthref", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "synthref/train: 28 samples" in out and "synthref/val: 7 samples" in out and "OK" in out


def test_check_reports_missing_images(data_root, capsys):
    (data_root / "images" / "train2014" / "COCO_train2014_000000000002.jpg").unlink()
    assert main(["check", "refcocog", str(data_root)]) == 1
    out = capsys.readouterr().out
    assert "refcocog/val: 3 samples, 2 images" in out
    assert "image " in out and "COCO_train2014_000000000002.jpg missing" in out


def test_check_all_formats_ok(data_root, capsys):
    for name in ("refcocog", "grefcoco", "reasonseg"):
        assert main(["check", name, str(data_root)]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "grefcoco/val: 4 samples" in out and "2 no-target" in out


def test_check_empty_root_fails(tmp_path, capsys):
    assert main(["check", "grefcoco", str(tmp_path)]) == 1
    assert "not found" in capsys.readouterr().out


def test_module_entry_point(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "genseg_lib.data", "check", "reasonseg", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1 and "reasonseg" in proc.stdout
