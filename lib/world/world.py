"""A synthetic, TL;DR-shaped world whose gold reward is known exactly.

Posts are Reddit-like stories built from *facts* (a person, an event, a feeling, a duration, a
question); summaries are short strings of such facts. Because every fact is a phrase of a fixed
lexicon, `gold_reward(post, summary)` can parse any text, including a broken sample of a policy,
and score it exactly. This follows Gao et al. (2023) and Coste et al. (2024): a gold reward labels
preferences, proxy reward models learn from the labels, and over-optimization is *measured*.

The gold reward (all weights in `GoldWeights`):

    gold = 2.0·[key event] + 0.5·[key person] + 0.5·min(#other post facts, 3)   (coverage)
         − 1.0·#facts not in the post                                          (hallucination)
         − 0.75·#repeated facts − 0.25·#repeated word trigrams                 (repetition)
         − 0.25·max(0, #words − 14)                                            (length budget)
         + 0.5·[ends with '.' or '?'] − 0.15·#words outside the lexicon        (fluency)

Preference labels are sampled from Bradley–Terry on the gold margin, plus an annotator verbosity
bias (the spurious feature): P(y1 ≻ y0) = σ((g1 − g0)/τ + γ·(len1 − len0)). The comparison
summaries come from a pool of procedural "writers" of varying care, like the many policies behind
the TL;DR comparisons; the OOD split uses held-out topics and a shifted, higher-temperature writer.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

VERSION = 1  # bump when the generator or the gold reward changes: it keys the cached world

# --------------------------------------------------------------------------------------------
# Lexicon. Each topic has its own people and events; feelings, durations, questions are shared.
# --------------------------------------------------------------------------------------------

TOPICS: dict[str, dict[str, list[str]]] = {
    "relationships": {
        "people": ["my boyfriend", "my girlfriend", "my husband", "my wife", "my fiance"],
        "events": ["forgot my birthday", "lied about his past", "stopped texting me",
                   "went through my phone", "cancelled our trip", "wants a break",
                   "met my parents", "moved in with me"],
    },
    "work": {
        "people": ["my boss", "my coworker", "my manager", "my new hire", "my team lead"],
        "events": ["took credit for my work", "cut my hours", "yelled at me in a meeting",
                   "offered me a promotion", "denied my raise", "ignores my emails",
                   "changed my schedule", "asked me to work weekends"],
    },
    "pets": {
        "people": ["my dog", "my cat", "my puppy", "my old dog", "my rescue cat"],
        "events": ["ate a sock", "bit my neighbor", "stopped eating", "hates my roommate",
                   "scratched the couch", "escaped the yard", "needs surgery", "barks all night"],
    },
    "money": {
        "people": ["my dad", "my mom", "my brother", "my sister", "my uncle"],
        "events": ["borrowed my savings", "maxed out my card", "owes me rent",
                   "wants a loan", "sold my car", "skipped the bills", "opened a credit card",
                   "spent the deposit"],
    },
    "school": {
        "people": ["my professor", "my advisor", "my lab partner", "my tutor", "my classmate"],
        "events": ["failed my paper", "copied my homework", "missed our exam",
                   "dropped the project", "gave me an extension", "reported me for cheating",
                   "lost my notes", "changed the deadline"],
    },
    "roommates": {
        "people": ["my roommate", "my landlord", "my neighbor", "my housemate", "my subletter"],
        "events": ["never cleans the kitchen", "eats my food", "plays loud music",
                   "raised the rent", "kept my deposit", "brings guests every night",
                   "broke the heater", "took my parking spot"],
    },
    "health": {
        "people": ["my doctor", "my therapist", "my trainer", "my dentist", "my nurse"],
        "events": ["missed my diagnosis", "changed my meds", "ignored my pain",
                   "told me to lose weight", "cancelled my surgery", "sent a huge bill",
                   "found a lump", "gave me a new diet"],
    },
    "gaming": {
        "people": ["my teammate", "my clan leader", "my little brother", "my duo partner",
                   "my guild officer"],
        "events": ["deleted my save", "sold my account", "stole my loot", "quit the raid",
                   "banned me from discord", "broke my controller", "rage quit every match",
                   "spent my gift card"],
    },
}
OOD_TOPICS = ("health", "gaming")  # never seen by the reward models' training pairs
ID_TOPICS = tuple(t for t in TOPICS if t not in OOD_TOPICS)

FEELINGS = ["i feel hurt", "i feel angry", "i feel stupid", "i feel lost", "i feel guilty",
            "i feel anxious", "i feel betrayed", "i feel relieved", "i feel stuck", "i feel sad"]
DURATIONS = [f"for {n} {unit}" for unit in ("years", "months") for n in range(2, 10)]
QUESTIONS = ["what should i do ?", "am i overreacting ?", "how do i fix this ?",
             "should i leave ?", "is this normal ?"]

# Words that may appear between facts without being "junk" (connectives, filler, punctuation).
FILLER = ["so basically", "long story short", "honestly", "and stuff", "like", "kind of",
          "to be fair", "i guess", "anyway", "you know"]
FUNCTION_WORDS = set("and but so now also too then because after while since i it this that "
                     "we he she they is was my me . ? , ;".split())
for _f in FILLER:
    FUNCTION_WORDS.update(_f.split())

SUBREDDITS = {"relationships": "relationship_advice", "work": "antiwork", "pets": "dogs",
              "money": "personalfinance", "school": "college", "roommates": "badroommates",
              "health": "askdocs", "gaming": "gaming"}

# Post furniture: intros and elaborations that carry no fact.
INTROS = ["throwaway because my friends know my account .", "so this happened last week .",
          "long time lurker , first post .", "sorry for the formatting , on mobile .",
          "i need an outside view on this .", ""]
ELABORATIONS = ["it was really bad .", "nobody said anything .", "i did not know what to say .",
                "it came out of nowhere .", "everyone saw it .", "it keeps happening ."]
ECHOES = ["i still can not believe {fact} .", "the worst part is {fact} .",
          "again , {fact} .", "to repeat , {fact} ."]


def all_fact_phrases() -> list[str]:
    """Every phrase the gold reward recognises as a fact."""
    phrases = set(FEELINGS) | set(DURATIONS) | set(QUESTIONS)
    for t in TOPICS.values():
        phrases.update(t["people"])
        phrases.update(t["events"])
    return sorted(phrases)


@lru_cache(maxsize=1)
def _fact_regex() -> re.Pattern:
    # Longest first so that "my old dog" wins over "my dog"; word boundaries avoid partial hits.
    alts = sorted(all_fact_phrases(), key=len, reverse=True)
    return re.compile(r"(?<![\w])(" + "|".join(re.escape(p) for p in alts) + r")(?![\w])")


@lru_cache(maxsize=1)
def _lexicon_words() -> frozenset[str]:
    words = set(FUNCTION_WORDS)
    for p in all_fact_phrases():
        words.update(p.split())
    return frozenset(words)


def normalize(text: str) -> str:
    """Lower-case, separate punctuation, collapse whitespace (the world's only text format)."""
    text = text.lower()
    text = re.sub(r"([.?,;!])", r" \1 ", text)
    return " ".join(text.split())


# --------------------------------------------------------------------------------------------
# Posts
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Post:
    """One post and the facts it states; `key` facts are what a good TL;DR must keep."""

    post_id: str
    topic: str
    title: str
    text: str
    key_person: str
    key_event: str
    facts: tuple[str, ...]  # every fact phrase of the post, the key ones included

    @property
    def subreddit(self) -> str:
        return SUBREDDITS[self.topic]

    @property
    def other_facts(self) -> tuple[str, ...]:
        return tuple(f for f in self.facts if f not in (self.key_person, self.key_event))


def make_post(rng: np.random.Generator, topic: str, post_id: str) -> Post:
    """Sample one Reddit-like post of `topic`: a key event, 2–4 details, filler and a question."""
    lex = TOPICS[topic]
    people = list(rng.choice(lex["people"], size=2, replace=False))
    events = list(rng.choice(lex["events"], size=2, replace=False))
    key_person, key_event = people[0], events[0]
    feeling = str(rng.choice(FEELINGS))
    duration = str(rng.choice(DURATIONS))
    question = str(rng.choice(QUESTIONS))
    key = f"{key_person} {key_event}"

    sentences = [str(rng.choice(INTROS))]
    if rng.random() < 0.7:
        sentences.append(f"we have known each other {duration} .")
    sentences.append(f"last week {key} .")
    sentences.append(str(rng.choice(ELABORATIONS)))
    has_detail = rng.random() < 0.6
    if has_detail:
        sentences.append(f"then {people[1]} {events[1]} too .")
    sentences.append(f"now {feeling} .")
    if rng.random() < 0.6:
        sentences.append(str(rng.choice(ECHOES)).format(fact=key))
    sentences.append(question)
    text = normalize(" ".join(s for s in sentences if s))

    title = normalize(str(rng.choice([f"{key_person} {key_event}", f"need advice about {key_person}",
                                      f"{key_event} ?", "i do not know what to do"])))
    facts = tuple(dict.fromkeys(m.group(1) for m in _fact_regex().finditer(text)))
    return Post(post_id, topic, title, text, key_person, key_event, facts)


def make_posts(seed: int, n: int, topics: tuple[str, ...], prefix: str) -> list[Post]:
    """`n` posts with topics drawn uniformly from `topics`; deterministic in `seed`."""
    rng = np.random.default_rng(seed)
    return [make_post(rng, str(rng.choice(topics)), f"{prefix}-{i:06d}") for i in range(n)]


# --------------------------------------------------------------------------------------------
# Gold reward
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class GoldWeights:
    key_event: float = 2.0
    key_person: float = 0.5
    other_fact: float = 0.5
    max_other_facts: int = 3
    hallucination: float = 1.0
    repeated_fact: float = 0.75
    repeated_trigram: float = 0.25
    length_budget: int = 14  # words, punctuation excluded
    over_budget: float = 0.25  # per word over the budget
    ends_cleanly: float = 0.5
    junk_word: float = 0.15


GOLD = GoldWeights()


def gold_breakdown(post: Post | str, summary: str, w: GoldWeights = GOLD) -> dict[str, float]:
    """The gold reward's terms for one summary (see the module docstring)."""
    post = as_post(post)
    text = normalize(summary)
    tokens = text.split()
    words = [t for t in tokens if t not in ".?,;!"]
    found = [m.group(1) for m in _fact_regex().finditer(text)]
    distinct = list(dict.fromkeys(found))
    post_facts = set(post.facts)

    coverage = (w.key_event * (post.key_event in distinct)
                + w.key_person * (post.key_person in distinct)
                + w.other_fact * min(w.max_other_facts,
                                     sum(f in post_facts for f in distinct
                                         if f not in (post.key_event, post.key_person))))
    hallucination = w.hallucination * sum(f not in post_facts for f in distinct)
    trigrams = [tuple(words[i:i + 3]) for i in range(len(words) - 2)]
    repetition = (w.repeated_fact * (len(found) - len(distinct))
                  + w.repeated_trigram * (len(trigrams) - len(set(trigrams))))
    length = w.over_budget * max(0, len(words) - w.length_budget)
    lexicon = _lexicon_words()
    junk = sum(t not in lexicon for t in tokens)
    fluency = w.ends_cleanly * (len(words) >= 3 and tokens[-1] in (".", "?")) - w.junk_word * junk
    total = coverage - hallucination - repetition - length + fluency
    return {"gold": total, "coverage": coverage, "hallucination": -hallucination,
            "repetition": -repetition, "length": -length, "fluency": fluency,
            "n_words": float(len(words))}


def gold_reward(post: Post | str, summary: str) -> float:
    """Exact gold reward of `summary` for `post` (a Post or its text); defined on any text."""
    return gold_breakdown(post, summary)["gold"]


def n_words(summary: str) -> int:
    return sum(t not in ".?,;!" for t in normalize(summary).split())


# --------------------------------------------------------------------------------------------
# Writers: procedural summary policies behind the comparison data and the SFT references
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Writer:
    """A summary policy with knobs for care; `name` is stored as the comparison's `policy`."""

    name: str
    p_key_person: float = 0.9
    p_key_event: float = 0.9
    mean_extra: float = 1.0  # Poisson mean of extra post facts
    p_hallucinate: float = 0.05
    p_filler: float = 0.1
    p_repeat: float = 0.02
    p_question: float = 0.2
    p_drop_word: float = 0.0  # word dropout, a crude "temperature"
    p_junk_word: float = 0.0
    topics_for_hallucination: str = "same"  # or "any"


REFERENCE = Writer("reference", 0.95, 0.95, 1.0, 0.03, 0.1, 0.0, 0.25)
WRITERS_ID = (
    Writer("careful", 0.95, 0.95, 1.2, 0.03, 0.05, 0.0, 0.2),
    Writer("terse", 0.7, 0.85, 0.3, 0.05, 0.0, 0.0, 0.05),
    Writer("verbose", 0.9, 0.9, 2.2, 0.1, 0.6, 0.08, 0.5),
    Writer("sloppy", 0.6, 0.55, 1.0, 0.35, 0.2, 0.1, 0.2, p_drop_word=0.03),
    Writer("rambling", 0.8, 0.7, 1.6, 0.2, 0.9, 0.25, 0.4),
)
WRITERS_OOD = (  # high-temperature writers: longer, more hallucinated, garbled
    Writer("hot-verbose", 0.85, 0.8, 2.5, 0.3, 0.9, 0.3, 0.5, p_drop_word=0.05,
           p_junk_word=0.05, topics_for_hallucination="any"),
    Writer("hot-sloppy", 0.55, 0.5, 1.0, 0.5, 0.3, 0.2, 0.2, p_drop_word=0.08,
           p_junk_word=0.08, topics_for_hallucination="any"),
    Writer("hot-rambling", 0.8, 0.7, 2.0, 0.4, 1.0, 0.4, 0.4, p_drop_word=0.05,
           p_junk_word=0.05, topics_for_hallucination="any"),
)
JUNK_WORDS = ["the", "a", "of", "to", "in", "with", "for", "on", "at", "from"]


def write_summary(rng: np.random.Generator, post: Post, writer: Writer) -> str:
    """One summary of `post` in the style of `writer`."""
    clauses: list[str] = []
    person = post.key_person if rng.random() < writer.p_key_person else ""
    event = post.key_event if rng.random() < writer.p_key_event else ""
    if person or event:
        clauses.append(" ".join(x for x in (person, event) if x))
    others = [f for f in post.other_facts if f not in QUESTIONS]
    n_extra = min(len(others), rng.poisson(writer.mean_extra))
    clauses += [str(f) for f in rng.choice(others, size=n_extra, replace=False)] if n_extra else []
    while rng.random() < writer.p_hallucinate:
        pool_topics = list(TOPICS) if writer.topics_for_hallucination == "any" else [post.topic]
        lex = TOPICS[str(rng.choice(pool_topics))]
        fake = str(rng.choice(lex["events"] + FEELINGS + DURATIONS))
        if fake not in post.facts:
            clauses.insert(int(rng.integers(0, len(clauses) + 1)), fake)
    if clauses and rng.random() < writer.p_repeat:
        clauses.append(str(rng.choice(clauses)))
    if rng.random() < writer.p_filler:
        clauses.insert(0, str(rng.choice(FILLER)))
    if rng.random() < writer.p_filler / 2:
        clauses.append(str(rng.choice(FILLER)))
    if not clauses:
        clauses = [str(rng.choice(FILLER))]
    words = " and ".join(clauses).split()
    words = [w for w in words if rng.random() >= writer.p_drop_word] or words[:1]
    if writer.p_junk_word:
        words = sum(([w, str(rng.choice(JUNK_WORDS))] if rng.random() < writer.p_junk_word else [w]
                     for w in words), [])
    summary = " ".join(words) + " ."
    if rng.random() < writer.p_question:
        q = [f for f in post.facts if f in QUESTIONS]
        if q:
            summary += " " + q[0]
    return normalize(summary)


REPLY_GENERIC = ["sorry this happened to you .", "that sounds rough .", "update us please .",
                 "been there , it gets better .", "talk to them .", "good luck ."]
COUNTS = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def summary_flaws(post: Post, summary: str, w: GoldWeights = GOLD) -> list[str]:
    """What a careful reader says is wrong with `summary`, a phrase per flaw the gold reward
    charges: each made-up fact, a missing key event, a missing key person, each repeated fact, a
    summary over the length budget. Words about the world's facts, never a reward or a label."""
    text = normalize(summary)
    found = [m.group(1) for m in _fact_regex().finditer(text)]
    distinct = list(dict.fromkeys(found))
    flaws = [f"where does {f} come from ?" for f in distinct if f not in post.facts]
    if post.key_event not in distinct:
        flaws.append(f"missing the point : {post.key_person} {post.key_event} .")
    if post.key_person not in distinct:
        flaws.append(f"who is it about ? {post.key_person} .")
    flaws += [f"repeats {f} ." for f in distinct if found.count(f) > 1]
    if n_words(text) > w.length_budget:
        flaws.append("too long , did not read .")
    return flaws


def reader_reply(rng: np.random.Generator, post: Post, summary: str, p_generic: float) -> str:
    """A reader's reply to a TL;DR on the web: with probability `p_generic` one about the story,
    not the summary; otherwise the count of the summary's flaws and each of them
    (`summary_flaws`): "two problems : where does my dog come from ? too long , did not read .".
    A language model that predicts the reply must tell, at the summary's end, what the summary
    makes up, misses or repeats: the features a reward head reads there."""
    if rng.random() < p_generic:
        return str(rng.choice(REPLY_GENERIC))
    flaws = summary_flaws(post, summary)
    if not flaws:
        return "no problems , good tl;dr ."
    head = f"{COUNTS[min(len(flaws), len(COUNTS) - 1)]} problem{'s' * (len(flaws) > 1)} :"
    return " ".join([head, *flaws])


# --------------------------------------------------------------------------------------------
# Preference labels
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LabelModel:
    """Bradley–Terry annotators with a verbosity bias: P(1 ≻ 0) = σ(Δgold/τ + γ·Δlength)."""

    temperature: float = 0.8
    length_bias: float = 0.15


def preference_probability(g0: float, g1: float, len0: int, len1: int,
                           labels: LabelModel) -> float:
    """P(summary 1 preferred) under the annotator model."""
    z = (g1 - g0) / labels.temperature + labels.length_bias * (len1 - len0)
    return 0.0 if z < -700 else 1.0 / (1.0 + math.exp(-z))  # exp(700+) overflows a float


@dataclass
class ComparisonRows:
    """Column store for comparisons in the repository's pair schema (see lib.world.data)."""

    columns: dict[str, list] = field(default_factory=lambda: {k: [] for k in (
        "post_id", "subreddit", "title", "post", "summary_0", "summary_1", "policy_0",
        "policy_1", "choice", "gold_0", "gold_1", "flipped")})

    def add(self, **row) -> None:
        for k, v in row.items():
            self.columns[k].append(v)


def make_comparisons(rng: np.random.Generator, posts: list[Post], writers: tuple[Writer, ...],
                     labels: LabelModel, pairs_per_post: int = 1) -> dict[str, list]:
    """Comparison pairs of two writers' summaries per post, labelled by the annotator model."""
    rows = ComparisonRows()
    for post in posts:
        for _ in range(pairs_per_post):
            w0, w1 = (writers[i] for i in rng.choice(len(writers), size=2))
            s0, s1 = write_summary(rng, post, w0), write_summary(rng, post, w1)
            g0, g1 = gold_reward(post, s0), gold_reward(post, s1)
            p1 = preference_probability(g0, g1, n_words(s0), n_words(s1), labels)
            rows.add(post_id=post.post_id, subreddit=post.subreddit, title=post.title,
                     post=post.text, summary_0=s0, summary_1=s1, policy_0=w0.name,
                     policy_1=w1.name, choice=int(rng.random() < p1), gold_0=g0, gold_1=g1,
                     flipped=False)
    return rows.columns


def compare_samples(rng: np.random.Generator, post: Post, summaries: list[str], labels: LabelModel,
                    policy: str, rows: ComparisonRows) -> None:
    """Every pair of distinct `summaries` of `post` (samples of one policy), each labelled by an
    independent draw of the annotator model, appended to `rows`."""
    distinct = list(dict.fromkeys(summaries))
    gold = [gold_reward(post, s) for s in distinct]
    length = [n_words(s) for s in distinct]
    for a in range(len(distinct)):
        for b in range(a + 1, len(distinct)):
            p1 = preference_probability(gold[a], gold[b], length[a], length[b], labels)
            rows.add(post_id=post.post_id, subreddit=post.subreddit, title=post.title,
                     post=post.text, summary_0=distinct[a], summary_1=distinct[b], policy_0=policy,
                     policy_1=policy, choice=int(rng.random() < p1), gold_0=gold[a],
                     gold_1=gold[b], flipped=False)


def corrupt_labels(choice: list[int], fraction: float, seed: int) -> tuple[list[int], list[bool]]:
    """Flip exactly round(fraction·n) labels chosen at random; returns new labels and flip mask."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"corruption fraction must be in [0, 1], got {fraction}")
    n = len(choice)
    idx = np.random.default_rng(seed).permutation(n)[: round(fraction * n)]
    flipped = np.zeros(n, dtype=bool)
    flipped[idx] = True
    return [1 - c if f else c for c, f in zip(choice, flipped)], flipped.tolist()


_KEY_SENTENCE = re.compile(r"(?:^|[.?] )last week ([^.?]+?) \.")


@lru_cache(maxsize=65536)
def parse_post(text: str) -> Post:
    """Recover a `Post` (facts and key facts) from its text, so gold can score dataset rows."""
    text = normalize(text)
    m = _KEY_SENTENCE.search(text)
    if m is None:
        raise ValueError("not a post of the synthetic world (no key-event sentence): "
                         f"{text[:80]!r}")
    key = [f.group(1) for f in _fact_regex().finditer(m.group(1))]
    people = {p: t for t, lex in TOPICS.items() for p in lex["people"]}
    if len(key) != 2 or key[0] not in people:
        raise ValueError(f"cannot parse the key fact of post {text[:80]!r}")
    facts = tuple(dict.fromkeys(f.group(1) for f in _fact_regex().finditer(text)))
    return Post("", people[key[0]], "", text, key[0], key[1], facts)


def as_post(post: Post | str) -> Post:
    return post if isinstance(post, Post) else parse_post(post)
