"""WARP: Weight Averaged Rewarded Policies (Ramé et al. 2024, Algorithm 1), the one loop.

Starting from the SFT policy θ_sft = θ_init, each of I iterations

1. runs M independent RL fine-tunings θ_1..θ_M from θ_init, each with the KL measured against its
   own EMA anchor (RLConfig anchor "ema", μ = 0.01, β = 0.1 in the paper); the runs differ only by
   their seed, i.e. by the order of the prompts and the sampling;
2. merges them by spherical interpolation of their task vectors δ_m = θ_m − θ_init (Stage 2,
   `merge_policies`);
3. interpolates towards the init (LITI, Stage 3): θ_liti = (1−η)·θ_init + η·θ_slerp (η = 0.3),
   which is the θ_init of the next iteration.

`warp` is that loop, whatever trains a run: notebook 05 and `lib.fanout` pass cached runs of a
pipeline (`lib.plans.cached_warp_run`), the tests uncached toy runs. Merges are on full weights
(float32, CPU): for LoRA policies the merged weights W + B·A·scale, and task vectors are taken from
the weights the runs actually started from, so that the NF4 rounding all 4-bit runs of an iteration
share is not merged as if it had been learned.

The paper argues that SLERP keeps the norm of the task vectors while LERP (a plain average of the
models) shrinks it when they are not parallel (to 1/√2 of it for two orthogonal task vectors of
equal norm); every iteration records the norms ‖δ_m‖, the norm of the merged task vector and the
angle between δ_1 and δ_2 to show it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from lib.config import WARPConfig
from lib.merge import (
    StateDict,
    angle_deg,
    global_norm,
    layer_group,
    liti,
    slerp,
    slerp_many,
    task_vector,
    weight_average,
)

# train_run(iteration, m, init) -> {"start": weights the run started from, "theta": its final
# weights, "history": its RL history, "key": a name for the cache (optional)}; `init` is None (the
# SFT policy) or (key, weights) of the previous iteration's LITI model.
TrainRun = Callable[[int, int, "tuple | None"], dict]


def merge_policies(theta_init: StateDict, thetas: Sequence[StateDict], cfg: WARPConfig) -> StateDict:
    """WARP's Stage 2 on full weights: the merge of `thetas`' task vectors w.r.t. `theta_init`.

    - "slerp", M = 2: `lib.merge.slerp(θ_init, θ_1, θ_2, λ = cfg.lam)`;
    - "slerp", M > 2: the paper's recursive rule, slerp_M = slerp(θ_init, slerp_{M−1}, θ_M,
      λ = 1/M) (`lib.merge.slerp_many`). It is *not* a uniform 1/M weighting: three orthogonal
      unit task vectors get the coefficients (0.61, 0.61, 0.50), and the result depends on the
      order of the runs (the paper: "not associative");
    - "lerp": the uniform average of the models, θ_init + mean_m δ_m.

    SLERP's angles are taken per tensor, per transformer layer or over the whole flattened task
    vector (`cfg.angles`). One model is returned as is (a copy).
    """
    thetas = list(thetas)
    if not thetas:
        raise ValueError("merge_policies needs at least one policy")
    if len(thetas) == 1:
        return {k: v.clone() for k, v in thetas[0].items()}
    if cfg.merge == "lerp":
        return weight_average(thetas)
    angles = {"per_tensor": cfg.angles != "global", "group": layer_group if cfg.angles == "layer" else None}
    if len(thetas) == 2:
        return slerp(theta_init, thetas[0], thetas[1], lam=cfg.lam, **angles)
    return slerp_many(theta_init, thetas, **angles)


def merge_iteration(runs: Sequence[dict], cfg: WARPConfig) -> dict:
    """Stages 2 and 3 of one iteration from its finished runs (as `TrainRun` returns them): the
    merge from the weights the runs started from, LITI at η (the next init), the task-vector norms
    and angle, and the cache key naming the LITI model."""
    start = runs[0]["start"]
    merged = merge_policies(start, [r["theta"] for r in runs], cfg)
    deltas = [task_vector(r["theta"], start) for r in runs]
    return {"start": start, "merged": merged, "init": liti(start, merged, cfg.eta),
            "task_norms": [global_norm(d) for d in deltas],
            "merged_norm": global_norm(task_vector(merged, start)),
            "angle_deg": angle_deg(deltas[0], deltas[1]) if len(deltas) > 1 else None,
            "key": {"warp_runs": [r.get("key") for r in runs], "merge": cfg.merge, "angles": cfg.angles,
                    "eta": cfg.eta}}


def warp(train_run: TrainRun, cfg: WARPConfig, first_runs: int | None = None) -> dict:
    """WARP (Algorithm 1): `cfg.iterations` rounds of M runs of `train_run`, merge, LITI.

    Run m of iteration i starts from the previous iteration's LITI model (the SFT policy for i = 0)
    and trains with seed `run_seed(cfg.run.seed, i, m)`; the first iteration trains `first_runs`
    runs if more than M (notebook 05 merges a third one for its M = 3 curve), of which the first M
    are merged. Returns {"iterations": [per iteration: `merge_iteration`'s dict, plus "runs"],
    "final": the last LITI model}.
    """
    iterations, init = [], None
    for i in range(cfg.iterations):
        n = max(cfg.m, first_runs or 0) if i == 0 else cfg.m
        runs = [train_run(i, m, init) for m in range(n)]
        iteration = {**merge_iteration(runs[: cfg.m], cfg), "runs": runs}
        iterations.append(iteration)
        init = (iteration["key"], iteration["init"])
    return {"iterations": iterations, "final": init[1]}
