# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · WARP: EMA anchor, SLERP of task vectors, LITI, iterations (WARP Fig. 1b, 3, 4)
#
# **The paper** (Ramé et al. 2024, arXiv 2406.16768, Algorithm 1) places weight averaging at three
# stages of RLHF. For each of I iterations: run M independent RL fine-tunings from the current init,
# each regularized by the KL to **its own exponential moving average** (EMA anchor, θ_ema ←
# (1−μ)·θ_ema + μ·θ, μ = 0.01, β = 0.1); merge the M policies by **SLERP of their task vectors**
# δ_m = θ_m − θ_init; then **LITI**, θ_init ← (1−η)·θ_init + η·θ_slerp (η = 0.3), which starts the
# next iteration. Claims: the EMA anchor explores further than the SFT anchor at equal β; SLERP
# reaches a higher reward than LERP (SLERP keeps the norm of the nearly orthogonal task vectors,
# LERP shrinks it); the LITI η-sweep traces a front above the plain RL trajectory; each iteration
# moves the front up.
#
# **Checked against the paper's text** (arXiv 2406.16768v1; quotations verbatim):
#
# | knob | the paper | here (`lib.config.WARPConfig`) |
# |---|---|---|
# | EMA rate μ | "at each training step with 𝜇 = 0.01: 𝜃ema ← (1 − 𝜇) · 𝜃ema + 𝜇 · 𝜃policy" (§3.1); "we train for 𝑇 = 9𝑘 steps, with KL strength 𝛽 = 0.1, EMA update rate 𝜇 = 0.01, merging 𝑀 = 2 policies uniformly 𝜆 = 0.5, and LITI update rate 𝜂 = 0.3" (§4, Setup). §4.1 once says "𝜇 = 0.1"; the caption of Fig. 15 settles it: "we have systematically used 𝜇 = 0.01 and 𝛽 = 0.1 for all EMA-based runs, including in the iterative WARP" | `rl.ema_mu` |
# | KL strength β | 𝛽 = 0.1 (§4, Setup, above); the KL enters the reward as "𝑟(𝒙, 𝒚) − 𝛽 log [𝜋𝜃(𝒚\|𝒙)/𝜋𝜃anchor(𝒚\|𝒙)]" (§2) | `rl.beta` |
# | LITI η | "𝜃𝜂 ← (1 − 𝜂) · 𝜃init + 𝜂 · 𝜃slerp" (§3.3), "usually with 𝜂 = 0.3" (§3.4) | `eta` |
# | M > 2 | App. B.3: "We trivially (and certainly suboptimally) generalize this to 𝑀 > 2 weights in the uniform averaging setup, thus giving an equal coefficient to each of them, i.e., 𝜆 = 1/𝑀 … through the iterative procedure"; "these operations are not associative" | `lib.merge.slerp_many` (the same recursion, in the order of the runs) |
# | SLERP granularity | "SLERP is applied layer by layer, each having a different angle" (§3.2) | per tensor by default (finer than per layer); `angles="layer"` is the paper's, `"global"` one angle for the whole vector |
# | scale | Gemma "7B", REINFORCE, batch 128, lr 10⁻⁶, 𝑇 = 9k steps, 𝑀 = 2, 𝐼 = 5 iterations (§4.4) | a 4-layer model, a few dozen steps, M = 2, I = 2: the CPU budget |
#
# **Here.** Every RL run is `lib.rl.rl` REINFORCE against WARM of notebook 02's clean pool (WARP's
# own RM: the proxy), from the SFT policy. Every point is measured by sampling the same held-out
# prompts with one seed: the **gold reward** (the world's exact reward, never trained on) and the
# proxy reward, against the **KL to the SFT policy** (the x-axis of every WARP figure). Intervals
# and bands are 95% bootstrap intervals over the eval prompts (each run is one seed).

# %% tags=["parameters"]
profile = "default"  # smoke | default | gpu
overrides = {}  # dotted config keys (a dict or its JSON text), e.g. {"warp.run.steps": 100}

# %% [markdown]
# The library pieces the chapter uses, its pipeline on that profile, and WARP's settings:

# %%
from dataclasses import replace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from lib import plans
from lib.measure.evaluate import win_rates_by_prompt
from lib.measure.stats import bootstrap
from lib.merge import global_norm, liti, slerp_many, task_vector, weight_average
from lib.report.analysis import column_intervals, equal_kl_columns, gap_at_equal_kl, nearest_kl_step, per_prompt
from lib.report.notebook import Chapter
from lib.report.plots import line_with_band
from lib.rl.runs import RLRuns
from lib.rl.warp import merge_policies, warp
from lib.rm.pool import RewardModels

ch = Chapter("05", profile, overrides)
pl, P = ch.pl, ch.P
rms = RewardModels(pl)
runs = RLRuns(pl, rms)
n_eval = len(runs.eval_prompts)  # prompts of every eval step; per_prompt averages each one's samples
W = P.warp
proxy_rm = plans.warp_proxy(rms)
evaluate = lambda state: runs.evaluate(state, proxy_rm, cfg=W.run)  # noqa: E731
print(W)

# %% [markdown]
# ## Stage 1: the EMA anchor (Fig. 3a, b)
#
# RL against the proxy with the KL to the policy's EMA and, as baselines, with the KL to the fixed
# SFT policy, each at WARP's β and at β/10. Each trajectory is the policy at every eval step, on the
# gold reward vs KL to SFT plane (left; error bars over prompts) and the proxy reward (right).

# %%
stage1 = {name: runs.history(runs.run(run, desc=name)) for name, run in plans.warp_anchors(rms).items()}

fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for k, (name, h) in enumerate(stage1.items()):
    mean, low, high = column_intervals(per_prompt(h, n_eval))
    axes[0].errorbar(h["eval_kl_init"], mean, yerr=[mean - low, high - mean], fmt="o-", ms=3, capsize=2,
                     lw=1, color=f"C{k}", label=name)
    axes[1].plot(h["eval_kl_init"], h["eval_proxy"], "o-", ms=3, color=f"C{k}", label=name)
axes[0].set(xlabel="KL(policy ‖ SFT) (nats)", ylabel="gold reward", title="gold reward")
axes[1].set(xlabel="KL(policy ‖ SFT) (nats)", ylabel="proxy reward (WARM of the clean pool)", title="proxy reward")
axes[0].legend(fontsize=8)
ch.save(fig, "05_stage1_ema_anchor")
pd.DataFrame({name: {"KL to SFT": h["eval_kl_init"][-1], "gold": h["eval_gold"][-1], "proxy": h["eval_proxy"][-1],
                     "KL to anchor": h["eval_kl_anchor"][-1]} for name, h in stage1.items()}).T.round(3)

# %% [markdown]
# WARP's first claim: at the same β, the EMA anchor lets the policy go further from SFT. The final
# KL to SFT of the two anchors, per eval prompt:

# %%
ema, sft_anchor = stage1[f"EMA anchor, β={W.run.beta:g}"], stage1[f"SFT anchor, β={W.run.beta:g}"]
kl = np.stack([per_prompt(ema, n_eval, "eval_kl_all")[:, -1], per_prompt(sft_anchor, n_eval, "eval_kl_all")[:, -1]], 1)
further = bootstrap(kl, lambda m: m[..., 0] - m[..., 1])
print(f"final KL to SFT, EMA − SFT anchor: {further:.3f}")

# %% [markdown]
# It holds when its whole interval lies above 0:

# %%
ch.claim(id="warp-ema-anchor", paper="WARP", figure="Fig. 3a, b (05_stage1_ema_anchor)",
         claim="at equal β, the EMA anchor lets the policy explore further from SFT than the SFT anchor",
         metric=f"final KL to SFT, EMA − SFT anchor at β={W.run.beta:g} (final gold: EMA "
                f"{ema['eval_gold'][-1]:.3f}, SFT anchor {sft_anchor['eval_gold'][-1]:.3f})",
         estimate=further, threshold=0.0, direction=">")

# %% [markdown]
# ## Stage 2: SLERP vs LERP of the task vectors (Fig. 3c, 4b)
#
# WARP's loop (`lib.rl.warp.warp`) runs both iterations: M independent EMA-anchored runs from SFT,
# differing only by their seed (prompt order and sampling), their merge, LITI, and M runs from there. Their task vectors are nearly orthogonal; SLERP keeps their norm, LERP (the plain
# weight average) shrinks it. Along λ, the gold and proxy rewards of SLERP(θ1, θ2, λ) and LERP, and
# the same for M=3 (dotted).

# %%
out = warp(plans.cached_warp_run(runs), W, first_runs=plans.warp_first_runs(P))  # both iterations
it1, it2 = out["iterations"]
thetas = [r["theta"] for r in it1["runs"]]  # M runs, and a third for the M = 3 merge
start = it1["start"]  # the SFT weights (for QLoRA runs: as quantized to NF4)
merged = {(lam, merge): merge_policies(start, thetas[:2], replace(W, lam=lam, m=2)) if merge == "slerp"
          else weight_average(thetas[:2], [1 - lam, lam]) for lam in W.lambdas for merge in ("slerp", "lerp")}
evals = {k: evaluate(state) for k, state in merged.items()}
m3 = {merge: evaluate(slerp_many(start, thetas[:3]) if merge == "slerp" else weight_average(thetas[:3]))
      for merge in ("slerp", "lerp")}
interp = pd.DataFrame([{"λ": lam, "merge": merge, "gold": r["gold"], "proxy": r["proxy"], "KL": r["kl"],
                        "‖δ‖": global_norm(task_vector(merged[lam, merge], start))}
                       for (lam, merge), r in evals.items()])

# %% [markdown]
# Left, the gold reward along λ (bands over prompts); middle, the proxy; right, the norm of the
# merged task vector, which LERP shrinks and SLERP keeps:

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 4))
for k, merge in enumerate(("slerp", "lerp")):
    d = interp[interp["merge"] == merge]
    gold = np.stack([evals[lam, merge]["gold_all"].mean(1) for lam in W.lambdas], 1)
    line_with_band(axes[0], W.lambdas, *column_intervals(gold), color=f"C{k}", label=merge.upper())
    axes[1].plot(d["λ"], d.proxy, "o-", color=f"C{k}", label=merge.upper())
    axes[2].plot(d["λ"], d["‖δ‖"], "o-", color=f"C{k}", label=merge.upper())
    for ax, key in ((axes[0], "gold"), (axes[1], "proxy")):
        ax.axhline(m3[merge][key], color=f"C{k}", ls=":", label=f"{merge.upper()} M=3")
for ax, ylabel in zip(axes, ["gold reward", "proxy reward", "task-vector norm ‖θ − θ_sft‖"]):
    ax.set(xlabel="interpolating coefficient λ", ylabel=ylabel)
axes[0].legend(fontsize=8)
ch.save(fig, "05_stage2_slerp_vs_lerp")
print(f"angle between δ1 and δ2: {it1['angle_deg']:.1f}°; norms {[round(n, 3) for n in it1['task_norms']]}")
interp.round(3)

# %% [markdown]
# The claim compares the two merges halfway, λ = 0.5, per eval prompt:

# %%
mid = interp[interp["λ"] == 0.5].set_index("merge")
both = np.stack([evals[0.5, m]["gold_all"].mean(1) for m in ("slerp", "lerp")], 1)
slerp_gain = bootstrap(both, lambda m: m[..., 0] - m[..., 1])
print(f"gold, SLERP − LERP at λ = 0.5: {slerp_gain:.3f}")

# %% [markdown]
# It holds when its whole interval lies above 0:

# %%
ch.claim(id="warp-slerp-beats-lerp", paper="WARP", figure="Fig. 3c (05_stage2_slerp_vs_lerp)",
         claim="SLERP of the task vectors reaches a higher reward than LERP (λ = 0.5, M = 2)",
         metric=f"gold, SLERP − LERP at λ=0.5 (proxy: {mid.loc['slerp', 'proxy'] - mid.loc['lerp', 'proxy']:+.3f}; "
                f"‖δ‖ SLERP {mid.loc['slerp', '‖δ‖']:.3f} vs LERP {mid.loc['lerp', '‖δ‖']:.3f})",
         estimate=slerp_gain, threshold=0.0, direction=">")

# %% [markdown]
# ## Stage 3: LITI fronts and iterations (Fig. 1b, 4a, c)
#
# LITI interpolates from the init towards the SLERP of the M runs, θ = (1−η)·θ_init + η·θ_slerp; the
# η sweep traces a front on the gold reward vs KL plane, drawn against the trajectory of a plain RL
# run. Iteration 2 starts M new runs from the η point of iteration 1 (LITI) and traces its own front.

# %%
def front(theta_init, theta_merged):
    """The LITI front: for each η, per prompt, the gold reward and the KL to SFT: (prompts, η, 2)."""
    points = [evaluate(liti(theta_init, theta_merged, eta)) for eta in W.etas]
    return np.stack([np.stack([p["gold_all"].mean(1), p["kl_all"].mean(1)], -1) for p in points], 1)

fronts = {"iteration 1": front(it1["start"], it1["merged"]), "iteration 2": front(it2["start"], it2["merged"])}
plain = stage1[f"EMA anchor, β={W.run.beta:g}"]
rl = np.stack([per_prompt(plain, n_eval), per_prompt(plain, n_eval, "eval_kl_all")], -1)  # (prompts, steps, 2)

# %% [markdown]
# The fronts against the plain run's trajectory (error bars over prompts; each front point is
# labelled by its η):

# %%
fig, ax = plt.subplots(figsize=(7, 4.5))
for k, (name, f) in enumerate({"plain RL (EMA anchor)": rl, **{f"LITI front, {n}": v for n, v in fronts.items()}}.items()):
    mean, low, high = column_intervals(f[..., 0])
    ax.errorbar(f[..., 1].mean(0), mean, yerr=[mean - low, high - mean], fmt="s--" if k == 0 else "o-", ms=3,
                capsize=2, lw=1, color="grey" if k == 0 else f"C{k - 1}", label=name)
for i, f in enumerate(fronts.values()):  # iteration 1's labels above its points, iteration 2's below
    for eta, x, y in zip(W.etas, f[..., 1].mean(0), f[..., 0].mean(0)):
        if i > 0 and eta == 0:  # a later front starts at the previous one's LITI point, labelled there
            continue
        ax.annotate(f"η={eta:g}", (x, y), xytext=(4, 5) if i == 0 else (4, -11), textcoords="offset points",
                    fontsize=7, color=f"C{i}")
# KL from 0 (no margin below it), unless a sampled estimate of a tiny KL comes out below 0
ax.set_xlim(left=min(0.0, *(f[..., 1].mean(0).min() for f in (rl, *fronts.values()))))
ax.set(xlabel="KL(policy ‖ SFT) (nats)", ylabel="gold reward", title="LITI fronts (gold reward)")
ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))  # beside the axes, off the fronts
ch.save(fig, "05_stage3_liti_fronts")

# %% [markdown]
# Two claims compare curves at equal KL (`lib.report.analysis.gap_at_equal_kl`): the front's gold
# reward, linearly interpolated at the KL of each point of the other curve that lies within the
# front's KL range, minus that point's gold reward, averaged over those points. The interval
# resamples the eval prompts, so both curves move together in every replicate.

# %%
n = len(W.etas)
comparisons = {
    "warp-liti-front-dominates": (
        "the LITI front (iteration 1) lies above the plain RL trajectory at equal KL",
        "mean over the RL eval points after step 0 within the front's KL range of front gold − RL gold",
        "Fig. 4a (05_stage3_liti_fronts)", equal_kl_columns(fronts["iteration 1"], rl[:, 1:]), gap_at_equal_kl(n)),
    "warp-iterations-move-front-up": (
        "iterating WARP moves the front up: at equal KL, iteration 2's front has a higher gold reward than "
        "iteration 1's", "mean over iteration 2's front points within iteration 1's KL range of their gold − "
        "iteration 1's front gold", "Fig. 4c (05_stage3_liti_fronts)",
        equal_kl_columns(fronts["iteration 1"], fronts["iteration 2"]), lambda m: -gap_at_equal_kl(n)(m))}
gaps = {id_: bootstrap(values, reduce) for id_, (*_, values, reduce) in comparisons.items()
        if np.isfinite(reduce(values.mean(0)))}  # else the two curves share no KL range
for id_ in comparisons:
    print(f"{id_}: {gaps[id_]:.3f}" if id_ in gaps else f"{id_}: no shared KL range here, so it cannot be tested")

# %% [markdown]
# Each holds when its whole interval lies above 0:

# %%
for id_, gap in gaps.items():
    ch.claim(id=id_, paper="WARP", figure=comparisons[id_][2], claim=comparisons[id_][0], metric=comparisons[id_][1],
             estimate=gap, threshold=0.0, direction=">")

# %% [markdown]
# ## The final WARP policy vs plain RL at the same KL (gold win rate)
#
# WARP judges a policy by its reward at its KL (Fig. 1b, 4): the WARP policy after the iterations
# (LITI at the config's η) meets the plain EMA-anchored RL policy at the eval step whose KL to SFT
# is nearest its own (`lib.report.analysis.nearest_kl_step`).

# %%
warp_final = evaluate(it2["init"])
matched = nearest_kl_step(plain["eval_kl_init"], warp_final["kl"])
wins = bootstrap(win_rates_by_prompt(warp_final["gold_all"],
                                     np.asarray(plain["eval_gold_all"][matched]).reshape(n_eval, -1)))
print(f"gold win rate, WARP vs plain RL at the matched step: {wins:.3f}")
print(f"WARP: gold {warp_final['gold']:.3f} at KL {warp_final['kl']:.2f}; plain RL at step "
      f"{plain['eval_step'][matched]}: gold {plain['eval_gold'][matched]:.3f} at KL {plain['eval_kl_init'][matched]:.2f}")

# %% [markdown]
# The claim is that win rate, paired over the eval prompts: it holds when its whole interval lies
# above one half.

# %%
ch.claim(id="warp-wins-at-matched-kl", paper="WARP", figure="Fig. 1b (05_stage3_liti_fronts)",
         claim="the final WARP policy wins against the plain RL policy of the same KL under the gold reward",
         metric=f"gold win rate, WARP ({W.iterations} iterations, η={W.eta:g}, KL {warp_final['kl']:.2f}) vs plain RL "
                f"at step {plain['eval_step'][matched]} (KL {plain['eval_kl_init'][matched]:.2f})",
         estimate=wins, threshold=0.5, direction=">")

# %% [markdown]
# The paper's WARP wins because its plain RL runs collapse after thousands of steps; whether the
# plain run here has passed its peak at the matched step is what notebook 04's
# `rl-single-rm-hacked` measures.
#
# ## What held, what failed, what this scale cannot decide
#
# This run's claims, from `results/claims.json`: a claim holds when its whole 95% interval lies
# on the paper's side of the threshold, fails when it lies wholly on the other side, and is
# not decided otherwise.

# %%
ch.verdicts()

# %% [markdown]
# ## Try it
#
# - Longer runs, `overrides = {"warp.run.steps": 150}`: task vectors grow and their angle shows whether
#   they stay nearly orthogonal.
# - SLERP on the whole flattened vector, `overrides = {"warp.angles": "global"}`, or one angle per
#   transformer layer as the paper, `{"warp.angles": "layer"}`.
# - More runs per iteration, `overrides = {"warp.m": 3}` (the recursive M > 2 rule).
