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
# # 04 · RL with WARM: reward hacking and its delay (WARM §5.2, Fig. 1b, 8, 9)
#
# **The paper's claims.** A policy fine-tuned by KL-regularized RL against a single RM **hacks** it:
# its proxy reward keeps rising while the control reward rises, peaks, then collapses. Using WARM as
# the reward delays or reduces the collapse, more so than ENS, with clean and with corrupted
# labels (Fig. 1b, 8); the WARM M=6 policy wins against the φ1 policy under the oracle (Fig. 9c:
# 79.4%).
#
# **Here.** On-policy REINFORCE with a leave-one-out baseline (`lib/rl/rl.py`): every step samples
# k summaries per prompt, shapes the reward as r − β·KL(π‖π_SFT) (sequence-level), and takes the
# advantage against the mean of the other samples of the prompt. Every `eval_every` steps the
# policy is sampled on held-out prompts with one fixed seed and scored with the proxy (the RM it
# trains against) and the **gold reward** (never trained on). φ1 and WARM M=6 are trained against
# every seeded RM pool, so their curves carry bands across pools and prompts; the other runs'
# bands are over prompts.

# %% tags=["parameters"]
profile = "default"  # smoke | default | gpu
overrides = {}  # dotted config keys (a dict or its JSON text), e.g. {"rl.run.steps": 200}

# %% [markdown]
# The library pieces the chapter uses, its pipeline on that profile, and the default RL run's
# settings:

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from lib import plans
from lib.measure.evaluate import win_rates_by_prompt
from lib.measure.stats import bootstrap, extreme_bootstrap, nested_bootstrap, prompts_needed_line
from lib.report.analysis import column_intervals, hacking, per_prompt
from lib.report.notebook import Chapter, printable
from lib.report.plots import line_with_band
from lib.rl.runs import RLRuns
from lib.rm.pool import RewardModels

ch = Chapter("04", profile, overrides)
pl, P = ch.pl, ch.P
rms = RewardModels(pl)
runs = RLRuns(pl, rms)
n_eval = len(runs.eval_prompts)  # prompts of every eval step; per_prompt averages each one's samples
base, M = P.rl.run, P.rm.m
W6 = f"WARM M={M}"
print(base)

# %% [markdown]
# ## The runs
#
# Clean labels: φ1, φ2, ENS M=2 (φ1, φ2), WARM M=2 (φ1, φ2), WARM M=6, and φ1 and WARM M=6 of each
# other seeded pool. Corrupt labels: φ1 and WARM M=6 of every seeded corrupt pool (with the larger
# KL weight of the paper's corrupt setting, ×(0.01/0.003) ≈ 3). A β sweep for φ1 and WARM M=6.
# Each run is cached; the first run of this notebook trains them all. φ1 and φ2 are a pool's two
# most accurate members on `rm.rank_on`'s pairs (ID validation: the RL claims are judged by gold,
# not by the pairs φ1 was picked on; WARM ranks on OOD).

# %%
plan = plans.rl_with_warm(rms)
hist = {group: {name: runs.history(runs.run(run, desc=f"RL {group} {name}")) for name, run in by_name.items()}
        for group, by_name in plan.items()}
clean, corrupt, sweep = hist["clean"], hist["corrupt"], hist["sweep"]
seeded = {name: [clean[name]] + [hist["seeds"][name, p] for p in range(1, P.rm.n_seeds)] for name in ("φ1", W6)}
seeded_corrupt = {name: [corrupt[name]] + [hist["corrupt seeds"][name, p] for p in range(1, P.rm.n_seeds)]
                  for name in ("φ1", W6)}
STRATEGIES = list(clean)
COLORS = dict(zip(STRATEGIES, ["C0", "C1", "C2", "C3", "C4"]))
steps = np.asarray(clean["φ1"]["eval_step"])

pd.concat({name: pd.DataFrame({"step": h["eval_step"], "proxy": h["eval_proxy"], "gold": h["eval_gold"],
                               "KL to SFT": h["eval_kl_init"], "length": h["eval_length"]}).set_index("step")
           for name, h in clean.items()}, axis=1).round(2)

# %% [markdown]
# ## Gold reward along training (Fig. 1b)
#
# Mean gold reward of the eval samples at each eval step; bands are 95% intervals (φ1 and WARM
# M=6: across the seeded pools and prompts; the others: over prompts).

# %%
gold = {name: (np.stack([per_prompt(h, n_eval) for h in seeded[name]]) if name in seeded else per_prompt(h, n_eval))
        for name, h in clean.items()}
fig, ax = plt.subplots(figsize=(7, 4))
for name, g in gold.items():
    line_with_band(ax, steps, *column_intervals(g, seeded=g.ndim == 3), label=name, color=COLORS[name], alpha=0.12)
ax.set(xlabel="RL step", ylabel="gold reward (eval samples)", title="clean labels: gold reward along RL")
ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))  # beside the axes, off the curves and bands
ch.save(fig, "04_gold_vs_steps")

# %% [markdown]
# The first question: does RL against a single RM raise the gold reward at all? Best gold over the
# eval steps after step 0, minus step 0, for φ1 of every pool.

# %%
rise = extreme_bootstrap(gold["φ1"][..., 1:] - gold["φ1"][..., :1], "max", seeded=True)
print(f"φ1's best gold gain over step 0: {rise:.3f}")

# %% [markdown]
# Its interval holds for the largest of several noisy means (`extreme_bootstrap`); the claim holds
# when all of it lies above 0:

# %%
ch.claim(id="rl-single-rm-rises", paper="WARM", figure="Fig. 1b (04_gold_vs_steps)",
         claim="RL against a single RM (φ1) first raises the gold reward",
         metric="φ1: max over eval steps after 0 of gold − gold at step 0",
         estimate=rise, threshold=0.0, direction=">")

# %% [markdown]
# ## Proxy vs gold: is the single RM hacked?
#
# WARM's RL claims are about the regime where RL against one RM hacks it (Fig. 1b): the proxy
# keeps rising while the gold reward peaks, then falls. The default RL settings were chosen on
# φ1's curve alone so that its run reaches that regime (docs/rl-regime.md). The proxy and the gold
# reward of φ1 (pool 0) along training, with the mean length of its samples.

# %%
h = clean["φ1"]
fig, ax = plt.subplots(figsize=(7, 4))
ax.plot(h["eval_step"], h["eval_proxy"], "o-", ms=3, color="C1", label="proxy reward (the RM trained on)")
line_with_band(ax, h["eval_step"], *column_intervals(per_prompt(h, n_eval)), label="gold reward", color="C0", style="s-")
ax.set(xlabel="RL step", ylabel="reward", title=f"RL against φ1 (β={base.beta:g}, lr {base.lr:g})")
twin = ax.twinx()
twin.plot(h["eval_step"], h["eval_length"], ":", color="grey")
twin.set(xlabel="RL step", ylabel="mean length (tokens, dotted)")
twin.grid(False)
ax.legend(loc="upper left", fontsize=8)
ch.save(fig, "04_proxy_vs_gold")

# %% [markdown]
# The hacking detector (`lib.report.analysis.hacking`) finds the eval step where the mean gold
# peaks and measures final − peak gold per prompt, with an interval that accounts for choosing the
# peak, and the proxy's rise after the peak. A run is hacked when that interval lies below 0 while
# the proxy rose. It reads φ1 of every seeded pool.

# %%
found = hacking(gold["φ1"], np.mean([h["eval_proxy"] for h in seeded["φ1"]], 0), seeded=True)
pd.Series({"peak step": int(steps[found["peak"]]), "final − peak gold": round(found["fall"].value, 3),
           "95% interval": f"[{found['fall'].ci[0]:.2f}, {found['fall'].ci[1]:.2f}]",
           "proxy rise after peak": round(found["proxy_rise"], 3), "hacked": found["hacked"]}, name="φ1").to_frame()

# %% [markdown]
# The claim is the fall: it holds when its whole interval lies below 0 (the table says whether the
# proxy rose meanwhile).

# %%
ch.claim(id="rl-single-rm-hacked", paper="WARM", figure="Fig. 1b (04_proxy_vs_gold)",
         claim="RL against a single RM (φ1) hacks it at the default KL coefficient: the gold reward rises, "
               "peaks, then falls while the proxy keeps rising",
         metric=f"φ1 at β={base.beta:g}, every pool: final gold − peak gold (peak at step {steps[found['peak']]}; "
                f"proxy {found['proxy_rise']:+.2f} after it)",
         estimate=found["fall"], threshold=0.0, direction="<")

# %% [markdown]
# Does WARM delay or reduce the collapse? The final gold reward of the WARM M=6 policy minus the φ1
# policy's (every pool; paired over prompts), and of WARM M=2 minus ENS M=2 of the same two RMs.

# %%
def pair(a, b):
    """The final gold of two runs as two columns: (..., prompts, 2)."""
    return np.stack([a[..., -1], b[..., -1]], -1)

warm_vs_phi1 = nested_bootstrap(pair(gold[W6], gold["φ1"]), lambda m: m[..., 0] - m[..., 1])
warm_vs_ens = bootstrap(pair(gold["WARM M=2"], gold["ENS M=2"]), lambda m: m[..., 0] - m[..., 1])
print(f"final gold, {W6} − φ1: {warm_vs_phi1:.3f}; WARM M=2 − ENS M=2: {warm_vs_ens:.3f}")

# %% [markdown]
# Each holds when its whole interval lies above 0:

# %%
ch.claim(id="rl-warm-delays-hacking", paper="WARM", figure="Fig. 1b, 8 (04_gold_vs_steps)",
         claim=f"WARM M={M} delays or reduces the collapse of the gold reward compared with φ1",
         metric=f"final gold, WARM M={M} − φ1", estimate=warm_vs_phi1, threshold=0.0, direction=">")
ch.claim(id="rl-ens-hacked-before-warm", paper="WARM", figure="Fig. 1b (04_gold_vs_steps)",
         claim="ENS M=2 is hacked earlier (or harder) than WARM M=2 of the same two RMs",
         metric="final gold, WARM M=2 − ENS M=2", estimate=warm_vs_ens, threshold=0.0, direction=">")

# %% [markdown]
# These two claims compare the policies at the end of the default runs: after φ1's peak when
# `rl-single-rm-hacked` holds (WARM's regime), before any collapse when it does not.
#
# ## Gold reward vs KL to the SFT policy (Fig. 8)
#
# (a) clean labels, every reward; (b) corrupt labels, φ1 vs WARM M=6 (pool 0); (c) the β sweep: each
# trajectory ends further right for a smaller β. Error bars: 95% intervals over prompts.

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 4))
panels = [(axes[0], {name: (h, COLORS[name], "o-") for name, h in clean.items()}),
          (axes[1], {name: (h, COLORS[name], "o-") for name, h in corrupt.items()}),
          (axes[2], {f"{n}, β={b:g}": (h, COLORS[n], s) for (n, b), h in sweep.items()
                     for s in [dict(zip(P.rl.betas, ["o-", "s--", "^:", "d-."]))[b]]})]
for ax, lines in panels:
    for label, (h, color, style) in lines.items():
        mean, low, high = column_intervals(per_prompt(h, n_eval))
        ax.errorbar(h["eval_kl_init"], mean, yerr=[mean - low, high - mean], fmt=style, ms=3, color=color,
                    label=label, capsize=2, lw=1)
beta_c = plan["corrupt"]["φ1"].cfg.beta
for ax, title in zip(axes, ["(a) clean labels", f"(b) {P.rm.corruption:.0%} corrupt labels (pool 0), β={beta_c:.3g}",
                            "(c) β sweep, clean"]):
    ax.set(xlabel="KL(policy ‖ SFT) (nats, k1)", ylabel="gold reward", title=title)
    ax.legend(fontsize=7)
ch.save(fig, "04_gold_vs_kl")

# %% [markdown]
# With corrupt labels, the paper's Fig. 8b: the final gold of WARM M=6 minus φ1's, over every
# seeded corrupt pool.

# %%
gold_corrupt = {name: np.stack([per_prompt(h, n_eval) for h in runs_]) for name, runs_ in seeded_corrupt.items()}
corrupt_gap = nested_bootstrap(pair(gold_corrupt[W6], gold_corrupt["φ1"]), lambda m: m[..., 0] - m[..., 1])
print(f"final gold, {W6} − φ1, corrupt labels: {corrupt_gap:.3f}")

# %% [markdown]
# It holds when its whole interval lies above 0:

# %%
ch.claim(id="rl-warm-delays-hacking-corrupt", paper="WARM", figure="Fig. 8b (04_gold_vs_kl)",
         claim=f"with {P.rm.corruption:.0%} corrupt labels, WARM M={M} ends with a higher gold reward than φ1",
         metric=f"final gold, WARM M={M} − φ1, corrupt labels (every corrupt pool)",
         estimate=corrupt_gap, threshold=0.0, direction=">")

# %% [markdown]
# ## Samples of the policy trained against φ1
#
# The last eval samples of the φ1 policy (pool 0), past its gold peak when it is hacked, with
# their proxy and gold rewards: what the RM over-rewards shows up here.

# %%
h = clean["φ1"]
n_show = 4
prompts = [p for p in runs.eval_prompts for _ in range(base.n_eval_samples)][:n_show]
print("SFT samples (step 0):", *map(printable, h["eval_texts"][0][:2]), sep="\n  ")
pd.set_option("display.max_colwidth", 200)
pd.DataFrame({"summary": list(map(printable, h["eval_texts"][-1][:n_show])),
              "proxy (φ1)": runs.reward_fn(plan["clean"]["φ1"].members)(prompts, h["eval_texts"][-1][:n_show]),
              "gold": h["eval_gold_all"][-1][:n_show]}).round(2)

# %% [markdown]
# ## Win rates judged by the gold reward (Fig. 9)
#
# Left: each policy at each eval step against the SFT policy. Right (Fig. 9c): the WARM M=6
# policy at each eval step against the φ1 policy at its best step (by mean gold; choosing φ1's
# best step favours φ1). Win rate = P(gold of a sample of A > gold of a sample of B) + ½·P(tie)
# over the samples of each eval prompt; bands: 95% intervals (across pools for Fig. 9c).

# %%
def golds(h, i):
    """Gold rewards of the eval samples of step index `i`, shaped (prompts, samples per prompt)."""
    return np.asarray(h["eval_gold_all"][i]).reshape(len(runs.eval_prompts), -1)

def vs(h, ref, j):
    """Per prompt, the win rate of `h` at every eval step against `ref` at step index j."""
    return np.stack([win_rates_by_prompt(golds(h, i), golds(ref, j)) for i in range(len(steps))], axis=1)

best = {name: [int(np.argmax(per_prompt(h, n_eval).mean(0))) for h in hs] for name, hs in seeded.items()}
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for name, h in clean.items():
    line_with_band(axes[0], steps, *column_intervals(vs(h, h, 0)), label=name, color=COLORS[name], alpha=0.12)
rates = np.stack([vs(h6, h1, b1) for h6, h1, b1 in zip(seeded[W6], seeded["φ1"], best["φ1"])])
line_with_band(axes[1], steps, *column_intervals(rates, seeded=True), label=f"{W6} vs φ1 at its best step",
               color=COLORS[W6])
for ax, title in zip(axes, ["vs the SFT policy", f"{W6} vs φ1 at its best step (Fig. 9c)"]):
    ax.axhline(0.5, color="k", lw=0.8)
    ax.set(xlabel="RL step", ylabel="gold win rate", title=title)
    ax.legend(fontsize=8)
ch.save(fig, "04_win_rates")

# %% [markdown]
# The paper's headline (Fig. 9c): the WARM M=6 policy at its best step against the φ1 policy at
# its best step, in every pool.

# %%
headline = np.stack([r[:, b6] for r, b6 in zip(rates, best[W6])])  # (pools, prompts)
est = nested_bootstrap(headline)
print(f"gold win rate, {W6} vs φ1, each at its best step: {est:.3f}")

# %% [markdown]
# It holds when its whole interval lies above one half; an undecided one says how many eval
# prompts would decide it:

# %%
row = ch.claim(id="rl-warm-wins-vs-phi1", paper="WARM", figure="Fig. 9c (04_win_rates)",
               claim=f"the policy trained against WARM M={M} wins against the policy trained against φ1, "
                     "each at its best step (paper: 79.4%)",
               metric=f"gold win rate, WARM M={M} at steps {[int(steps[b]) for b in best[W6]]} vs φ1 at steps "
                      f"{[int(steps[b]) for b in best['φ1']]} (one per pool)",
               estimate=est, threshold=0.5, direction=">")
if row["verdict"] == "inconclusive":
    print(prompts_needed_line(est, est.value - 0.5, now=len(runs.eval_prompts)))

# %% [markdown]
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
# - A larger KL weight, `overrides = {"rl.run.beta": 0.05}`: φ1's gold levels off instead of
#   falling (docs/rl-regime.md); what is left of WARM's advantage there?
# - No KL term and twice the steps, `overrides = {"rl.run.beta": 0.0, "rl.run.steps": 100}`: how
#   far does the gold fall, and does WARM M=6 fall later?
# - LoRA or 4-bit QLoRA policies, `overrides = {"rl.run.mode": "lora"}`.
# - The k3 KL estimator, `overrides = {"rl.run.kl_estimator": "k3"}`.
