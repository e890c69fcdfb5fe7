"""How many torch threads a block computes with: stages that must give the same floats wherever
they are built set their count (`lib.config.RUN_THREADS`, `lib.config.PREPARE_THREADS`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with `n` torch threads, then restore the previous count."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
