"""The prompter: the one prompt builder, Qwen-VL loading and generation, and Qwen-VL models
built from a config (tiny test models, the SynthRef prompter's backbone)."""
