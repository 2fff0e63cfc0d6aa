"""``python -m genseg_lib.warmstart`` moved to ``python -m genseg_lib.stage0`` (same flags)."""

raise SystemExit(
    "genseg_lib.warmstart moved: run `python -m genseg_lib.stage0` with the same flags "
    "(the warm start now lives in genseg_lib/stage0/)"
)
