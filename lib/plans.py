"""The runs of notebooks 01, 04 and 05, defined once: the notebooks train them (or read them back
from the cache) and `lib.fanout` builds them ahead of the notebooks on many processes or GPUs."""

from __future__ import annotations

from dataclasses import dataclass, replace

from lib.config import RLConfig, RMConfig
from lib.seeds import run_seed

# The fan-out's waves (`lib.fanout`), in build order, and what each builds, as its benchmark row says.
WAVES = {"prepare": "data, SFT, comparisons and probed heads, one process",
         "rms": "every RM trained and scored", "rl": "notebook 04's and WARP's first RL runs",
         "warp2": "WARP's second iteration"}


@dataclass(frozen=True)
class Run:
    """One RL run (`lib.rl.runs.RLRuns.run`): its configuration and its reward, WARM of `members` (their
    weight average; one member: that RM) or, with `kind` "ens", the mean of their rewards."""

    members: tuple[RMConfig, ...]
    cfg: RLConfig
    kind: str = "warm"

    def __post_init__(self):
        if self.kind not in ("warm", "ens"):
            raise ValueError(f"unknown reward kind {self.kind!r}; valid: warm, ens")
        if not self.members:
            raise ValueError("an RL run needs at least one reward model")
        object.__setattr__(self, "members", tuple(self.members))


def random_init_controls(rms) -> list[RMConfig]:
    """Notebook 01's control pair: two RMs fine-tuned from two random inits (no shared
    pre-training), each with a head probed on its own random featurizer, like pool member 2."""
    return [replace(rms.member(2), random_init=True, seed=100_000 + i, checkpoint_steps=())
            for i in range(2)]


def premise_controls(rms) -> list[RMConfig]:
    """Notebook 02's `premise-pretraining-matters` controls: member 0 of each seeded clean pool
    fine-tuned from a random init instead of the SFT model (its head probed on its own random
    featurizer), its recipe otherwise unchanged: the same pairs, seed (data order), steps and
    learning rate."""
    return [replace(rms.member(0, 0.0, p), random_init=True) for p in range(rms.pl.profile.rm.n_seeds)]


def lmc_pairs(rms, pool: int = 0) -> dict[str, tuple[dict, dict]]:
    """Notebook 01's pairs of increasing diversity (WARM Fig. 3), as weights: two checkpoints of
    one run, then members 0 and 1 (data order), 0 and 2 (also the learning rate), 0 and 3 (also
    dropout and the Baklava init) of the clean pool `pool`."""
    m = rms.pool(0.0, pool)
    final = [rms.state(cfg) for cfg in m[:4]]
    return {"checkpoints of one run": (rms.state(m[0], checkpoint=m[0].checkpoint_steps[0]), final[0]),
            "data order": (final[0], final[1]), "learning rate": (final[0], final[2]),
            "Baklava": (final[0], final[3])}


def rl_with_warm(rms) -> dict[str, dict]:
    """Notebook 04 (WARM §5.2), by group then name: every reward with clean labels (pool 0); φ1
    and WARM M of every other seeded pool (the intervals across pools); φ1 and WARM M with
    corrupt labels (β scaled as the paper's 0.003 → 0.01), of pool 0 and of every other seeded
    corrupt pool; the β sweep of φ1 and WARM M."""
    profile = rms.pl.profile
    base, m = profile.rl.run, profile.rm.m
    corrupt = replace(base, beta=base.beta * 0.01 / 0.003)
    pools = range(1, profile.rm.n_seeds)

    def phi1_and_warm(corruption: float, pool: int = 0) -> dict[str, list[RMConfig]]:
        ranked = rms.ranked(corruption, pool)
        return {"φ1": ranked[:1], f"WARM M={m}": ranked}

    phi = rms.ranked(0.0)
    return {
        "clean": {"φ1": Run(phi[:1], base), "φ2": Run(phi[1:2], base),
                  "ENS M=2": Run(phi[:2], base, "ens"), "WARM M=2": Run(phi[:2], base),
                  f"WARM M={m}": Run(phi, base)},
        "seeds": {(name, p): Run(members, base) for p in pools for name, members in phi1_and_warm(0.0, p).items()},
        "corrupt": {name: Run(members, corrupt) for name, members in phi1_and_warm(profile.rm.corruption).items()},
        "corrupt seeds": {(name, p): Run(members, corrupt) for p in pools
                          for name, members in phi1_and_warm(profile.rm.corruption, p).items()},
        "sweep": {(name, beta): Run(members, replace(base, beta=beta))
                  for name, members in phi1_and_warm(0.0).items() for beta in profile.rl.betas},
    }


def warp_proxy(rms) -> list[RMConfig]:
    """WARP's reward (notebook 05): WARM of the whole clean pool."""
    return rms.ranked(0.0)


def warp_anchors(rms) -> dict[str, Run]:
    """Notebook 05, stage 1: the EMA anchor against the SFT anchor, at WARP's β and β/10."""
    rl, proxy = rms.pl.profile.warp.run, warp_proxy(rms)
    return {f"EMA anchor, β={rl.beta:g}": Run(proxy, rl),
            f"EMA anchor, β={rl.beta / 10:g}": Run(proxy, replace(rl, beta=rl.beta / 10)),
            f"SFT anchor, β={rl.beta:g}": Run(proxy, replace(rl, anchor="init")),
            f"SFT anchor, β={rl.beta / 10:g}": Run(proxy, replace(rl, anchor="init", beta=rl.beta / 10))}


def warp_run(rms, iteration: int, m: int) -> Run:
    """Run m of WARP iteration `iteration` (both 0-based): WARP's RL config, seed `run_seed`, and
    WARM of the clean pool as the reward (notebook 05, `lib.rl.warp.warp`)."""
    w = rms.pl.profile.warp
    return Run(warp_proxy(rms), replace(w.run, seed=run_seed(w.run.seed, iteration, m)))


def warp_iteration(rms, iteration: int, n_runs: int | None = None) -> list[Run]:
    """The runs of WARP iteration `iteration`: M of them (or `n_runs`)."""
    return [warp_run(rms, iteration, m) for m in range(rms.pl.profile.warp.m if n_runs is None else n_runs)]


def cached_warp_run(runs, build: bool = True):
    """`lib.rl.warp.warp`'s `train_run` on the cached runs of a pipeline (`RLRuns`): run m of an
    iteration from `init` (None: the SFT policy), trained or read back (`build=False`: read back
    only, a `SystemExit` if it is not built yet). The start weights are the run's step-0 weights
    (for QLoRA, the init as rounded to NF4)."""
    def train_run(iteration: int, m: int, init) -> dict:
        run = warp_run(runs.rms, iteration, m)
        art = runs.run(run, init=init, desc=f"WARP iteration {iteration + 1}, run {m}") if build else \
            runs.finished(run, None if init is None else init[0])
        if art is None:
            raise SystemExit(f"WARP iteration {iteration + 1}, run {m} is not built yet: "
                             "build the earlier waves (`rl`) first")
        return {"start": runs.start_state(art), "theta": runs.policy_state(art), "history": runs.history(art),
                "key": art.key, "art": art}
    return train_run


def warp_first_runs(profile) -> int:
    """Runs of WARP's first iteration in notebook 05: M, and at least 3 for its M = 3 merge."""
    return max(profile.warp.m, 3)
