"""Stage 0 of the embedded default — the one wing the paper path never imports: the SynthRef
prompter (a small Qwen3-VL with a domain tokenizer), dense pretraining of its vision tower,
and the supervised warm start that stands in for Qwen3-VL Instruct's grounding pretraining
(docs/method.md §7). ``python -m genseg_lib.stage0 --help`` trains it."""
