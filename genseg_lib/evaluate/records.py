"""An evaluation's files: ``predictions.jsonl`` (one record per sample, appended and fsynced
batch by batch) and ``run.json`` (the run's identity, checked before resuming)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from genseg_lib.runinfo import read_run_info, run_info, write_run_info

LOG = logging.getLogger(__name__)
PREDICTIONS = "predictions.jsonl"


def read_predictions(path: Path) -> dict[str, dict]:
    """Finished records by sample id. A torn last line (a kill mid-write) is cut off the file."""
    if not path.exists():
        return {}
    records: dict[str, dict] = {}
    good_bytes = 0
    with path.open("rb") as fh:
        for raw in fh:
            try:
                rec = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                break
            if not raw.endswith(b"\n"):
                break
            records[rec["sample_id"]] = rec
            good_bytes += len(raw)
    if good_bytes != path.stat().st_size:
        LOG.warning(
            "%s: dropping a partial record at byte %d (interrupted write)", path, good_bytes
        )
        with path.open("r+b") as fh:
            fh.truncate(good_bytes)
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
    different run (model, data, subset, decoding, segmenter or arm), naming what differs."""
    info = run_info("evaluation", identity, seed, arm=arm)
    before = read_run_info(out)
    if before is None:
        write_run_info(out, info)
        return
    keys = ("kind", "arm", "seed", "settings")
    diff = sorted(k for k in keys if before.get(k) != info[k])
    if "settings" in diff:
        old, new = before.get("settings") or {}, info["settings"]
        diff.remove("settings")
        diff += sorted(f"settings.{k}" for k in {*old, *new} if old.get(k) != new.get(k))
    if diff:
        raise ValueError(
            f"{out} holds a different run (differs in {diff}); resume it with the same "
            "settings or write to another --out"
        )
