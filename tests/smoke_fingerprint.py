"""The smoke run's fingerprint: what a change that should move no number must leave identical.

    python tests/smoke_fingerprint.py --record    # run `smoke` from an empty cache, write the fixture

It holds the smoke cache's stage keys (hashes of config and versions: the same on every machine),
every claim of `results/smoke/claims.json` but the timed ones, and the checksum of every figure
but the timed ones. Claims and figures are floating-point results, identical only where the
arithmetic is: the fixture also holds the checksum of a small forward and backward pass through
a Llama, and a machine that computes that differently compares the keys alone.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

FIXTURE = Path(__file__).parent / "fixtures" / "smoke_fingerprint.json"
TIMED_FIGURES = frozenset({"02_cost"})  # inference time against M: wall clock, not results


def arithmetic() -> str:
    """The checksum of a seeded forward and backward pass through a small Llama, on one thread,
    with the torch version and the CPU kernels it picks: equal on two machines when their float
    arithmetic is."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from lib.threads import torch_threads

    with torch_threads(1):
        torch.manual_seed(0)
        model = LlamaForCausalLM(LlamaConfig(vocab_size=96, hidden_size=32, intermediate_size=64,
                                             num_hidden_layers=2, num_attention_heads=4,
                                             max_position_embeddings=32))
        ids = torch.randint(0, 96, (3, 24))
        out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        digest = hashlib.sha256(f"{torch.__version__} {torch.backends.cpu.get_cpu_capability()}".encode())
        digest.update(out.logits.detach().numpy().tobytes())
        for p in model.parameters():
            digest.update(p.grad.numpy().tobytes())
        return digest.hexdigest()


def fingerprint(cache: Path, results: Path) -> dict:
    """The fingerprint of a smoke run whose cache is `cache` (the profile's folder) and whose
    results folder is `results`."""
    from lib.report.results import TIMED_CLAIMS

    keys = sorted(p.name for p in cache.iterdir() if (p / "manifest.json").exists())
    claims = {c["id"]: c for c in json.loads((results / "claims.json").read_text())
              if c["id"] not in TIMED_CLAIMS}
    figures = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
               for p in sorted((results / "figures").glob("*.png")) if p.stem not in TIMED_FIGURES}
    return {"arithmetic": arithmetic(), "keys": keys, "claims": claims, "figures": figures}


def record() -> None:
    """Run every notebook on `smoke` from an empty cache, as the slow tests do, and write the
    fixture."""
    import os
    import tempfile

    from lib import runner

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["REPRO_CACHE_DIR"] = f"{tmp}/cache"
        os.environ["REPRO_RESULTS_DIR"] = f"{tmp}/results"
        if runner.main(["--profile", "smoke", "--jobs", "2"]) != 0:
            sys.exit("the smoke run failed: nothing recorded")
        found = fingerprint(Path(tmp) / "cache" / "smoke", Path(tmp) / "results")
    FIXTURE.write_text(json.dumps(found, indent=1, ensure_ascii=False) + "\n")
    print(f"recorded {len(found['keys'])} keys, {len(found['claims'])} claims and "
          f"{len(found['figures'])} figures in {FIXTURE}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        sys.exit(__doc__)
    sys.path.insert(0, str(Path(__file__).parents[1]))
    record()
