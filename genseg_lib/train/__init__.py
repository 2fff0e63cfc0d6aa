"""GRPO training: reward terms (docs/method.md §4), the TRL dataset, recipes and the driver.
``python -m genseg_lib.train --help`` lists recipes and reward presets."""
