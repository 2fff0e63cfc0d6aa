"""An evaluation's files: ``predictions.jsonl`` (one record per sample, appended and fsynced
batch by batch) and ``run.json`` (the run's identity, checked before resuming)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from genseg_lib.runinfo import read_run_info, refuse_other_run, run_info, write_run_info

LOG = logging.getLogger(__name__)
PREDICTIONS = "predictions.jsonl"


def read_predictions(path: Path) -> dict[str, dict]:
    """Finished records by sample id. A torn last line (a kill mid-write) is dropped; any other
    unreadable line is moved to ``<name>.quarantine.jsonl`` and reported, and every good
    record around it is kept — the dropped samples are simply redone."""
    if not path.exists():
        return {}
    records: dict[str, dict] = {}
    good: list[bytes] = []
    bad: list[tuple[int, bytes]] = []
    torn = False
    lines = path.read_bytes().splitlines(keepends=True)
    for number, raw in enumerate(lines, 1):
        if number == len(lines) and not raw.endswith(b"\n"):
            torn = True
            break
        try:
            rec = json.loads(raw)
            sample_id = rec["sample_id"]
        except (json.JSONDecodeError, UnicodeDecodeError, TypeError, KeyError):
            bad.append((number, raw))
            continue
        records[sample_id] = rec
        good.append(raw)
    if torn:
        LOG.warning("%s: dropping a partial last record (interrupted write)", path)
    if bad:
        quarantine = path.with_name(path.stem + ".quarantine.jsonl")
        with quarantine.open("ab") as fh:
            fh.writelines(raw if raw.endswith(b"\n") else raw + b"\n" for _, raw in bad)
        LOG.warning(
            "%s: %d unreadable record(s) (lines %s) moved to %s; their samples will be redone",
            path,
            len(bad),
            ", ".join(str(n) for n, _ in bad[:10]),
            quarantine,
        )
    if torn or bad:
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(b"".join(good))
        tmp.replace(path)
    return records


def append_records(path: Path, records: Iterable[dict]) -> None:
    """Append records as JSON lines and fsync, so a kill loses at most the batch in flight."""
    with path.open("a", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` in one rename."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def check_same_run(out: Path, arm: str | None, seed: int, identity: dict[str, Any]) -> None:
    """Write ``out/run.json`` for a new evaluation; for an existing one, refuse to resume a
    different run (model and its weights, data, subset, decoding, segmenter or arm)."""
    info = run_info("evaluation", identity, seed, arm=arm)
    if read_run_info(out) is None:
        write_run_info(out, info)
    refuse_other_run(out, info)
