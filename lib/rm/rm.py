"""Reward models: a scalar head on the SFT featurizer, trained with the Bradley–Terry loss.

WARM's recipe (§3, §4): every RM starts from the same featurizer *and* the same linear-probed
head; diversity comes from explicit knobs (seed = data order and dropout noise, learning rate,
dropout, Baklava init = an SFT checkpoint). Modes: full fine-tuning, LoRA, 4-bit QLoRA.

Pairs are grouped by prompt, as InstructGPT trains on all comparisons of a prompt at once: the
prompt and each distinct summary are encoded once (`pack_groups`), every pair of the group is
scored from those rewards, and a batch is a set of prompts. The reward is read from the final
hidden state at the EOS that ends each summary.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from datasets import Dataset
from tqdm.auto import tqdm
from transformers import (
    AutoModelForSequenceClassification,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    get_cosine_schedule_with_warmup,
)

from lib.config import ProbeConfig, RMConfig
from lib.measure.evaluate import choice_accuracy, fit_bradley_terry
from lib.models.ema import Ema
from lib.models.lora import unwrapped
from lib.seeds import data_order_rng
from lib.world import data as D

MAX_GROUP = 8  # sequences packed in one row at most; a prompt with more spans several rows


def bt_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> torch.Tensor:
    """Bradley–Terry loss −log σ(r(x, y+) − r(x, y−))."""
    return -F.logsigmoid(r_chosen - r_rejected).mean()


def encode(tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str], summaries: Sequence[str],
           max_length: int) -> list[list[int]]:
    """Token ids of `prompt + " " + summary + EOS`, cut on the left to `max_length`: what an RM reads
    (the head reads the EOS, the last token)."""
    texts = [p + " " + s for p, s in zip(prompts, summaries)]
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    eos = tokenizer.eos_token_id
    return [(x + [eos])[-max_length:] for x in ids]


def left_pad(seqs: Sequence[Sequence[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """A left-padded batch (the head reads the last position)."""
    width = max(len(s) for s in seqs)
    input_ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, seq in enumerate(seqs):
        input_ids[i, width - len(seq):] = torch.tensor(seq)
        mask[i, width - len(seq):] = 1
    return {"input_ids": input_ids, "attention_mask": mask}


class Sequences:
    """Distinct (prompt, summary) sequences grouped by prompt, each tokenized once (`encode`).

    `index[i]` is the sequence id of the i-th input, `ids` the token ids of each sequence and
    `groups` the sequence ids of each prompt, in first-seen order.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str],
                 summaries: Sequence[str], max_length: int):
        seen: dict[tuple[str, str], int] = {}
        group_of: dict[str, int] = {}
        self.groups: list[list[int]] = []
        self.index = np.zeros(len(prompts), dtype=np.int64)
        self.group_of_input = np.zeros(len(prompts), dtype=np.int64)
        for i, key in enumerate(zip(prompts, summaries)):
            g = group_of.setdefault(key[0], len(group_of))
            if g == len(self.groups):
                self.groups.append([])
            if key not in seen:
                seen[key] = len(seen)
                self.groups[g].append(seen[key])
            self.index[i], self.group_of_input[i] = seen[key], g
        self.ids = encode(tokenizer, [p for p, _ in seen], [s for _, s in seen], max_length)
        self.pad_id = tokenizer.pad_token_id


class PairSet(Sequences):
    """Tokenized comparison pairs, grouped by prompt: each distinct (prompt, summary) is one
    sequence, encoded once however many pairs it is in.

    `seq` (pairs, 2) holds the sequence ids of summary_0 and summary_1 of every pair, `group` the
    prompt of each pair (the unit a bootstrap resamples), `choice` the labels and `flipped` which
    of them were corrupted.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, ds: Dataset, max_length: int):
        if len(ds) == 0:
            raise ValueError("a PairSet needs at least one comparison pair")
        prompts = D.prompts_of(ds)
        super().__init__(tokenizer, prompts + prompts, list(ds["summary_0"]) + list(ds["summary_1"]),
                         max_length)
        self.n = len(ds)
        self.seq = self.index.reshape(2, self.n).T.copy()
        self.group = self.group_of_input[: self.n]
        self.choice = np.asarray(ds["choice"])
        self.flipped = np.asarray(ds["flipped"]) if "flipped" in ds.column_names else None
        self.pairs_of_group: list[np.ndarray] = [np.flatnonzero(self.group == g)
                                                 for g in range(len(self.groups))]

    def chosen_rejected(self, rows: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Sequence ids of the chosen and of the rejected summary of each pair of `rows`."""
        rows = np.asarray(rows, dtype=np.int64)
        c = self.choice[rows]
        return self.seq[rows, c], self.seq[rows, 1 - c]


def pack_groups(groups: Sequence[Sequence[Sequence[int]]], pad_id: int,
                dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """One left-padded row per group of sequences that share a prompt: their common token prefix
    once, then the tail of each sequence, with position ids and a 4D attention mask under which
    each tail sees the prefix and itself, never another tail. The backbone then computes, for each
    tail, exactly what it computes on the whole sequence alone, while the prompt (most of the
    tokens) is encoded once per group. `ends` (sequences, 2) holds the (row, position) of the last
    token of every sequence, in the order given, where the reward head reads."""
    parts = []
    for seqs in groups:
        limit, p = min(len(s) for s in seqs) - 1, 0  # each tail keeps at least its last token
        while p < limit and all(s[p] == seqs[0][p] for s in seqs):
            p += 1
        parts.append((list(seqs[0][:p]), [list(s[p:]) for s in seqs]))
    width = max(len(pre) + sum(len(t) for t in tails) for pre, tails in parts)
    input_ids = torch.full((len(parts), width), pad_id, dtype=torch.long)
    position_ids = torch.zeros((len(parts), width), dtype=torch.long)
    allowed = torch.zeros((len(parts), width, width), dtype=torch.bool)
    ends = []
    for row, (pre, tails) in enumerate(parts):
        start = width - len(pre) - sum(len(t) for t in tails)
        input_ids[row, start:] = torch.tensor(pre + [tok for t in tails for tok in t])
        position_ids[row, start:start + len(pre)] = torch.arange(len(pre))
        allowed[row, start:start + len(pre), start:start + len(pre)] = \
            torch.ones(len(pre), len(pre), dtype=torch.bool).tril()
        cursor = start + len(pre)
        for tail in tails:
            end = cursor + len(tail)
            position_ids[row, cursor:end] = torch.arange(len(pre), len(pre) + len(tail))
            allowed[row, cursor:end, start:start + len(pre)] = True
            allowed[row, cursor:end, cursor:end] = torch.ones(len(tail), len(tail), dtype=torch.bool).tril()
            ends.append((row, end - 1))
            cursor = end
    allowed |= torch.eye(width, dtype=torch.bool)  # padding attends to itself (no empty rows)
    mask = torch.zeros((len(parts), 1, width, width), dtype=dtype).masked_fill(
        ~allowed[:, None], torch.finfo(dtype).min)
    return {"input_ids": input_ids, "position_ids": position_ids, "attention_mask": mask,
            "ends": torch.tensor(ends, dtype=torch.long)}


def float_dtype(model: torch.nn.Module) -> torch.dtype:
    return next(p.dtype for p in model.parameters() if p.is_floating_point())


def packed_hidden(model: PreTrainedModel, packed: dict[str, torch.Tensor]) -> torch.Tensor:
    """Final hidden states (sequences, hidden) at the last token of every sequence packed by
    `pack_groups`: the backbone runs once on the packed rows (plain and peft models alike)."""
    device = next(model.parameters()).device
    hidden = unwrapped(model).base_model(
        input_ids=packed["input_ids"].to(device), attention_mask=packed["attention_mask"].to(device),
        position_ids=packed["position_ids"].to(device)).last_hidden_state
    ends = packed["ends"].to(device)
    return hidden[ends[:, 0], ends[:, 1]]


def packed_scores(model: PreTrainedModel, packed: dict[str, torch.Tensor]) -> torch.Tensor:
    """Rewards (sequences,) of the sequences packed by `pack_groups`."""
    return unwrapped(model).score(packed_hidden(model, packed)).squeeze(-1)


def rows_of(pairs: Sequences, groups: Sequence[int]) -> list[list[int]]:
    """The packed rows of `groups`: each group's sequences, at most `MAX_GROUP` per row."""
    return [pairs.groups[g][i:i + MAX_GROUP] for g in groups
            for i in range(0, len(pairs.groups[g]), MAX_GROUP)]


@torch.no_grad()
def sequence_hidden(model: PreTrainedModel, pairs: Sequences, groups: Sequence[int] | None = None,
                    batch_size: int = 32) -> tuple[torch.Tensor, np.ndarray]:
    """Final hidden states at the EOS of every sequence of `groups` (all by default), and their
    sequence ids. Rows are batched by packed length, so there is little padding."""
    model.eval()
    groups = range(len(pairs.groups)) if groups is None else groups
    rows = sorted(rows_of(pairs, groups), key=lambda r: sum(len(pairs.ids[s]) for s in r))
    dtype, out, ids = float_dtype(model), [], []
    for i in range(0, len(rows), batch_size):
        batch = rows[i:i + batch_size]
        out.append(packed_hidden(model, pack_groups([[pairs.ids[s] for s in r] for r in batch],
                                                    pairs.pad_id, dtype)))
        ids += [s for r in batch for s in r]
    return torch.cat(out), np.asarray(ids)


@torch.no_grad()
def sequence_scores(model: PreTrainedModel, pairs: Sequences, batch_size: int = 32) -> np.ndarray:
    """The reward of every sequence of `pairs` (a `Sequences` or `PairSet`), by sequence id."""
    hidden, ids = sequence_hidden(model, pairs, batch_size=batch_size)
    scores = np.zeros(len(pairs.ids))
    scores[ids] = unwrapped(model).score(hidden).squeeze(-1).float().cpu().numpy()
    return scores


def score_pairs(model: PreTrainedModel, pairs: PairSet, batch_size: int = 32) -> np.ndarray:
    """Rewards shaped (2, n): row 0 for summary_0, row 1 for summary_1 of each pair."""
    return sequence_scores(model, pairs, batch_size)[pairs.seq].T.copy()


def score_texts(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str],
                summaries: Sequence[str], max_length: int) -> np.ndarray:
    """Reward of each (prompt, summary): the samples of one prompt are packed with the prompt
    encoded once, and a summary repeated for a prompt is scored once."""
    seqs = Sequences(tokenizer, prompts, summaries, max_length)
    return sequence_scores(model, seqs)[seqs.index]


def last_token_scores(model: PreTrainedModel, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Reward of each sequence of a left-padded batch: the head on the hidden state of its last
    position (its EOS). Read directly, not through the model's own pooling, which looks for the
    last non-pad token and so skips the EOS when the pad token is the EOS (Pythia)."""
    device = next(model.parameters()).device
    hf = unwrapped(model)
    hidden = hf.base_model(**{k: v.to(device) for k, v in batch.items()}).last_hidden_state
    return hf.score(hidden[:, -1]).squeeze(-1)


@torch.no_grad()
def score_sequences(model: PreTrainedModel, seqs: Sequence[Sequence[int]], pad_id: int,
                    batch_size: int = 128) -> np.ndarray:
    """Reward of every token sequence, each on its own (batched by length, little padding)."""
    model.eval()
    order = sorted(range(len(seqs)), key=lambda r: len(seqs[r]))
    scores = np.zeros(len(seqs))
    for i in range(0, len(order), batch_size):
        rows = order[i: i + batch_size]
        scores[rows] = last_token_scores(model, left_pad([seqs[r] for r in rows], pad_id)) \
            .float().cpu().numpy()
    return scores


def accuracy(scores: np.ndarray, choice: np.ndarray) -> float:
    """Pairwise accuracy of rewards (2, n) against labels; ties count as correct (WARM)."""
    return choice_accuracy(scores[0], scores[1], choice)


def reward_model_from(lm_path, head: dict[str, torch.Tensor] | None, dropout: float = 0.0,
                      dtype: str = "float32") -> PreTrainedModel:
    """A sequence-classification model (one output) on the weights of a causal LM, with `head`."""
    model = AutoModelForSequenceClassification.from_pretrained(
        str(lm_path), num_labels=1, dtype=getattr(torch, dtype), use_safetensors=True,
        attention_dropout=dropout)
    if head is not None:
        model.score.load_state_dict(head)
    return model


def fit_linear_probe(model: PreTrainedModel, pairs: PairSet, cfg: ProbeConfig) -> dict[str, torch.Tensor]:
    """Train the reward head alone on frozen features (BT loss, L-BFGS): WARM's shared head. The
    features are the final hidden states at the EOS, chosen minus rejected, of the pairs of the
    first prompts, up to `cfg.n_pairs` pairs."""
    counts = np.cumsum([len(p) for p in pairs.pairs_of_group])
    n_groups = int(np.searchsorted(counts, min(cfg.n_pairs, pairs.n))) + 1
    hidden, ids = sequence_hidden(model, pairs, range(n_groups))
    where = np.full(len(pairs.ids), -1)
    where[ids] = np.arange(len(ids))
    rows = np.concatenate(pairs.pairs_of_group[:n_groups])
    chosen, rejected = pairs.chosen_rejected(rows)
    h = hidden.double()
    w = fit_bradley_terry(h[where[chosen]] - h[where[rejected]], cfg.l2, max_iter=300)
    return {"weight": w.float().reshape(1, -1).contiguous()}


def batch_loss(model: PreTrainedModel, pairs: PairSet, groups: Sequence[int]) -> tuple[torch.Tensor, float, int]:
    """The BT loss over every pair of `groups` (each sequence scored once), their accuracy and
    their number."""
    seqs = rows_of(pairs, groups)
    r = packed_scores(model, pack_groups([[pairs.ids[s] for s in row] for row in seqs],
                                         pairs.pad_id, float_dtype(model)))
    where = np.full(len(pairs.ids), -1)
    where[[s for row in seqs for s in row]] = np.arange(len(r))
    chosen, rejected = pairs.chosen_rejected(np.concatenate([pairs.pairs_of_group[g] for g in groups]))
    r_chosen = r[torch.as_tensor(where[chosen], device=r.device)]
    r_rejected = r[torch.as_tensor(where[rejected], device=r.device)]
    return bt_loss(r_chosen, r_rejected), float((r_chosen >= r_rejected).float().mean()), len(chosen)


def train_reward_model(model: PreTrainedModel, pairs: PairSet, cfg: RMConfig, *,
                       eval_fn: Callable[[PreTrainedModel], float] | None = None,
                       eval_steps: Collection[int] = (),
                       on_checkpoint: Callable[[int, PreTrainedModel], None] | None = None,
                       desc: str = "RM") -> dict[str, list]:
    """Bradley–Terry fine-tuning for `cfg.steps` steps of `cfg.batch_size` prompts, each with all
    its pairs; AdamW with a linear warmup over `cfg.warmup` of the steps, then cosine decay; the
    data order (a fresh permutation of the prompts every epoch) is set by `cfg.seed`.

    `eval_fn(model)` (e.g. held-out accuracy, or per-pair correctness: its mean is logged) is
    called at step 0, at each of `eval_steps` and at the last step: the curve that shows whether
    fine-tuning ever falls below the probed head. The history keeps each value as returned under
    `eval_values` and its mean under `eval`.

    With `cfg.ema_mu` < 1 the RM is the EMA of its weights (`lib.models.ema.Ema`): `eval_fn` and
    `on_checkpoint` see the EMA, and `model` ends with its weights."""
    rng = data_order_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    ema = Ema(model, cfg.ema_mu) if cfg.ema_mu < 1.0 else None
    kept = ema.model if ema is not None else model  # the RM the run keeps (the EMA updates in place)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    schedule = get_cosine_schedule_with_warmup(opt, int(cfg.warmup * cfg.steps), cfg.steps)
    n_groups = len(pairs.groups)
    order, cursor = rng.permutation(n_groups), 0
    history: dict[str, list] = {"step": [], "loss": [], "accuracy": [], "pairs": [], "eval_step": [],
                                "eval": [], "eval_values": []}

    def evaluate(step: int) -> None:
        value = np.asarray(eval_fn(kept), dtype=float)
        history["eval_step"].append(step)
        history["eval"].append(float(value.mean()))
        history["eval_values"].append(value)

    if eval_fn is not None:
        evaluate(0)
    model.train()
    for step in tqdm(range(1, cfg.steps + 1), desc=desc, leave=False, mininterval=5):
        if cursor + cfg.batch_size > n_groups:
            order, cursor = rng.permutation(n_groups), 0
        groups = order[cursor: cursor + min(cfg.batch_size, n_groups)]
        cursor += cfg.batch_size
        loss, acc, n_pairs = batch_loss(model, pairs, groups)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        schedule.step()
        opt.zero_grad(set_to_none=True)
        if ema is not None:
            ema.update(model)
        history["step"].append(step)
        history["loss"].append(loss.item())
        history["accuracy"].append(acc)
        history["pairs"].append(n_pairs)
        if eval_fn is not None and (step == cfg.steps or step in eval_steps):
            evaluate(step)
            model.train()
        if on_checkpoint is not None and step in cfg.checkpoint_steps:
            on_checkpoint(step, kept)
            model.train()
    if ema is not None:
        model.load_state_dict(ema.model.state_dict())
    model.eval()
    return history
