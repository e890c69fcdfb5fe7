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


def test_the_sweeps_default_beta_is_the_clean_run_itself():
    """WARM Fig. 8c's sweep holds the default β, whose runs are the clean runs (one cached stage);
    the other β are runs of their own."""
    profile = get_profile("default")
    plan = plans.rl_with_warm(RankedPools(profile))
    beta = profile.rl.run.beta
    assert beta in profile.rl.betas
    for name in ("φ1", f"WARM M={profile.rm.m}"):
        assert plan["sweep"][name, beta] == plan["clean"][name]
        assert all(plan["sweep"][name, b] != plan["clean"][name] for b in profile.rl.betas if b != beta)
