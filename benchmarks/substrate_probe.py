"""How well do single RMs read on a substrate? The probe behind the RM-substrate tables of docs/reward-models.md.

    python -m benchmarks.substrate_probe [--profile default] [--set KEY=VALUE ...]
        [--members 0,3,5] [--pool 64x256] [--ood-temperatures 1.0,0.7] [--json PATH]

Under the overrides (e.g. `--set world.pretrain_tldr_fraction=1.0 --set pretrain.steps=900`) it
builds, or reads from the profile's cache, the SFT policy and its on-policy pairs, then reports:

- the pairs: how often the label agrees with gold, made-up facts per summary;
- the bag-of-words proxy of notebook 00, refit on the training labels: ID and OOD accuracy, and
  best-of-N gold on a pool of SFT samples (`--pool` posts × samples);
- each clean member of pool 0 named by `--members`, trained here with its pool recipe (not
  cached, no held-out curve): ID and OOD accuracy, the gap to the proxy, what it weighs in the
  gold reward's terms (`lib.analysis.term_weights`), ρ(RM, gold) and best-of-N on the same pool;
- with `--ood-temperatures`, the proxy and the first member on OOD pairs re-sampled at each
  temperature from the first 300 OOD posts (held-out topics).

Synthetic world only (it needs the gold reward's terms). Development measurements: nothing is
written to results/, and one RM per member stands for its pool.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import lib.data as D
from lib import world as W
from lib.analysis import term_weights
from lib.config import SamplingConfig
from lib.evaluate import best_of_n, within_prompt_pearson
from lib.pipeline import Pipeline
from lib.proxy import BagOfWordsProxy
from lib.rm import PairSet, accuracy, score_pairs, score_texts, train_reward_model
from lib.rm_pool import RewardModels
from lib.runner import parse_set
from lib.sampling import sample_summaries

NS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def pair_rewards(model, pl: Pipeline, ds) -> np.ndarray:
    """Rewards (2, pairs) of a trained RM on a comparison dataset."""
    return score_pairs(model, PairSet(pl.tokenizer, ds, pl.profile.model.max_length))


def bon_curve(scores: np.ndarray, gold: np.ndarray) -> dict[int, float]:
    return {n: round(float(best_of_n(scores, gold, n).mean()), 3) for n in NS if n <= gold.shape[1]}


def probe(profile: str, overrides: dict, members: list[int], pool_shape: tuple[int, int],
          ood_temperatures: list[float]) -> dict:
    pl = Pipeline(profile, overrides)
    if pl.profile.world.source != "synthetic" or pl.profile.pairs.source != "policy":
        raise ValueError("the substrate probe needs the synthetic world and on-policy pairs "
                         "(world.source = synthetic, pairs.source = policy)")
    n_rms = pl.profile.rm.n_rms
    if not members or any(not 0 <= i < n_rms for i in members):
        raise ValueError(f"members {members}: pool 0 has members 0–{n_rms - 1} (rm.n_rms = {n_rms})")
    comps = pl.comparisons
    val, ood = comps["validation"], comps["test_ood"]
    made_up = [-W.gold_breakdown(W.parse_post(p), s)["hallucination"] for p, s in zip(val["post"], val["summary_0"])]
    out: dict = {"overrides": overrides, "pairs": {
        "train": len(comps["train"]), "validation": len(val), "test_ood": len(ood),
        "label agrees with gold": round(1 - D.label_gold_disagreement(val), 3),
        "made-up facts per summary": round(float(np.mean(made_up)), 3)}}

    proxy = BagOfWordsProxy.fit_pairs(comps["train"])
    n_posts, k = pool_shape
    pool = pl.sample_pool("sft", n_posts, k)
    posts = [p for p in pool["posts"]["post"] for _ in range(k)]
    prompts = [p for p in D.prompts_of(pool["posts"]) for _ in range(k)]
    samples = [s for row in pool["samples"] for s in row]
    proxy_pool = proxy.score(posts, samples).reshape(-1, k)
    proxy_id = float(proxy.correct(val).mean())
    out["proxy"] = {"ID": round(proxy_id, 4), "OOD": round(float(proxy.correct(ood).mean()), 4),
                    "best-of-N": bon_curve(proxy_pool, pool["gold"]),
                    "oracle": round(float(pool["gold"].max(1).mean()), 3)}

    rms = RewardModels(pl)
    train = rms.pairset("train-0.0")
    rewards = {"gold": np.array([val["gold_0"], val["gold_1"]]), "BoW proxy": proxy.pair_scores(val)}
    out["members"], first = {}, None
    for i in members:
        cfg = rms.member(i, 0.0, 0)
        model = rms.build_model(cfg)
        started = time.perf_counter()
        train_reward_model(model, train, cfg, desc=f"RM {i}")
        rewards[f"RM {i}"] = pair_rewards(model, pl, val)
        scores = score_texts(model, pl.tokenizer, prompts, samples, pl.profile.model.max_length).reshape(-1, k)
        rm_id = accuracy(rewards[f"RM {i}"], val["choice"])
        out["members"][i] = {
            "recipe": {"lr": cfg.lr, "init_checkpoint": cfg.init_checkpoint, "dropout": cfg.dropout},
            "ID": round(rm_id, 4), "gap to proxy": round(rm_id - proxy_id, 4),
            "OOD": round(accuracy(pair_rewards(model, pl, ood), ood["choice"]), 4),
            "ρ(RM, gold)": round(float(np.nanmean(within_prompt_pearson(scores, pool["gold"]))), 3),
            "best-of-N": bon_curve(scores, pool["gold"]),
            "train seconds": round(time.perf_counter() - started, 1)}
        first = first or model
    weights = term_weights(rewards, val)
    out["term weights"] = weights.round(3).to_dict(orient="index")

    if ood_temperatures and first is not None:
        ood_posts = pl.world.comparisons["test_ood"]
        rows = ood_posts.select(range(min(300, len(ood_posts))))
        policy, out["ood by temperature"] = pl.load("sft"), {}
        for t in ood_temperatures:
            sampling = SamplingConfig(temperature=t, batch_size=pl.profile.sampling.batch_size,
                                      max_new_tokens=pl.profile.sampling.max_new_tokens, seed=777)
            summaries, _ = sample_summaries(policy, pl.tokenizer, D.prompts_of(rows), pl.profile.pairs.k,
                                            sampling, desc=f"OOD T={t:g}")
            ds = D.policy_comparisons(rows, summaries, pl.profile.world, policy=f"sft T={t:g}", seed=[0, 2])
            rm_acc = accuracy(pair_rewards(first, pl, ds), ds["choice"])
            out["ood by temperature"][t] = {"pairs": len(ds), "proxy": round(float(proxy.correct(ds).mean()), 4),
                                            f"RM {members[0]}": round(rm_acc, 4)}
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a config override")
    parser.add_argument("--members", default="0,3,5", help="clean pool-0 members to train, e.g. 0,3,5")
    parser.add_argument("--pool", default="64x64", help="best-of-N pool: posts x samples, e.g. 64x256")
    parser.add_argument("--ood-temperatures", default="", help="re-sample OOD pairs at these, e.g. 1.0,0.7")
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = parser.parse_args(argv)
    try:
        members = [int(m) for m in args.members.split(",")]
        pool_shape = tuple(int(x) for x in args.pool.lower().split("x"))
        temps = [float(t) for t in args.ood_temperatures.split(",") if t]
    except ValueError:
        parser.error("--members takes integers (0,3,5), --pool posts x samples (64x256), "
                     "--ood-temperatures numbers (1.0,0.7)")
    if len(pool_shape) != 2 or min(pool_shape) < 1:
        parser.error(f"--pool takes posts x samples, e.g. 64x256; got {args.pool!r}")
    torch.manual_seed(0)
    report = probe(args.profile, parse_set(args.set), members, pool_shape, temps)
    print(json.dumps({k: v for k, v in report.items() if k != "term weights"}, indent=1, default=str,
                     ensure_ascii=False))
    print(pd.DataFrame(report["term weights"]).T.to_string())
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=1, default=str, ensure_ascii=False))
    return report


if __name__ == "__main__":
    main()
