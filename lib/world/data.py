"""Datasets: the synthetic world and the real TL;DR data, in one schema.

Comparisons (preference pairs) follow the TL;DR comparisons of Stiennon et al.
(`openai/summarize_from_feedback`, config `comparisons`), flattened to one row per pair:

    post_id, subreddit, title, post, summary_0, summary_1, policy_0, policy_1,
    choice (index of the preferred summary), gold_0, gold_1 (NaN for real data),
    flipped (the training label was corrupted)

SFT rows follow the TL;DR SFT data (Stiennon et al.'s filtered Reddit TL;DR):
`post_id, subreddit, title, post, summary`. Prompts are formatted as in TL;DR:
``SUBREDDIT: r/...\\nTITLE: ...\\nPOST: ...\\nTL;DR:``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from datasets import Dataset, DatasetDict, Features, Value, load_dataset, load_from_disk

from lib.config import WorldConfig
from lib.models.models import EOS
from lib.world import world as W

PAIR_FEATURES = Features({
    "post_id": Value("string"), "subreddit": Value("string"), "title": Value("string"),
    "post": Value("string"), "summary_0": Value("string"), "summary_1": Value("string"),
    "policy_0": Value("string"), "policy_1": Value("string"), "choice": Value("int64"),
    "gold_0": Value("float64"), "gold_1": Value("float64"), "flipped": Value("bool"),
})
SFT_FEATURES = Features({
    "post_id": Value("string"), "subreddit": Value("string"), "title": Value("string"),
    "post": Value("string"), "summary": Value("string"),
})
COMPARISON_SPLITS = ("train", "validation", "test_ood")
SFT_SPLITS = ("train", "validation")


class SchemaError(ValueError):
    """A dataset does not have the columns or types this repository expects."""


def check_schema(ds: Dataset, features: Features, what: str) -> None:
    """Raise `SchemaError` naming missing columns or wrong types."""
    missing = [c for c in features if c not in ds.column_names]
    if missing:
        raise SchemaError(f"{what}: missing columns {missing}; expected {list(features)}, "
                          f"got {ds.column_names}")
    wrong = [c for c in features if ds.features[c] != features[c]]
    if wrong:
        raise SchemaError(f"{what}: wrong types for {[(c, str(ds.features[c])) for c in wrong]}; "
                          f"expected {[(c, str(features[c])) for c in wrong]}")


def format_prompt(subreddit: str, title: str, post: str) -> str:
    """The TL;DR prompt; the policy continues it with ' <summary>'."""
    return f"SUBREDDIT: r/{subreddit}\nTITLE: {title}\nPOST: {post}\nTL;DR:"


def prompts_of(ds: Dataset) -> list[str]:
    return [format_prompt(s, t, p) for s, t, p in zip(ds["subreddit"], ds["title"], ds["post"])]


# --------------------------------------------------------------------------------------------
# The synthetic world
# --------------------------------------------------------------------------------------------

@dataclass
class WorldData:
    """Everything the synthetic world provides, as `datasets` objects."""

    pretrain: Dataset  # column `text`: documents of the world's "web"
    sft: DatasetDict  # train / validation in SFT schema
    comparisons: DatasetDict  # train / validation / test_ood in pair schema

    def save(self, path: Path) -> None:
        DatasetDict({"pretrain": self.pretrain}).save_to_disk(str(path / "pretrain"))
        self.sft.save_to_disk(str(path / "sft"))
        self.comparisons.save_to_disk(str(path / "comparisons"))

    @classmethod
    def load(cls, path: Path) -> WorldData:
        return cls(load_from_disk(str(path / "pretrain"))["pretrain"],
                   load_from_disk(str(path / "sft")), load_from_disk(str(path / "comparisons")))


def _sft_rows(posts: list[W.Post], rng: np.random.Generator) -> dict[str, list]:
    return {"post_id": [p.post_id for p in posts], "subreddit": [p.subreddit for p in posts],
            "title": [p.title for p in posts], "post": [p.text for p in posts],
            "summary": [W.write_summary(rng, p, W.REFERENCE) for p in posts]}


def build_world(cfg: WorldConfig) -> WorldData:
    """Generate the synthetic world of `cfg`; the same config always gives the same data."""
    seeds = np.random.SeedSequence(cfg.seed).spawn(9)  # the first 8 as before: the 9th draws replies
    rng = [np.random.default_rng(s) for s in seeds]
    all_topics = tuple(W.TOPICS)
    labels = W.LabelModel(cfg.label_temperature, cfg.label_length_bias)

    # Pre-training text: posts of every topic, a `pretrain_tldr_fraction` of them followed by a
    # TL;DR from a random writer, and a `pretrain_reply_fraction` of those by a reader's reply after
    # the summary's end-of-text token (a stream of its own: without replies the text is unchanged).
    pre = W.make_posts(int(rng[0].integers(2**31)), cfg.n_pretrain_posts, all_topics, "web")
    docs = []
    for p in pre:
        doc = format_prompt(p.subreddit, p.title, p.text)
        if rng[1].random() < cfg.pretrain_tldr_fraction:
            writer = W.WRITERS_ID[int(rng[1].integers(len(W.WRITERS_ID)))]
            summary = W.write_summary(rng[1], p, writer)
            doc += " " + summary
            if cfg.pretrain_reply_fraction and rng[8].random() < cfg.pretrain_reply_fraction:
                doc += EOS + " " + W.reader_reply(rng[8], p, summary, cfg.pretrain_reply_generic)
        else:
            doc = doc[: -len("\nTL;DR:")]
        docs.append(doc)
    pretrain = Dataset.from_dict({"text": docs})

    sft_train = W.make_posts(int(rng[2].integers(2**31)), cfg.n_sft_train, all_topics, "sft")
    sft_val = W.make_posts(int(rng[3].integers(2**31)), cfg.n_sft_validation, W.ID_TOPICS, "sftval")
    sft = DatasetDict({
        "train": Dataset.from_dict(_sft_rows(sft_train, rng[4]), features=SFT_FEATURES),
        "validation": Dataset.from_dict(_sft_rows(sft_val, rng[4]), features=SFT_FEATURES),
    })

    def pairs(n: int, topics: tuple[str, ...], writers: tuple[W.Writer, ...], prefix: str,
              r: np.random.Generator) -> Dataset:
        posts = W.make_posts(int(r.integers(2**31)), n, topics, prefix)
        return Dataset.from_dict(W.make_comparisons(r, posts, writers, labels),
                                 features=PAIR_FEATURES)

    comparisons = DatasetDict({
        "train": pairs(cfg.n_pref_train, W.ID_TOPICS, W.WRITERS_ID, "train", rng[5]),
        "validation": pairs(cfg.n_pref_validation, W.ID_TOPICS, W.WRITERS_ID, "val", rng[6]),
        "test_ood": pairs(cfg.n_pref_ood, W.OOD_TOPICS, W.WRITERS_OOD, "ood", rng[7]),
    })
    return WorldData(pretrain, sft, comparisons)


def policy_comparisons(posts: Dataset, samples: list[list[str]], cfg: WorldConfig,
                       policy: str, seed: int | list[int]) -> Dataset:
    """Comparisons of a policy's own samples (WARM §4, Gao et al., Coste et al.): every pair of
    distinct samples of each post of `posts` (rows in pair schema: one per post), labelled by the
    world's annotators on the exact gold reward, `policy` naming the sampler."""
    labels = W.LabelModel(cfg.label_temperature, cfg.label_length_bias)
    rng = np.random.default_rng(seed)
    rows = W.ComparisonRows()
    for row, summaries in zip(posts, samples):
        post = W.parse_post(row["post"])
        post = W.Post(row["post_id"], post.topic, row["title"], post.text, post.key_person,
                      post.key_event, post.facts)
        W.compare_samples(rng, post, summaries, labels, policy, rows)
    return Dataset.from_dict(rows.columns, features=PAIR_FEATURES)


def with_corrupted_labels(ds: Dataset, fraction: float, seed: int) -> Dataset:
    """`ds` with exactly round(fraction·n) labels flipped; `flipped` marks them (WARM §4.2)."""
    choice, flipped = W.corrupt_labels(ds["choice"], fraction, seed)
    ds = ds.remove_columns(["choice", "flipped"])
    ds = ds.add_column("choice", choice).add_column("flipped", flipped)
    return ds.cast(PAIR_FEATURES)


def pair_table(ds: Dataset) -> dict[str, float]:
    """What a comparison split looks like: pairs, prompts, mean summary length, how often the
    longer summary is preferred, and (synthetic data) how often the label disagrees with gold."""
    w0 = np.array([W.n_words(s) for s in ds["summary_0"]])
    w1 = np.array([W.n_words(s) for s in ds["summary_1"]])
    c, longer = np.asarray(ds["choice"]), w1 != w0
    out = {"pairs": len(ds), "prompts": len(set(ds["post_id"])),
           "mean words": float(np.concatenate([w0, w1]).mean()),
           "longer preferred": float(np.mean((c == 1)[longer] == (w1 > w0)[longer]))}
    if not np.isnan(np.asarray(ds["gold_0"], dtype=float)).any():
        out["label/gold disagreement"] = label_gold_disagreement(ds)
    return out


def label_probabilities(ds: Dataset, cfg: WorldConfig) -> np.ndarray:
    """Per pair of the synthetic world, the probability that its annotators prefer summary_1
    (`lib.world.world.preference_probability` on the recorded gold rewards and the word counts): what
    the sampled `choice` is one draw of. Its rounding is the annotators' Bayes choice."""
    g0, g1 = np.asarray(ds["gold_0"], dtype=float), np.asarray(ds["gold_1"], dtype=float)
    if np.isnan(g0).any() or np.isnan(g1).any():
        raise ValueError("label probabilities need gold rewards (the synthetic world); these pairs have none")
    labels = W.LabelModel(cfg.label_temperature, cfg.label_length_bias)
    return np.array([W.preference_probability(a, b, W.n_words(s0), W.n_words(s1), labels)
                     for a, b, s0, s1 in zip(g0, g1, ds["summary_0"], ds["summary_1"])])


def label_gold_disagreement(ds: Dataset) -> float:
    """Fraction of labels that disagree with the gold ranking, over pairs without a gold tie."""
    g0, g1, c = (np.asarray(ds[k]) for k in ("gold_0", "gold_1", "choice"))
    untied = g0 != g1
    return float(np.mean((c[untied] == 1) != (g1[untied] > g0[untied])))


# --------------------------------------------------------------------------------------------
# The real TL;DR data (gpu profile): loaded with `datasets`, mapped to the same schema
# --------------------------------------------------------------------------------------------

TLDR_COMPARISONS = "openai/summarize_from_feedback"
TLDR_SFT = "vwxyzjn/summarize_from_feedback_tldr_3_filtered"


def _hub_error(hub_name: str, path: str | Path | None, key: str, err: Exception) -> RuntimeError:
    """What to download and where to put it, when `path` (or the hub, if None) fails."""
    local = f"data/{hub_name.split('/')[-1]}"
    tried = f"{str(path)!r}" if path is not None else f"{hub_name!r} from the Hugging Face hub"
    return RuntimeError(
        f"could not load {tried} ({type(err).__name__}: {err}). Offline, download the dataset on a "
        f"machine with hub access (`hf download {hub_name} --repo-type dataset --local-dir "
        f"{local}`), copy it here and pass the directory: `path` of the loader, or "
        f"overrides={{'{key}': '{local}'}} for a profile.")


def comparisons_from_tldr(raw: Dataset) -> Dataset:
    """Map rows of the real TL;DR comparisons schema (`info`, `summaries`, `choice`, ...) to ours."""
    need = {"info", "summaries", "choice"}
    if not need <= set(raw.column_names):
        raise SchemaError(f"TL;DR comparisons: missing columns {sorted(need - set(raw.column_names))};"
                          f" got {raw.column_names}")

    def to_pair(row: dict) -> dict:
        info, (s0, s1) = row["info"], row["summaries"]
        return {"post_id": info["id"], "subreddit": info.get("subreddit") or "",
                "title": info.get("title") or "", "post": info.get("post") or info.get("article")
                or "", "summary_0": s0["text"].strip(), "summary_1": s1["text"].strip(),
                "policy_0": s0.get("policy", ""), "policy_1": s1.get("policy", ""),
                "choice": int(row["choice"]), "gold_0": math.nan, "gold_1": math.nan,
                "flipped": False}

    return raw.map(to_pair, remove_columns=raw.column_names, features=PAIR_FEATURES)


def load_tldr_comparisons(path: str | Path | None = None) -> DatasetDict:
    """Real TL;DR comparisons as train / validation / test_ood.

    `path`: a directory or JSON files in the original release format, or None for the hub.
    The paper's D_ood is not public; `test_ood` here is the CNN/DM (`article`) part of the
    validation comparisons, a shift of domain as in Stiennon et al.
    """
    try:
        if path is None:
            raw = load_dataset(TLDR_COMPARISONS, "comparisons")
        else:
            p = Path(path)
            files = sorted(map(str, p.rglob("*.json*"))) if p.is_dir() else [str(p)]
            if not files:
                raise FileNotFoundError(f"no JSON files under {p}")
            raw = load_dataset("json", data_files={"validation": files})
            raw = DatasetDict({"train": raw["validation"].filter(lambda r: r["split"] == "train"),
                               "validation": raw["validation"].filter(lambda r: r["split"] != "train")})
    except (FileNotFoundError, ConnectionError, OSError) as err:
        raise _hub_error(TLDR_COMPARISONS, path, "tldr.comparisons_path", err) from None
    val = comparisons_from_tldr(raw["validation"])
    is_news = [not s for s in val["subreddit"]]
    return DatasetDict({
        "train": comparisons_from_tldr(raw["train"]),
        "validation": val.select([i for i, n in enumerate(is_news) if not n]),
        "test_ood": val.select([i for i, n in enumerate(is_news) if n]),
    })


def load_tldr_sft(path: str | Path | None = None) -> DatasetDict:
    """Real TL;DR SFT data (`id, subreddit, title, post, summary`) as train / validation."""
    try:
        raw = load_dataset(TLDR_SFT) if path is None else load_dataset(
            "json", data_files={s: str(Path(path) / f"{s}.jsonl") for s in SFT_SPLITS})
    except (FileNotFoundError, ConnectionError, OSError) as err:
        raise _hub_error(TLDR_SFT, path, "tldr.sft_path", err) from None
    out = {}
    for split in SFT_SPLITS:
        ds = raw[split]
        if "id" in ds.column_names:
            ds = ds.rename_column("id", "post_id")
        ds = ds.map(lambda r: {"summary": r["summary"].strip()})
        check_schema(ds, SFT_FEATURES, f"TL;DR SFT split {split!r}")
        out[split] = ds.select_columns(list(SFT_FEATURES))
    return DatasetDict(out)
