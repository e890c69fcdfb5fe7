"""How well do single RMs read on a substrate, and do WARM's premises hold on it? The probe behind
the RM-substrate tables of docs/reward-models.md and the rows of docs/substrate.md.

    python -m benchmarks.substrate_probe [--profile default] [--set KEY=VALUE ...]
        [--members 0,3,5] [--pool 64x256] [--ood-temperatures 1.0,0.7] [--json PATH]
    python -m benchmarks.substrate_probe --premises [--profile default] [--set KEY=VALUE ...]
        [--jobs 2] [--json PATH]

With `--premises` it measures WARM's premises and the single-RM regime on pool 0 (`premises`,
below): its RMs and the random-init control are cached stages of the profile, so a later run of
the notebooks reuses them. Without it:

Under the overrides (e.g. `--set world.pretrain_tldr_fraction=1.0 --set pretrain.steps=900`) it
builds, or reads from the profile's cache, the SFT policy and its on-policy pairs, then reports:

- the pairs: how often the label agrees with gold, made-up facts per summary;
- the bag-of-words proxy of notebook 00, refit on the training labels: ID and OOD accuracy, and
  best-of-N gold on a pool of SFT samples (`--pool` posts × samples);
- each clean member of pool 0 named by `--members`, trained here with its pool recipe (not
  cached, no held-out curve): ID and OOD accuracy, the gap to the proxy, what it weighs in the
  gold reward's terms (`lib.report.analysis.term_weights`), ρ(RM, gold) and best-of-N on the same pool;
- with `--ood-temperatures`, the proxy and the first member on OOD pairs re-sampled at each
  temperature from the first 300 OOD posts (held-out topics).

Synthetic world only (it needs the gold reward's terms). Development measurements: nothing is
written to results/, and one RM per member stands for its pool.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import lib.world.data as D
from lib import plans
from lib.config import PREPARE_THREADS, ROOT, RUN_THREADS, SamplingConfig
from lib.fanout import rm_jobs
from lib.measure.evaluate import best_of_n, label_ceiling, within_prompt_pearson
from lib.measure.stats import bootstrap
from lib.merge import weight_average
from lib.models.sampling import sample_summaries
from lib.pipeline import Pipeline
from lib.profiles import get_profile, parse_set
from lib.report.analysis import member_diagnostics, term_weights
from lib.rm.control import ControlRM
from lib.rm.pool import RewardModels
from lib.rm.rm import PairSet, accuracy, score_pairs, score_texts, train_reward_model
from lib.rm.scoring import correct
from lib.threads import torch_threads
from lib.world import world as W
from lib.world.proxy import BagOfWordsProxy

NS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def pair_rewards(model, pl: Pipeline, ds) -> np.ndarray:
    """Rewards (2, pairs) of a trained RM on a comparison dataset."""
    return score_pairs(model, PairSet(pl.tokenizer, ds, pl.profile.model.max_length))


def bon_curve(scores: np.ndarray, gold: np.ndarray) -> dict[int, float]:
    return {n: round(float(best_of_n(scores, gold, n).mean()), 3) for n in NS if n <= gold.shape[1]}


def probe(profile: str, overrides: dict, members: list[int], pool_shape: tuple[int, int],
          ood_temperatures: list[float]) -> dict:
    pl = Pipeline(profile, overrides, gold_rm=ControlRM)
    if pl.profile.world.source != "synthetic" or pl.profile.pairs.source != "policy":
        raise ValueError("the substrate probe needs the synthetic world and on-policy pairs "
                         "(world.source = synthetic, pairs.source = policy)")
    m = pl.profile.rm.m
    if not members or any(not 0 <= i < m for i in members):
        raise ValueError(f"members {members}: pool 0 has members 0–{m - 1} (rm.m = {m})")
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
    train = rms.pairs.pairset("train-0.0")
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


LAMBDAS = (0.0, 0.25, 0.5, 0.75, 1.0)
PREMISE_FIELDS = ("profile", "overrides", "machine speed", "seconds", "prepare", "plan", "pairs", "accuracy",
                  "ceiling", "premises", "lmc", "diagnostics", "single RM")


def machine_speed(pl: Pipeline, repeats: int = 5) -> float:
    """This machine's speed now, in GFLOP/s: the best of `repeats` runs of the profile model's
    forward + backward micro-benchmark (`benchmarks.efficiency.peak`), taken before any stage, on
    the probe's threads. Stage times measured on two machines compare as time × speed (work)."""
    from benchmarks.efficiency import peak

    with torch_threads(PREPARE_THREADS):
        return round(max(peak(pl) for _ in range(repeats)), 1)


def _build_one(profile: str, overrides: dict, job: int) -> float:
    """Build pool 0's clean member `job` (trained and scored), or with -1 its random-init control,
    in this process; returns seconds."""
    rms = RewardModels(Pipeline(profile, overrides, gold_rm=ControlRM))
    started = time.perf_counter()
    with torch_threads(RUN_THREADS):
        if job < 0:
            rms.artifact(plans.premise_controls(rms)[0])
        else:
            rms.build(rms.member(job, 0.0, 0))
    return time.perf_counter() - started


def _points(a, b, clusters) -> list[float]:
    """a − b in accuracy points, with its 95% paired bootstrap interval over prompts."""
    est = bootstrap(np.asarray(a, float) - np.asarray(b, float), clusters=clusters)
    return [round(100 * est.value, 2), round(100 * est.ci[0], 2), round(100 * est.ci[1], 2)]


def premises(profile: str, overrides: dict, jobs: int = 2, pool_shape: tuple[int, int] = (64, 64)) -> dict:
    """WARM's premises on pool 0 of `profile` under `overrides`, beside the single-RM regime: the
    numbers the premise claims of notebook 02 and the substrate search read (docs/substrate.md)."""
    started = time.perf_counter()
    pl = Pipeline(profile, overrides, gold_rm=ControlRM)
    if pl.profile.world.source != "synthetic" or pl.profile.pairs.source != "policy":
        raise ValueError("the premise probe needs the synthetic world and on-policy pairs")
    prepare = {"key": pl.cache.key("comparisons", pl.comparisons_key),  # what the prepare wave builds
               "cached": pl.cache.load("comparisons", pl.comparisons_key) is not None}  # then its time is no measure
    _ = pl.tokenizer  # the world and its tokenizer, a stage of prepare, which the micro-benchmark's model needs
    timed = time.perf_counter()
    speed = machine_speed(pl)
    started += time.perf_counter() - timed  # the micro-benchmark is no stage: out of every stage time
    rms = RewardModels(pl)  # its pool reads the pairs: what follows builds them
    members, control = rms.pool(0.0, 0), plans.premise_controls(rms)[0]
    with torch_threads(PREPARE_THREADS):
        comps = pl.comparisons  # world, tokenizer, pre-training, SFT, pairs
        for cfg in [*members, control]:
            rms.build_model(cfg)  # the probed heads
    seconds = {"prepare": round(time.perf_counter() - started, 1)}
    n_train = len(rms.pairs.train_pairs(0.0))
    n_rm_stages = len(rm_jobs(pl))  # the whole run's RM stages, which the probe's times project to
    todo = [*range(len(members)), -1]
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as ex:
        built = list(ex.map(_build_one, [profile] * len(todo), [overrides] * len(todo), todo))
    seconds |= {("control" if j < 0 else f"RM {j}"): round(t, 1) for j, t in zip(todo, built)}

    sets = rms.pairs.eval_sets(0.0, 0)
    idv, ood = sets["ID val"], sets["OOD"]
    states = [rms.state(cfg) for cfg in members]
    models = {"probe, frozen SFT features": rms.initial_state(members[0]),
              "probe, frozen random features": rms.initial_state(control),
              "random-init RM (member 0's recipe)": rms.state(control),
              **{f"RM {i}": st for i, st in enumerate(states)}, f"WA M={len(states)}": weight_average(states)}
    hits: dict = {}
    for es in (idv, ood):
        scores = {name: rms.scorer.scores(st, es) for name, st in models.items()}
        scores[f"ENS M={len(states)}"] = np.mean([scores[f"RM {i}"] for i in range(len(states))], axis=0)
        hits[es.name] = {name: {k: correct(sc, es, k) for k in ("label", "expected")}
                         for name, sc in scores.items()}
    accuracy = {split: {name: {k: round(float(v.mean()), 4) for k, v in c.items()} for name, c in by.items()}
                for split, by in hits.items()}
    best = int(np.argmax([hits["ID val"][f"RM {i}"]["label"].mean() for i in range(len(states))]))
    m = len(states)
    prem = {"best member on ID val": best}
    for es in (idv, ood):
        c = hits[es.name]
        for k in ("label", "expected"):
            for name, (a, b) in {"SFT init − random init (member 0)": ("RM 0", "random-init RM (member 0's recipe)"),
                                 "probe SFT − probe random": ("probe, frozen SFT features",
                                                              "probe, frozen random features"),
                                 f"ENS M={m} − best member": (f"ENS M={m}", f"RM {best}"),
                                 f"WA M={m} − ENS M={m}": (f"WA M={m}", f"ENS M={m}")}.items():
                prem[f"{es.name}, {k}: {name}"] = _points(c[a][k], c[b][k], es.clusters)

    curve = rms.scorer.interpolation(states[0], states[1], ood, LAMBDAS)  # the data-order pair, on OOD
    interior, half = slice(1, -1), LAMBDAS.index(0.5)
    lmc = {"λ": list(LAMBDAS), **{k: [round(float(v.mean()), 4) for v in curve[k]] for k in ("WA", "ENS", "diag")},
           "WA − ENS at λ=0.5": _points(curve["WA"][half], curve["ENS"][half], ood.clusters),
           "WA − diag, mean over interior λ": _points(curve["WA"][interior].mean(0),
                                                      curve["diag"][interior].mean(0), ood.clusters)}

    n_posts, k = pool_shape
    pool = pl.sample_pool("sft", n_posts, k)
    with torch_threads(RUN_THREADS):
        diagnostics = member_diagnostics(rms, members, ood, pool)
    posts = [p for p in pool["posts"]["post"] for _ in range(k)]
    prompts = [p for p in D.prompts_of(pool["posts"]) for _ in range(k)]
    samples = [s for row in pool["samples"] for s in row]
    proxy = BagOfWordsProxy.fit_pairs(rms.pairs.train_pairs(0.0))  # on the pairs the clean pools read
    bow = proxy.correct(comps["validation"])
    single = {"BoW proxy": {"ID": round(float(bow.mean()), 4),
                            "best-of-N": bon_curve(proxy.score(posts, samples).reshape(-1, k), pool["gold"])}}
    for i, st in enumerate(states):
        on_pool = rms.scorer.score_texts(st, prompts, samples).reshape(-1, k)
        curve_n = bon_curve(on_pool, pool["gold"])
        best_n = max((n for n in curve_n if n >= 4), key=lambda n: curve_n[n])
        single[f"RM {i}"] = {"ρ(RM, gold)": round(float(np.nanmean(within_prompt_pearson(on_pool, pool["gold"]))), 3),
                             "best-of-N gain": round(curve_n[best_n] - curve_n[1], 3), "at N": best_n,
                             "RM − BoW proxy, ID (points)": _points(hits["ID val"][f"RM {i}"]["label"], bow,
                                                                     idv.clusters)}
    seconds["total"] = round(time.perf_counter() - started, 1)
    return {"profile": profile, "overrides": overrides, "machine speed": speed, "seconds": seconds, "prepare": prepare,
            "plan": {"RM stages": n_rm_stages},
            "pairs": {"train": n_train, "ID val": len(idv), "OOD": len(ood)},
            "accuracy": accuracy,
            "ceiling": {es.name: round(label_ceiling(es.p_label), 4) for es in (idv, ood)},
            "premises": prem, "lmc": lmc,
            "diagnostics": {name: round(float(v), 4) for name, v in diagnostics.items()}, "single RM": single}


ROWS = ROOT / "docs" / "substrate-rows.jsonl"  # every recorded probe row, in order
TABLE = ("<!-- rows:start -->", "<!-- rows:end -->")  # the generated table of docs/substrate.md


def _mark(points: list[float], ok: bool) -> str:
    return f"{points[0]:+.2f} [{points[1]:+.2f}, {points[2]:+.2f}] {'✓' if ok else '✗'}"


# The committed `default` run's measured times (results/benchmarks.json) that a candidate's cost is
# projected from: the whole run, and the two waves a substrate changes.
RUN_TIMES = {"whole": "whole run wall time, fan-out + every notebook (in a run from an empty cache)",
             "prepare": "fan-out wave prepare, data, SFT, comparisons and probed heads, one process "
                        "(in a run from an empty cache)",
             "rms": "fan-out wave rms, every RM trained and scored (in a run from an empty cache)"}


def projected_minutes(row: dict, baseline: dict, benchmarks: list[dict],
                      measured_prepare: float | None = None) -> float | None:
    """The whole `default` run on `row`'s substrate, in minutes (None without that run's times):
    the committed run's measured time, with its prepare wave scaled by the row's prepare time over
    the baseline row's (the profile's own, probed on the same kind of machine) and its RM wave by
    the row's RM time, mean per member × the plan's RM stages, over the baseline's. The rest of the
    run (RL, WARP, the notebooks) is the same model doing the same work on either substrate, and is
    kept as measured. A row whose prepare wave was read from the cache takes `measured_prepare`,
    the time of a row that built the same wave (None without one). Rows that both record their
    machine's speed compare as time × speed, so a baseline probed on a faster machine projects a
    slower one's candidate fairly; a row records its speed where its baseline does not, or the
    other way round: None."""
    ours = {b["name"]: b["ours"] for b in benchmarks if b.get("profile") == baseline["profile"]}
    if any(v not in ours for v in RUN_TIMES.values()):
        return None  # no measured run of that profile to project from
    whole, prepare, rms_wave = (ours[RUN_TIMES[k]] for k in ("whole", "prepare", "rms"))

    def per_rm(r: dict) -> float:
        times = [v for k, v in r["seconds"].items() if k.startswith("RM ")]
        return sum(times) / len(times)

    counts = [r.get("plan", {}).get("RM stages") for r in (row, baseline)]
    stages = counts[0] / counts[1] if None not in counts else 1.0  # rows from before the count: the same plan
    prepare_s = measured_prepare if row.get("prepare", {}).get("cached") else row["seconds"]["prepare"]
    if prepare_s is None:
        return None  # the wave was cached and no row measured it
    speeds = [r.get("machine speed") for r in (row, baseline)]
    if (speeds[0] is None) != (speeds[1] is None):
        return None  # one speed unknown: their times do not compare
    machines = speeds[0] / speeds[1] if speeds[0] is not None else 1.0  # this row's machine over the baseline's
    scale_prepare = prepare_s / baseline["seconds"]["prepare"] * machines
    scale_rms = per_rm(row) / per_rm(baseline) * stages * machines
    return (whole + prepare * (scale_prepare - 1) + rms_wave * (scale_rms - 1)) / 60


def criteria(row: dict, baseline: dict | None = None, benchmarks: list[dict] | None = None,
             measured_prepare: float | None = None) -> dict[str, str]:
    """The substrate search's pass/fail numbers of one probe row, each ✓ or ✗ on its point estimate
    (points, 95% interval): WARM's premises, the single-RM regime, the featurizer guide, the probe's
    cost and, given the baseline row and the committed run's times, the projected whole run
    (`measured_prepare`: as in `projected_minutes`)."""
    prem, lmc, single = row["premises"], row["lmc"], row["single RM"]
    m = sum(name.startswith("RM ") for name in single)
    rms_ = [v for name, v in single.items() if name.startswith("RM ")]
    pre = prem["ID val, label: SFT init − random init (member 0)"]
    half, interior = lmc["WA − ENS at λ=0.5"], lmc["WA − diag, mean over interior λ"]
    wa_ens, ens_best = prem[f"OOD, label: WA M={m} − ENS M={m}"], prem[f"OOD, label: ENS M={m} − best member"]
    rho, gain = min(r["ρ(RM, gold)"] for r in rms_), max(r["best-of-N gain"] for r in rms_)
    worst = min((r["RM − BoW proxy, ID (points)"] for r in rms_), key=lambda v: v[0])
    guide = prem["ID val, label: probe SFT − probe random"]
    return {"pre-training, ID (≥ 3)": _mark(pre, pre[0] >= 3),
            "WA − ENS at λ=0.5, OOD (±0.5)": _mark(half, abs(half[0]) <= 0.5),
            "WA − diagonal, interior λ (≥ 0)": _mark(interior, interior[0] >= 0),
            f"WA M={m} − ENS M={m}, OOD (≥ −1)": _mark(wa_ens, wa_ens[0] >= -1),
            f"ENS M={m} − best member, OOD (> 0)": _mark(ens_best, ens_best[0] > 0),
            "min ρ(RM, gold) (≥ 0.3)": f"{rho:.2f} {'✓' if rho >= 0.3 else '✗'}",
            "best-of-N gain (≥ 0.5)": f"{gain:+.2f} {'✓' if gain >= 0.5 else '✗'}",
            "worst RM − proxy, ID (≥ −2)": _mark(worst, worst[0] >= -2),
            "guide: probe SFT − random, ID (≥ 3)": _mark(guide, guide[0] >= 3),
            "probe seconds": f"{row['seconds']['total']:.0f}",
            "projected run, min (≤ 90)": "—" if baseline is None or benchmarks is None else (
                lambda t: "—" if t is None else f"{t:.0f} {'✓' if t <= 90 else '✗'}")(
                projected_minutes(row, baseline, benchmarks, measured_prepare))}


def _commit() -> str:
    import subprocess

    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def record(row: dict, label: str, rows: Path = ROWS, doc: Path | None = None, commit: str | None = None) -> None:
    """Append a probe row, named `label` and stamped with the commit it ran on (by default the
    checkout's, marked where its code differs from it), to `rows`, and rewrite the table of `doc`
    (docs/substrate.md) from every row."""
    import subprocess

    changed = ["git", "status", "--porcelain", "--untracked-files=no", "lib", "benchmarks"]
    if commit is None and subprocess.run(changed, cwd=ROOT, capture_output=True, text=True).stdout.strip():
        commit = _commit() + "+changes"  # the code differed from the commit: say so
    commit = commit or _commit()
    machine = f"{torch.backends.cpu.get_cpu_capability()} CPU" if not torch.cuda.is_available() else \
        torch.cuda.get_device_name(0)
    with open(rows, "a") as f:
        f.write(json.dumps({"label": label, "commit": commit, "machine": machine, **row}, ensure_ascii=False) + "\n")
    render(rows, doc)


def render(rows: Path = ROWS, doc: Path | None = None) -> None:
    """Rewrite the table of `doc` (by default docs/substrate.md beside `rows`) from every row of `rows`."""
    doc = doc or rows.with_name("substrate.md")
    recorded = [json.loads(line) for line in rows.read_text().splitlines() if line.strip()]
    bench = ROOT / "results" / "benchmarks.json"
    benchmarks = json.loads(bench.read_text()) if bench.exists() else None

    def baseline(r: dict) -> dict | None:  # the last row of the candidate's profile as it is, speeds alike
        own = [b for b in recorded if b["profile"] == r["profile"] and not b["overrides"]
               and ("machine speed" in b) == ("machine speed" in r)]
        return own[-1] if own else None

    built = {}  # (prepare wave, speed recorded?) → the first such row that measured it (a cached one did not)
    for r in recorded:
        if "prepare" in r and not r["prepare"]["cached"]:
            built.setdefault((r["prepare"]["key"], "machine speed" in r), r)

    def measured_prepare(r: dict) -> float | None:  # that row's prepare time, on r's machine
        by = built.get((r.get("prepare", {}).get("key"), "machine speed" in r))
        if by is None:
            return None
        return by["seconds"]["prepare"] * (by["machine speed"] / r["machine speed"] if "machine speed" in r else 1.0)

    table = [{"candidate": r["label"], "profile and overrides": ", ".join(
        [f"`{r['profile']}`", *(f"`{k}={v}`" for k, v in r["overrides"].items())]),
        **criteria(r, baseline(r), benchmarks, measured_prepare(r)),
        "machine": r.get("machine", ""), "commit": r["commit"]} for r in recorded]
    lines = ["| " + " | ".join(table[0]) + " |", "|" + "---|" * len(table[0])]
    lines += ["| " + " | ".join(str(v) for v in t.values()) + " |" for t in table]
    text = doc.read_text()
    head, rest = text.split(TABLE[0], 1)
    doc.write_text(head + TABLE[0] + "\n" + "\n".join(lines) + "\n" + TABLE[1] + rest.split(TABLE[1], 1)[1])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--preset", metavar="NAME", help="a named set of overrides (lib.profiles.PRESETS), "
                        "applied before --set")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a config override")
    parser.add_argument("--members", default="0,3,5", help="clean pool-0 members to train, e.g. 0,3,5")
    parser.add_argument("--pool", default="64x64", help="best-of-N pool: posts x samples, e.g. 64x256")
    parser.add_argument("--ood-temperatures", default="", help="re-sample OOD pairs at these, e.g. 1.0,0.7")
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    parser.add_argument("--premises", action="store_true",
                        help="WARM's premises and the single-RM regime on pool 0 (docs/substrate.md)")
    parser.add_argument("--jobs", type=int, default=2, help="with --premises: processes that train the RMs")
    parser.add_argument("--record", metavar="LABEL", help="with --premises: add the row, named LABEL, to "
                        "docs/substrate-rows.jsonl and the table of docs/substrate.md")
    args = parser.parse_args(argv)
    if args.premises:
        commit = _commit()  # the code the probe runs on
        try:
            overrides = {**({"preset": args.preset} if args.preset else {}), **parse_set(args.set)}
            get_profile(args.profile, overrides)
            if args.jobs < 1:
                raise ValueError(f"--jobs must be ≥ 1, got {args.jobs}")
        except ValueError as err:
            parser.exit(2, f"substrate_probe: error: {err}\n")  # one line, as run_all.sh's
        torch.manual_seed(0)
        report = premises(args.profile, overrides, args.jobs)
        text = json.dumps(report, ensure_ascii=False)
        print(text)
        if args.json is not None:
            args.json.write_text(text + "\n")
        if args.record:
            record(report, args.record, commit=commit)
        return report
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
