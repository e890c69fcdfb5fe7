"""Notebook 04's plan of RL runs: which RMs each run optimizes, without training any of them."""

from types import SimpleNamespace

from lib import plans
from lib.config import RMConfig
from lib.profiles import get_profile


class RankedPools:
    """Stands in for `lib.rm.pool.RewardModels`: pool p's members, best first, as configs whose seed
    names their pool (100·p + k) and whose corruption names their labels."""

    def __init__(self, profile):
        self.pl = SimpleNamespace(profile=profile)

    def ranked(self, corruption: float, pool: int = 0) -> list[RMConfig]:
        return [RMConfig(seed=100 * pool + k, corruption=corruption) for k in range(self.pl.profile.rm.m)]


def test_every_corrupt_pool_gets_its_own_phi1_and_warm_runs_at_the_corrupt_beta():
    profile = get_profile("default")
    m, corruption = profile.rm.m, profile.rm.corruption
    plan = plans.rl_with_warm(RankedPools(profile))
    warm = f"WARM M={m}"
    assert set(plan["corrupt seeds"]) == {(name, p) for name in ("φ1", warm) for p in range(1, profile.rm.n_seeds)}
    beta = plan["corrupt"]["φ1"].cfg.beta
    assert beta > profile.rl.run.beta  # the paper's corrupt setting weighs the KL more
    for (name, p), run in plan["corrupt seeds"].items():
        assert run.cfg.beta == beta and run.kind == "warm"
        assert len(run.members) == (1 if name == "φ1" else m)
        assert all(cfg.corruption == corruption and cfg.seed // 100 == p for cfg in run.members)
    # pool 0's corrupt runs and the clean seeded runs read other RMs
    assert all(cfg.seed // 100 == 0 and cfg.corruption == corruption for run in plan["corrupt"].values()
               for cfg in run.members)
    assert all(cfg.corruption == 0.0 for run in plan["seeds"].values() for cfg in run.members)


def test_one_pool_plans_no_seeded_runs():
    profile = get_profile("default", {"rm.n_seeds": 1})
    plan = plans.rl_with_warm(RankedPools(profile))
    assert plan["corrupt seeds"] == {} and plan["seeds"] == {}


def test_the_long_runs_train_phi1_and_warm_of_pool_0_past_the_default_budget():
    """Notebook 04's hacking claims read the long runs: φ1 and WARM M of the clean pool 0, with the
    `rl.long` config (no KL term on `default`, more steps than the other runs)."""
    profile = get_profile("default")
    plan = plans.rl_with_warm(RankedPools(profile))
    long = plan["long"]
    assert set(long) == {"φ1", f"WARM M={profile.rm.m}"}
    assert long["φ1"].members == plan["clean"]["φ1"].members
    assert len(long[f"WARM M={profile.rm.m}"].members) == profile.rm.m
    for run in long.values():
        assert run.cfg == profile.rl.long and run.kind == "warm"
        assert all(cfg.seed // 100 == 0 and cfg.corruption == 0.0 for cfg in run.members)
    assert profile.rl.long.steps > profile.rl.run.steps and profile.rl.long.beta < min(profile.rl.betas)
