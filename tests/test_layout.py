"""The folders are the pipeline: every module imports only from its own folder or from folders
earlier in the pipeline, and the paper path (data, models, segment, train, evaluate) never
imports the stage-0 wing."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "genseg_lib"
# pipeline order; a module may import its own layer or an earlier one. train and evaluate are
# siblings: neither imports the other.
LAYERS = {
    "answer": 0,
    "masks": 0,
    "device": 0,
    "runinfo": 0,
    "cli": 0,
    "data": 1,
    "models": 2,
    "segment": 3,
    "train": 4,
    "evaluate": 4,
    "stage0": 5,
    "rewards": 5,
    "analysis": 6,
    "profiles": 7,
    "reproduce": 8,
}
PAPER_PATH = ("data", "models", "segment", "train", "evaluate")


def unit(module: str) -> str:
    """``genseg_lib.train.grpo`` -> ``train``."""
    return module.split(".")[1]


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return {m for m in out if m.startswith("genseg_lib.")}


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        if rel.parts == ("__init__",) or rel.parts == ("warmstart",):  # package root, moved CLI
            continue
        yield path, rel.parts[0]


def test_every_module_has_a_layer():
    assert {u for _, u in modules()} == set(LAYERS)


def test_imports_only_go_down_the_pipeline():
    wrong = []
    for path, own in modules():
        for target in imports(path):
            other = unit(target)
            if other == own:
                continue
            if LAYERS[other] > LAYERS[own] or (LAYERS[other] == LAYERS[own] > 0):
                wrong.append(f"{path.relative_to(ROOT)} imports {target}")
    assert wrong == []


def test_paper_path_never_imports_the_stage0_wing():
    found = [
        f"{path.relative_to(ROOT)} imports {t}"
        for path, own in modules()
        if own in PAPER_PATH
        for t in imports(path)
        if unit(t) in ("stage0", "analysis", "profiles", "reproduce")
    ]
    assert found == []
    code = (
        "import sys, genseg_lib.train.grpo, genseg_lib.train.__main__, genseg_lib.evaluate, "
        "genseg_lib.evaluate.__main__, genseg_lib.segment.factory, genseg_lib.data.__main__; "
        "print(sorted(m for m in sys.modules if m.startswith('genseg_lib.stage0')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_nothing_points_outside_the_repository():
    texts = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *PACKAGE.rglob("*.py")]
    texts += list((ROOT / "notebooks").glob("*.ipynb"))
    assert [str(p) for p in texts if "shared/" in p.read_text()] == []
    assert (ROOT / "docs" / "method.md").is_file()
