"""A toy world for fast policy tests: one-line posts about animals and a letter-counting reward."""

import numpy as np

from lib.config import ModelConfig

ANIMALS = ["dog", "cat", "bird", "fish", "horse", "goat"]
PROMPTS = [f"SUBREDDIT: r/{a}s\nTITLE: my {a} ate a sock\nPOST: last week my {a} ate a sock .\nTL;DR:"
           for a in ANIMALS]
TEXTS = [p + f" my {a} ate a sock ." for p, a in zip(PROMPTS, ANIMALS)] * 5
CFG = ModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64, max_length=96)


def letters(prompts, texts):
    """A toy proxy reward: the number of 'a's in the summary."""
    return np.array([t.count("a") for t in texts], dtype=np.float32)
