"""The QLoRA path check that a GPU machine runs (`benchmarks/cuda_check.py`), here on CPU."""

import json

import pytest

from benchmarks import cuda_check


@pytest.mark.usefixtures("one_thread")
def test_the_qlora_path_check_runs_every_stage_and_records_it(tmp_env):
    tmp_path = tmp_env  # its smoke tokenizer is built in the test's cache, not the repository's
    rows = cuda_check.check("cpu", steps=2, results=tmp_path)
    names = [r["name"] for r in rows]
    for stage in ("RM training", "RL training", "WARP merge", "RL training from merged weights"):
        assert any(n.startswith(f"QLoRA path: {stage}") for n in names), stage
    assert all(r["ours"] > 0 and r["device"].startswith("cpu") for r in rows)
    assert not any("peak memory" in n for n in names)  # measured on CUDA only
    assert {r["name"] for r in json.loads((tmp_path / "benchmarks.json").read_text())} == set(names)


def test_asking_for_cuda_without_a_gpu_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(cuda_check.torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit, match="no CUDA device"):
        cuda_check.check("cuda", steps=1, results=tmp_path)
