import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def tmp_env(tmp_path, monkeypatch):
    """Cache and results in a temporary directory: tests never touch committed results."""
    monkeypatch.setenv("REPRO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("REPRO_RESULTS_DIR", str(tmp_path / "results"))
    return tmp_path


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models: one thread avoids thread overhead on a busy machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tok():
    """A tokenizer for the toy world of `tests/toy.py`."""
    from toy import TEXTS

    from lib.models.models import train_tokenizer

    return train_tokenizer(TEXTS, 300)
