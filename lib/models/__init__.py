"""Models and their training: the tiny Llama, LoRA and 4-bit QLoRA, the SFT and pre-training loops, sampling, EMA."""
