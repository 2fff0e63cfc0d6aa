"""``run.json``: what every run folder (training, evaluation, warm start) records about itself —
its kind, settings, seed and code version — so that reports read runs by what they are, not by
folder names, and a resumed run can be checked against the one that started the folder."""

from __future__ import annotations

import functools
import importlib.metadata
import json
import subprocess
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

RUN_FILE = "run.json"
LOCK_FILE = ".lock"
REPO = Path(__file__).resolve().parent.parent


@functools.cache
def code_version() -> str:
    """The git commit of this checkout (``+dirty`` with uncommitted changes), else the
    installed package version."""
    try:
        sha = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return f"genseg-lib {importlib.metadata.version('genseg-lib')}"


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types (paths and other objects become strings)."""
    return json.loads(json.dumps(value, default=str))


def run_info(kind: str, settings: dict[str, Any], seed: int | None, **extra: Any) -> dict:
    """The record of one run: ``kind`` (``grpo``, ``evaluation``, ``supervised``, ...),
    its settings and seed, the code version, and any extra fields (e.g. an evaluation's arm)."""
    return jsonable(
        {"kind": kind, **extra, "seed": seed, "settings": settings, "code_version": code_version()}
    )


def write_run_info(folder: str | Path, info: dict[str, Any]) -> Path:
    """Write ``folder/run.json`` atomically (a kill never leaves half a file)."""
    path = Path(folder) / RUN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(info, indent=2) + "\n")
    tmp.replace(path)
    return path


def read_run_info(folder: str | Path) -> dict[str, Any] | None:
    """``folder/run.json``, or None where the folder holds none."""
    path = Path(folder) / RUN_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def _flatten(record: dict[str, Any], depth: int, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, dict) and depth > 1:
            out.update(_flatten(value, depth - 1, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def run_differences(
    before: dict[str, Any], after: dict[str, Any], depth: int = 2, ignore: Collection[str] = ()
) -> list[str]:
    """Dotted names, nested down to ``depth``, in which two run records differ; the code
    version and the names in ``ignore`` (what does not change results) are left out."""
    old, new = _flatten(before, depth), _flatten(after, depth)
    skip = {"code_version", *ignore}
    return sorted(k for k in {*old, *new} - skip if old.get(k) != new.get(k))


def refuse_other_run(
    folder: str | Path, info: dict[str, Any], depth: int = 2, ignore: Collection[str] = ()
) -> None:
    """Raise when ``folder/run.json`` records a run other than ``info``, naming what differs,
    so that a finished or resumed run is never taken for one with other settings."""
    before = read_run_info(folder)
    diff = [] if before is None else run_differences(before, info, depth, ignore)
    if diff:
        raise ValueError(
            f"{folder} holds a different run (differs in {diff}); resume it with the same "
            "settings, or write to another folder (or delete this one)"
        )


@contextmanager
def run_lock(folder: str | Path) -> Iterator[None]:
    """Hold ``folder/.lock`` for the length of a run: a second run on the same folder stops at
    once with a clear error instead of interleaving its records or checkpoints."""
    path = Path(folder) / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise RuntimeError(f"{folder} is in use by another run (lock {path})") from None
    try:
        yield
    finally:
        lock.release()
