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
# # 00 · Base models: a TL;DR-shaped world with an exact gold reward
#
# Both papers fine-tune everything from **one shared pre-trained model** that was then
# supervised-fine-tuned (SFT) on Reddit TL;DR. WARM's argument rests on it: fine-tunes of one
# pre-training stay *linearly mode connected*, so their weights can be averaged. And both papers
# measure reward hacking with a reward they trust more than the proxy (a larger "control" RM, or
# PaLM-L as an oracle).
#
# This chapter builds that setting at laptop scale:
#
# 1. a **synthetic world** of Reddit-like posts and summaries whose **gold reward is known
#    exactly** (so over-optimization is *measured*, as in Gao et al. 2023 and Coste et al. 2024);
# 2. a tokenizer, a tiny **Llama pre-trained** on the world's text, then **SFT** on post → summary;
# 3. **preference pairs of the SFT policy's own samples**, labelled by noisy Bradley–Terry
#    annotators, as in the papers (the TL;DR comparisons are samples of policies);
# 4. a **world check** and a **featurizer check**: a simple proxy reward optimized by best-of-N
#    must over-optimize, the OOD split must be a real shift, and a linear probe on the SFT
#    features must already rank the policy's samples with the gold reward.
#
# Every check is a claim in `results/claims.json`, with a 95% interval and a verdict.

# %% tags=["parameters"]
profile = "default"  # smoke | default | gpu
overrides = {}  # dotted config keys (a dict or its JSON text), e.g. {"pretrain.steps": 600}

# %% [markdown]
# The library pieces the chapter uses, and its pipeline on that profile:

# %%
import dataclasses

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from lib.measure.evaluate import best_of_n, bon_kl, within_prompt_pearson
from lib.measure.stats import bootstrap, extreme_bootstrap
from lib.report.analysis import alignment, bon_gold, column_intervals, sample_facts
from lib.report.notebook import Chapter
from lib.report.plots import line_with_band
from lib.rm.pool import RewardModels
from lib.world import data as D
from lib.world import world as W
from lib.world.proxy import BagOfWordsProxy

ch = Chapter("00", profile, overrides)
pl, P = ch.pl, ch.P
synthetic = P.world.source == "synthetic"  # real TL;DR (the gpu profile) has no exact gold reward
pd.set_option("display.max_colwidth", 120)
ch.describe()

# %% [markdown]
# ## The world
#
# A post states facts: a key event (*who did what*), details, a feeling, a duration, a question.
# A summary is scored by the gold reward `lib.world.world.gold_reward(post, summary)`: it adds
# the post's facts the summary covers (the key event most, then the key person and up to
# `max_other_facts` other facts) and a clean ending; it subtracts each fact not in the post
# (a hallucination), each repeated fact or word trigram, each word over the length budget and
# each word outside the lexicon. Its weights, from `lib.world.world.GOLD` (magnitudes: the sentence
# above says which terms subtract; `length_budget` is in words, `max_other_facts` a count):

# %%
pd.Series(dataclasses.asdict(W.GOLD), name="weight").to_frame()

# %% [markdown]
# Here is one post, and summaries of it by the world's procedural "writers".

# %%
if synthetic:
    post = W.parse_post(pl.world.comparisons["train"][0]["post"])
    print("POST:", post.text, "\nkey:", post.key_person, "|", post.key_event)
    rng = np.random.default_rng(0)
    writers = [{"writer": w.name, "summary": (s := W.write_summary(rng, post, w)),
                **W.gold_breakdown(post, s)} for w in W.WRITERS_ID]
    display(pd.DataFrame(writers).round(2))

# %% [markdown]
# ## Tokenizer, pre-training and SFT
#
# A byte-level BPE tokenizer is trained with `tokenizers` on the world's text; the model is a
# `LlamaForCausalLM` built from a config (no hand-written transformer). Pre-training sees posts of
# every topic, each followed by a noisy TL;DR from a random writer (`world.pretrain_tldr_fraction`)
# and a reader's reply that names the TL;DR's flaws: what it makes up, misses or repeats
# (`world.pretrain_reply_fraction`). SFT then trains on post → reference summary, with the loss
# on the summary only. Both stages are cached by a hash of their config. Copying facts from the
# post and reading a reply that checks them is what later lets a reward model check a summary's
# facts against the post, and what makes pre-training matter to it: WARM's first premise
# (notebook 02, docs/substrate.md has the search that chose this world).
# %%
tok = pl.tokenizer
example = D.prompts_of(pl.world.comparisons["train"].select([0]))[0]
print(f"vocabulary: {len(tok)} tokens; the prompt below is {len(tok(example)['input_ids'])} tokens")
print(example)

# %% [markdown]
# The two stages' loss curves, on training batches and on held-out text:

# %%
pre, sft = pl.history("pretrain"), pl.history("sft")
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
for ax, h, title in [(axes[0], pre, "pre-training"), (axes[1], sft, "SFT (summary tokens)")]:
    ax.plot(h["step"], h["loss"], label="train")
    ax.plot(h["eval_step"], h["eval_loss"], "o-", label="validation")
    ax.set(xlabel="optimizer step", ylabel="cross-entropy (nats/token)", title=title, yscale="log")
    ax.legend()
ch.save(fig, "00_training_curves")
print(f"{pl.pretrained_artifact().meta['n_params']:,} parameters; final validation loss: "
      f"pre-training {pre['eval_loss'][-1]:.3f}, SFT {sft['eval_loss'][-1]:.3f}")

# %% [markdown]
# Both losses fall and the validation curves track the training ones: no over-fitting at this size.
#
# ## Samples and their gold reward
#
# Sixteen summaries per validation post (temperature 1) from the pre-trained model and from the
# SFT policy, each scored by the gold reward; the reference summaries of the SFT data are the
# ceiling a careful writer reaches.

# %%
pools = {stage: pl.sample_pool(stage, P.n_eval_posts, 16) for stage in ("pretrain", "sft")}
posts = pools["sft"]["posts"]
reference_gold = pl.gold(D.prompts_of(posts), posts["post"], posts["summary"])
gold_pre, gold_sft = pools["pretrain"]["gold"], pools["sft"]["gold"]
pd.DataFrame({"post": [p[:110] + "…" for p in posts["post"][:4]],
              "SFT sample": [s[0] for s in pools["sft"]["samples"][:4]], "gold": gold_sft[:4, 0]})

# %% [markdown]
# The gold reward of every sample of both models, against the references' mean:

# %%
fig, ax = plt.subplots()
bins = np.linspace(min(gold_pre.min(), gold_sft.min()), max(gold_pre.max(), gold_sft.max()), 45)
ax.hist(gold_pre.ravel(), bins, alpha=0.6, label="pre-trained")
ax.hist(gold_sft.ravel(), bins, alpha=0.6, label="SFT")
ax.axvline(reference_gold.mean(), color="k", ls="--", label="reference summaries (mean)")
ax.set(xlabel="gold reward", ylabel="number of samples", title="Gold reward of samples")
ax.legend()
ch.save(fig, "00_gold_distribution")
print(f"mean gold: pre-trained {gold_pre.mean():.2f}, SFT {gold_sft.mean():.2f}, "
      f"references {reference_gold.mean():.2f}")

# %% [markdown]
# Two claims on the SFT policy, each with a 95% interval over posts: it improves on the
# pre-trained model, and its samples vary enough for best-of-N to have something to pick
# (an *oracle* best-of-16, choosing by the gold reward itself, must gain at least 1 gold).

# %%
sft_gain = bootstrap(gold_sft.mean(1) - gold_pre.mean(1))
oracle_gain = bootstrap(best_of_n(gold_sft, gold_sft, 16) - gold_sft.mean(1))
ch.benchmark(name="SFT within-post gold std (16 samples)", ours=float(gold_sft.std(1).mean()),
             baseline=None, unit="gold")
print(f"SFT − pre-trained gold: {sft_gain:.3f}; oracle best-of-16 gain: {oracle_gain:.3f}")

# %% [markdown]
# Each holds when its whole interval lies above its threshold:

# %%
ch.claim(id="sft-improves-gold", paper="setup", figure="00_gold_distribution",
         claim="SFT raises the gold reward of samples over the pre-trained model",
         metric="mean gold, SFT − pre-trained (per post, 16 samples each)",
         estimate=sft_gain, threshold=0.0, direction=">")
ch.claim(id="sft-spread", paper="setup", figure="00_gold_distribution",
         claim="SFT samples vary enough for best-of-N to improve (oracle best-of-16 gains ≥ 1 gold)",
         metric="oracle best-of-16 gold gain over the mean SFT sample",
         estimate=oracle_gain, threshold=1.0, direction=">")

# %% [markdown]
# ## Preference pairs: the policy's own samples
#
# The reward models must rank **the SFT policy's own samples**, since best-of-N and RL choose
# among exactly those. So, as in the papers (and Gao et al., Coste et al.), the comparisons are
# pairs of policy samples: `pairs.k` samples per post, every pair of distinct samples labelled by
# the world's annotators. An annotator prefers summary 1 with probability σ(Δgold/τ + γ·Δwords):
# Bradley–Terry on the gold margin plus a verbosity bias γ per word. Train and ID-validation pairs
# come from disjoint posts of the training topics. The **OOD** pairs are samples of *another
# policy* on held-out topics, as WARM's D_ood are samples of other policies: the pre-trained base
# model, before SFT (`pairs.ood_policy`), at T = 0.7. It writes like the web's TL;DR writers it was
# pre-trained on (filler, repetitions, other facts), so its pairs differ from the SFT policy's in
# what they differ in, while their labels disagree with gold about as often as ID labels do (the
# table's last column): a shift of distribution, not of difficulty. The SFT policy's own samples
# on held-out topics are no such shift here, at any temperature: the proxy below counts words, and
# words do not care about topics (docs/world.md). The writers' pairs stay as a
# contrast: they are what the RMs of earlier versions of this repository learned from.

# %%
comparisons = pl.comparisons
tables = {("policy samples", s): D.pair_table(ds) for s, ds in comparisons.items()}
if synthetic and P.pairs.source == "policy":
    tables.update({("writers", s): D.pair_table(ds) for s, ds in pl.world.comparisons.items()})
pd.DataFrame(tables).T.round(3)

# %% [markdown]
# Human TL;DR labels disagree with each other about 25–30% of the time. The claim: our training
# labels disagree with the gold ranking inside the 20–35% band around that, i.e. within 7.5
# points of 27.5%.

# %%
if synthetic:
    train = comparisons["train"]
    g0, g1 = np.asarray(train["gold_0"]), np.asarray(train["gold_1"])
    untied = g0 != g1
    wrong = ((np.asarray(train["choice"]) == 1) != (g1 > g0))[untied]
    noise = bootstrap(wrong, lambda m: np.abs(m[..., 0] - 0.275),
                      clusters=np.asarray(train["post_id"])[untied])
    print(f"label/gold disagreement on train pairs: {wrong.mean():.3f}; its distance to 0.275: {noise:.3f}")

# %% [markdown]
# It holds when its whole interval lies below 7.5 points:

# %%
if synthetic:
    ch.claim(id="world-label-noise", paper="setup", figure="-",
             claim="training labels disagree with gold about as often as human TL;DR labels (20–35%)",
             metric=f"|label/gold disagreement − 0.275| on train pairs (disagreement {wrong.mean():.3f})",
             estimate=noise, threshold=0.075, direction="<")

# %% [markdown]
# ## World check: does optimizing a proxy over-optimize it?
#
# Before anything builds on this world, we fit the simplest proxy reward, a Bradley–Terry logistic
# regression on bag-of-words features of the summary plus three hand-made ones (its length, and
# how many of its words are / are not in the post), once on the policy's pairs and once on the
# writers'. Two checks: the shift to the OOD split must cost accuracy, and best-of-N against the
# proxy must over-optimize it (proxy up, gold up then down).

# %%
proxies = {"BoW, policy pairs": BagOfWordsProxy.fit_pairs(comparisons["train"], l2=P.world_check.l2)}
if synthetic and P.pairs.source == "policy":
    proxies["BoW, writer pairs"] = BagOfWordsProxy.fit_pairs(pl.world.comparisons["train"],
                                                             l2=P.world_check.l2)
bow = proxies["BoW, policy pairs"]
correct = {s: bow.correct(comparisons[s]) for s in ("validation", "test_ood")}
pd.DataFrame({name: {s: float(p.correct(comparisons[s]).mean()) for s in comparisons}
              for name, p in proxies.items()}).round(3)

# %% [markdown]
# The first check: the policy-pairs proxy's accuracy on OOD minus on ID validation, with an
# interval over posts.

# %%
shift = bootstrap({"ID": correct["validation"], "OOD": correct["test_ood"]},
                  lambda m: m["OOD"][..., 0] - m["ID"][..., 0],
                  clusters={s: np.asarray(comparisons[k]["post_id"])
                            for s, k in (("ID", "validation"), ("OOD", "test_ood"))})
print(f"proxy accuracy, OOD − ID validation: {shift:.3f}")

# %% [markdown]
# It holds when its whole interval lies below 0:

# %%
ch.claim(id="world-ood-shift", paper="setup", figure="-",
         claim="the distribution shift hurts: proxy accuracy is lower on OOD than on ID validation",
         metric="accuracy of the BoW proxy (policy pairs), OOD − ID validation",
         estimate=shift, threshold=0.0, direction="<")

# %% [markdown]
# The second: best-of-N against the proxy on a pool of SFT samples, for N = 1, 2, 4, … up to the
# pool's size, with the gold and the proxy reward of each pick.

# %%
wc = P.world_check
pool = pl.sample_pool("sft", wc.n_prompts, wc.k)
proxy_scores = np.array([bow.score([p] * len(row), row)
                         for p, row in zip(pool["posts"]["post"], pool["samples"])])
ns = [n for n in 2 ** np.arange(20) if n <= wc.k]
kl = [bon_kl(n) for n in ns]
gold_by_n = bon_gold(proxy_scores, pool["gold"], ns)  # (prompts, N)
proxy_by_n = bon_gold(proxy_scores, proxy_scores, ns).mean(0)
oracle_by_n = bon_gold(pool["gold"], pool["gold"], ns).mean(0)
ch.benchmark(name="SFT pool generation throughput", ours=pool["stats"]["samples_per_s"],
             baseline=None, unit="samples/s")

# %% [markdown]
# Against the KL of best-of-N to the SFT policy, the gold (left) and the proxy (right) of the pick:

# %%
mean, low, high = column_intervals(gold_by_n)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
line_with_band(axes[0], kl, mean, low, high, label="best-of-N under the proxy (95% interval)")
axes[0].plot(kl, oracle_by_n, "s--", ms=3, label="best-of-N under gold")
axes[0].set(xlabel="KL(best-of-N ‖ SFT) = log N − (N−1)/N  (nats)", ylabel="gold reward",
            title="Gold reward of the pick")
axes[1].plot(kl, proxy_by_n, "o-", color="C1")
axes[1].set(xlabel="KL(best-of-N ‖ SFT)  (nats)", ylabel="proxy reward (logit units)",
            title="Proxy reward of the pick")
axes[0].legend(fontsize=8)
ch.save(fig, "00_world_check")
pd.DataFrame({"N": ns, "KL": kl, "gold": mean, "proxy": proxy_by_n, "oracle": oracle_by_n}).round(3)

# %% [markdown]
# Over-optimization is the gold at the largest N minus its peak over N, with an interval that
# accounts for choosing the peak:

# %%
proxy_rises = bool(np.all(np.diff(proxy_by_n) > -1e-9))
peak = int(np.argmax(mean))
fall = extreme_bootstrap(gold_by_n[:, -1:] - gold_by_n, "min")
print(f"gold at N={ns[-1]} − peak (N={ns[peak]}): {fall:.3f}; proxy rises throughout: {proxy_rises}")

# %% [markdown]
# It holds when its whole interval lies below 0:

# %%
ch.claim(id="world-overoptimization", paper="setup", figure="00_world_check",
         claim="best-of-N against a proxy over-optimizes: proxy keeps rising while gold peaks, then falls",
         metric=f"gold at N={ns[-1]} − peak gold over N (peak at N={ns[peak]}; proxy rises "
                f"throughout: {proxy_rises})",
         estimate=fall, threshold=0.0, direction="<")

# %% [markdown]
# The proxy reward rises with N, as it must. The gold reward rises at first, while the proxy's
# choices are genuinely better, then peaks and falls once the proxy's errors dominate: Goodhart's
# law, measured exactly, the phenomenon WARM and WARP try to delay. Best-of-N under the gold reward
# itself (dashed) shows what the pool could give.
#
# ## Featurizer check: does the SFT model already see content?
#
# Every reward model starts from the SFT featurizer and a head fitted on its frozen features of
# the training pairs (a linear probe, WARM's shared head). If the probe already ranks the policy's
# samples with the gold reward, the featurizer sees content; a change that breaks this (a
# different pre-training, tokenizer or pair source) shows here first. Within each prompt of the
# sample pool: the correlation of each reward with the gold reward, the length and the
# hallucination term (−1 per made-up fact, so a reward that avoids made-up facts correlates
# positively with it).

# %%
rms = RewardModels(pl)
probe = rms.scorer.score_texts(rms.probe_state(), [p for p in D.prompts_of(pool["posts"])
                                             for _ in range(pool["gold"].shape[1])],
                        [s for row in pool["samples"] for s in row]).reshape(pool["gold"].shape)
readers = {"linear probe on SFT features": probe, **{
    name: np.array([p.score([q] * len(row), row) for q, row in zip(pool["posts"]["post"], pool["samples"])])
    for name, p in proxies.items()}}
facts = sample_facts(pool)
alignment(readers, pool, facts).round(3)

# %% [markdown]
# The claim is the probe's correlation with gold, with an interval over prompts:

# %%
probe_rho = bootstrap(within_prompt_pearson(probe, pool["gold"]))
print(f"within-prompt ρ(probe, gold): {probe_rho:.3f}")

# %% [markdown]
# It holds when its whole interval lies above its threshold:

# %%
ch.claim(id="probe-reads-content", paper="setup", figure="-",
         claim="a linear probe on the SFT features ranks the policy's own samples with the gold reward",
         metric="within-prompt Pearson ρ(probe, gold) on the SFT sample pool, mean over prompts",
         estimate=probe_rho, threshold=0.2, direction=">")

# %% [markdown]
# A linear head on the *frozen* features is a floor, not a ranking of featurizers: it catches a
# featurizer that reads no content at all. Compare its row with the bag-of-words proxies, which
# check facts through their hand-made count of the words missing from the post. Checking facts is
# what fine-tuning learns: notebook 02's `rm-beats-bow-proxy` and notebook 03's `rm-reads-content`
# are the checks that matter downstream (docs/reward-models.md has how each featurizer read).

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
# - In the parameters cell, set `profile = "smoke"` to run the whole chapter in seconds, on a
#   model too small to learn anything: every number is then meaningless, but the code path is the
#   same.
# - Learn from the writers instead of the policy: `overrides = {"pairs.source": "dataset"}`, and
#   watch the probe's correlation with gold: what the RMs learn from the wrong distribution.
# - Make the annotators unbiased, `overrides = {"world.label_length_bias": 0.0}`, or pre-train for
#   half as long, `overrides = {"pretrain.steps": 900}`: everything downstream of the change is
#   rebuilt.
