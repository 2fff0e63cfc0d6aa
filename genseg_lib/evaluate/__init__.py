"""Evaluation: prompters, the resumable runner, run records, metrics and summaries
(docs/method.md §5). ``python -m genseg_lib.evaluate --help`` runs one evaluation."""

from genseg_lib.evaluate.prompters import OraclePrompter, Prompter, VLMPrompter
from genseg_lib.evaluate.records import PREDICTIONS, read_predictions
from genseg_lib.evaluate.runner import EvalConfig, evaluate
from genseg_lib.evaluate.summary import results_markdown, summarize

__all__ = [
    "PREDICTIONS",
    "EvalConfig",
    "OraclePrompter",
    "Prompter",
    "VLMPrompter",
    "evaluate",
    "read_predictions",
    "results_markdown",
    "summarize",
]
