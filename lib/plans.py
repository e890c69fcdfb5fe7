"""The RL runs of notebooks 04 and 05, defined once: the notebooks train them (or read them back from
the cache) and `lib.fanout` builds them ahead of the notebooks on many processes or GPUs.

A run is `(members, cfg, kind)`, the arguments of `RLRuns.run`: the RMs of the reward, the RL
configuration, and "warm" (their weight average) or "ens" (the mean of their rewards).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .config import RLConfig
from .warp import run_seed

Run = tuple[list, RLConfig, str]


def ranked_pool(rms, corruption: float) -> list:
    """The pool of `corruption`, best first by OOD accuracy: φ1, φ2, … (WARM §5)."""
    members = rms.pool(corruption)
    return [members[i] for i in rms.ranking(corruption)]


def rl_with_warm(rms) -> dict[str, dict[Any, Run]]:
    """Notebook 04 (WARM §5.2): every reward with clean labels; φ1 and WARM M with corrupt labels
    (β scaled as the paper's 0.003 → 0.01); the β sweep of φ1 and WARM M. By group, then name."""
    profile = rms.pl.profile
    base, m = profile.rl.run, profile.rm.n_rms
    phi, phi_c = ranked_pool(rms, 0.0), ranked_pool(rms, profile.rm.corruption)
    beta_c = base.beta * 0.01 / 0.003
    return {
        "clean": {"φ1": (phi[:1], base, "warm"), "φ2": (phi[1:2], base, "warm"),
                  "ENS M=2": (phi[:2], base, "ens"), "WARM M=2": (phi[:2], base, "warm"),
                  f"WARM M={m}": (phi, base, "warm")},
        "corrupt": {name: (members, replace(base, beta=beta_c), "warm")
                    for name, members in {"φ1": phi_c[:1], f"WARM M={m}": phi_c}.items()},
        "sweep": {(name, beta): (members, replace(base, beta=beta), "warm")
                  for name, members in {"φ1": phi[:1], f"WARM M={m}": phi}.items()
                  for beta in profile.rl.betas},
    }


def warp_proxy(rms) -> list:
    """WARP's reward (notebook 05): WARM of the whole clean pool."""
    return ranked_pool(rms, 0.0)


def warp_anchors(rms) -> dict[str, Run]:
    """Notebook 05, stage 1: the EMA anchor against the SFT anchor, at WARP's β and β/10."""
    rl, proxy = rms.pl.profile.warp.rl, warp_proxy(rms)
    return {f"EMA anchor, β={rl.beta:g}": (proxy, rl, "warm"),
            f"EMA anchor, β={rl.beta / 10:g}": (proxy, replace(rl, beta=rl.beta / 10), "warm"),
            f"SFT anchor, β={rl.beta:g}": (proxy, replace(rl, anchor="init"), "warm"),
            f"SFT anchor, β={rl.beta / 10:g}": (proxy, replace(rl, anchor="init", beta=rl.beta / 10),
                                                "warm")}


def warp_iteration(rms, iteration: int, n_runs: int | None = None) -> list[Run]:
    """The runs of WARP iteration `iteration` (0-based): M runs with seeds `run_seed` (iteration 0
    of notebook 05 trains max(M, 3), the third for the M = 3 merge). Iterations after the first
    start from the previous one's LITI model (`RLRuns.run(..., init=...)`)."""
    w = rms.pl.profile.warp
    n = w.m if n_runs is None else n_runs
    return [(warp_proxy(rms), replace(w.rl, seed=run_seed(w.rl.seed, iteration, m)), "warm")
            for m in range(n)]


def warp_merge(runs, arts: list) -> dict:
    """One WARP merge of the finished runs `arts` of an iteration (notebook 05, stage 2-3): SLERP
    of their task vectors from the weights they started from (`start`), LITI at η (`init`, the next
    iteration's init) and the cache key naming it (`key`)."""
    from .merge import liti
    from .warp import merge_policies

    w = runs.pl.profile.warp
    start = runs.start_state(arts[0])
    merged = merge_policies(start, [runs.policy_state(a) for a in arts], w)
    key = {"warp_runs": [a.key for a in arts], "merge": w.merge, "angles": w.angles, "eta": w.eta}
    return {"start": start, "merged": merged, "init": liti(start, merged, w.eta), "key": key}


def warp_first_runs(profile) -> int:
    """Runs of WARP's first iteration in notebook 05: M, and at least 3 for its M = 3 merge."""
    return max(profile.warp.m, 3)
