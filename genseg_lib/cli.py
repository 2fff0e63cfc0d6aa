"""Argument checks shared by the command lines: bad sizes and missing paths are refused at
once, with the flag named, before any model or data is loaded."""

from __future__ import annotations

import argparse
from pathlib import Path


def positive_int(text: str) -> int:
    """An integer >= 1 (argparse type): sizes, limits and counts."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def model_source(text: str) -> str:
    """A model argument: an existing folder, or a hub id (``org/name``). Something written as a
    path — absolute, ``./`` or ``../`` or ``~``, or with more than one ``/`` — must exist;
    otherwise loading would wait on the network and then report a connection failure."""
    path = Path(text).expanduser()
    if path.exists():
        return str(path)
    looks_like_path = text.startswith(("/", "./", "../", "~")) or text.count("/") > 1
    if looks_like_path:
        raise argparse.ArgumentTypeError(f"model folder {text!r} not found")
    return text
