"""Reward models: a scalar head on the SFT featurizer, trained with the Bradley–Terry loss.

WARM's recipe (§3, §4): every RM starts from the same featurizer *and* the same linear-probed
head; diversity comes from explicit knobs (seed = data order and dropout noise, learning rate,
dropout, Baklava init = an SFT checkpoint). Modes: full fine-tuning, LoRA, 4-bit QLoRA. The RM
stored in the cache is always the full (merged) weight state dict, so weight averaging averages
the actual updates ΔW = B·A·scale of LoRA runs, never A and B separately; for QLoRA the merge
uses the dequantized NF4 base.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from datasets import Dataset
from safetensors.torch import load_file, save_file
from tqdm import tqdm
from transformers import AutoModelForSequenceClassification, PreTrainedModel, PreTrainedTokenizerBase

from . import data as D
from .cache import Artifact, state_fingerprint
from .evaluate import choice_accuracy, fit_bradley_terry

if TYPE_CHECKING:
    import pandas


@dataclass(frozen=True)
class RMConfig:
    """One reward-model fine-tuning run; each field is a diversity knob or a budget."""

    seed: int = 0  # data order and dropout noise
    lr: float = 1e-4
    dropout: float = 0.0  # attention dropout (full) or LoRA dropout
    init_checkpoint: int | None = None  # Baklava: SFT checkpoint step (None: the final SFT)
    random_init: bool = False  # control: no shared pre-training at all
    mode: str = "full"  # full | lora | qlora
    steps: int = 80
    batch_size: int = 16  # pairs per step
    corruption: float = 0.0  # fraction of training labels flipped (WARM §4.2: 0.25)
    checkpoint_steps: tuple[int, ...] = ()
    lora_r: int = 8
    lora_alpha: int = 16


@dataclass(frozen=True)
class ProbeConfig:
    """The shared head: logistic regression on frozen SFT features of the training pairs."""

    n_pairs: int = 4000
    l2: float = 1e-3


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


class PairSet:
    """Tokenized comparison pairs, ready to score many models on the same batches."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, ds: Dataset, max_length: int):
        prompts = D.prompts_of(ds)
        self.ids = encode(tokenizer, prompts + prompts, list(ds["summary_0"]) + list(ds["summary_1"]),
                          max_length)
        self.pad_id = tokenizer.pad_token_id
        self.n = len(ds)
        self.choice = np.asarray(ds["choice"])
        self.flipped = np.asarray(ds["flipped"]) if "flipped" in ds.column_names else None

    def chosen_rejected(self, pair_rows: Sequence[int]) -> tuple[list[int], list[int]]:
        ch = [r + self.n * int(self.choice[r]) for r in pair_rows]
        rej = [r + self.n * (1 - int(self.choice[r])) for r in pair_rows]
        return ch, rej


def _unwrapped(model: PreTrainedModel) -> PreTrainedModel:
    """The transformers model inside a peft wrapper (the model itself if plain)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def last_token_scores(model: PreTrainedModel, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Reward of each sequence: the head on the hidden state of its last position (inputs are
    left-padded, so that is its EOS). Read directly, not through the model's own pooling, which
    looks for the last non-pad token and so skips the EOS when the pad token is the EOS (Pythia).
    Works for plain and peft-wrapped sequence-classification models."""
    hf = _unwrapped(model)
    device = next(model.parameters()).device
    hidden = hf.base_model(**{k: v.to(device) for k, v in batch.items()}).last_hidden_state
    return hf.score(hidden[:, -1]).squeeze(-1)


@torch.no_grad()
def score_sequences(model: PreTrainedModel, seqs: Sequence[Sequence[int]], pad_id: int,
                    batch_size: int = 128) -> np.ndarray:
    """Reward of every token sequence, batched by length (little padding)."""
    model.eval()
    order = sorted(range(len(seqs)), key=lambda r: len(seqs[r]))
    scores = np.zeros(len(seqs))
    for i in range(0, len(order), batch_size):
        rows = order[i: i + batch_size]
        scores[rows] = last_token_scores(model, left_pad([seqs[r] for r in rows], pad_id)) \
            .float().cpu().numpy()
    return scores


def pack_pairs(seqs_a: Sequence[Sequence[int]], seqs_b: Sequence[Sequence[int]], pad_id: int,
               dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """One left-padded row per pair of sequences that share a prompt: the shared token prefix once,
    then the tail of `a`, then the tail of `b`, with position ids and a 4D attention mask under
    which each tail sees the prefix and itself, never the other tail. The backbone then computes,
    for each tail, exactly what it computes on the whole sequence alone, while the prompt (most of
    the tokens) is encoded once per pair instead of twice. `ends` (rows, 2) are the positions of the
    last token of `a` and of `b`, where the reward head reads."""
    parts = []
    for a, b in zip(seqs_a, seqs_b):
        limit, p = min(len(a), len(b)) - 1, 0  # each tail keeps at least its last token
        while p < limit and a[p] == b[p]:
            p += 1
        parts.append((list(a[:p]), list(a[p:]), list(b[p:])))
    width = max(len(pre) + len(ta) + len(tb) for pre, ta, tb in parts)
    n = len(parts)
    input_ids = torch.full((n, width), pad_id, dtype=torch.long)
    position_ids = torch.zeros((n, width), dtype=torch.long)
    allowed = torch.zeros((n, width, width), dtype=torch.bool)
    ends = torch.zeros((n, 2), dtype=torch.long)
    for i, (pre, ta, tb) in enumerate(parts):
        start = width - len(pre) - len(ta) - len(tb)
        mid = start + len(pre) + len(ta)  # where the tail of b begins
        input_ids[i, start:] = torch.tensor(pre + ta + tb)
        position_ids[i, start:mid] = torch.arange(len(pre) + len(ta))
        position_ids[i, mid:] = torch.arange(len(pre), len(pre) + len(tb))
        allowed[i, start:mid, start:mid] = torch.ones(mid - start, mid - start, dtype=torch.bool).tril()
        allowed[i, mid:, start:start + len(pre)] = True
        allowed[i, mid:, mid:] = torch.ones(len(tb), len(tb), dtype=torch.bool).tril()
        ends[i] = torch.tensor([mid - 1, width - 1])
    allowed |= torch.eye(width, dtype=torch.bool)  # padding attends to itself (no empty rows)
    mask = torch.zeros((n, 1, width, width), dtype=dtype).masked_fill(~allowed[:, None],
                                                                      torch.finfo(dtype).min)
    return {"input_ids": input_ids, "position_ids": position_ids, "attention_mask": mask,
            "ends": ends}


def _float_dtype(model: torch.nn.Module) -> torch.dtype:
    return next(p.dtype for p in model.parameters() if p.is_floating_point())


def packed_pair_hidden(model: PreTrainedModel, packed: dict[str, torch.Tensor]) -> torch.Tensor:
    """Final hidden states (rows, 2, hidden) at the last token of each of the two sequences packed
    in each row by `pack_pairs`: the backbone runs once on the packed rows. Works for plain and
    peft-wrapped sequence-classification models."""
    hf = _unwrapped(model)
    device = next(model.parameters()).device
    hidden = hf.base_model(input_ids=packed["input_ids"].to(device),
                           attention_mask=packed["attention_mask"].to(device),
                           position_ids=packed["position_ids"].to(device)).last_hidden_state
    ends = packed["ends"].to(device)
    rows = torch.arange(len(ends), device=device)[:, None]
    return hidden[rows, ends]


def packed_pair_scores(model: PreTrainedModel, packed: dict[str, torch.Tensor]) -> torch.Tensor:
    """Rewards (rows, 2) of the two sequences packed in each row by `pack_pairs`: the reward head
    on `packed_pair_hidden`."""
    return _unwrapped(model).score(packed_pair_hidden(model, packed)).squeeze(-1)


@torch.no_grad()
def pair_hidden(model: PreTrainedModel, pairs: PairSet, rows: Sequence[int] | None = None,
                batch_size: int = 64) -> torch.Tensor:
    """Final hidden states (len(rows), 2, hidden) at the EOS of summary_0 and summary_1 of each pair
    of `rows` (all by default). Each pair's prompt is encoded once (`pack_pairs`); pairs are batched
    by packed length, so there is little padding."""
    model.eval()
    dtype = _float_dtype(model)
    rows = list(range(pairs.n)) if rows is None else list(rows)
    a, b = pairs.ids[: pairs.n], pairs.ids[pairs.n:]
    order = sorted(range(len(rows)), key=lambda i: len(a[rows[i]]) + len(b[rows[i]]))
    out = None
    for i in range(0, len(order), batch_size):
        idx = order[i: i + batch_size]
        packed = pack_pairs([a[rows[j]] for j in idx], [b[rows[j]] for j in idx], pairs.pad_id, dtype)
        h = packed_pair_hidden(model, packed)
        if out is None:
            out = torch.zeros((len(rows), 2, h.shape[-1]), dtype=h.dtype, device=h.device)
        out[idx] = h
    return out


@torch.no_grad()
def score_pairs(model: PreTrainedModel, pairs: PairSet, batch_size: int = 64) -> np.ndarray:
    """Rewards shaped (2, n): row 0 for summary_0, row 1 for summary_1 (see `pair_hidden`)."""
    return _unwrapped(model).score(pair_hidden(model, pairs, batch_size=batch_size)).squeeze(-1) \
        .float().cpu().numpy().T.copy()


def accuracy(scores: np.ndarray, choice: np.ndarray) -> float:
    """Pairwise accuracy of rewards (2, n) against labels; ties count as correct (WARM)."""
    return choice_accuracy(scores[0], scores[1], choice)


def reward_model_from(lm_path: Path, head: dict[str, torch.Tensor] | None, dropout: float = 0.0,
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
    features are the final hidden states at the EOS (`pair_hidden`), chosen minus rejected."""
    rows = np.arange(min(cfg.n_pairs, pairs.n))
    h = pair_hidden(model, pairs, rows).double()  # (n, 2, hidden): summary_0, summary_1
    chosen = torch.as_tensor(pairs.choice[rows], dtype=torch.long, device=h.device)
    n = torch.arange(len(rows), device=h.device)
    w = fit_bradley_terry(h[n, chosen] - h[n, 1 - chosen], cfg.l2, max_iter=300)
    return {"weight": w.float().reshape(1, -1).contiguous()}


# Bump when RM training changes in a way the config does not show, so cached RMs are retrained.
RM_VERSION = 4  # 3: pairs packed with their shared prompt (`pack_pairs`); 4: so is the probe
# The data order draws from its own stream: a plain `default_rng(seed)` would replay the label
# corruption's permutation (`lib.world.corrupt_labels`, seeded with the world seed) for the RM whose
# seed equals the world seed, and that RM would see only the flipped pairs first.
_DATA_ORDER_STREAM = 0x5244  # "RD"


def data_order_rng(seed: int) -> np.random.Generator:
    """The generator of an RM's data order, independent of every other seeded stream."""
    return np.random.default_rng([seed, _DATA_ORDER_STREAM])


def train_reward_model(model: PreTrainedModel, pairs: PairSet, cfg: RMConfig,
                       on_checkpoint: Callable[[int, PreTrainedModel], None] | None = None,
                       desc: str = "RM") -> dict[str, list]:
    """Bradley–Terry fine-tuning for `cfg.steps` steps; the data order is set by `cfg.seed`."""
    rng = data_order_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    dtype = _float_dtype(model)
    order, cursor = rng.permutation(pairs.n), 0
    history: dict[str, list] = {"step": [], "loss": [], "accuracy": []}
    model.train()
    for step in tqdm(range(1, cfg.steps + 1), desc=desc, leave=False, mininterval=5):
        if cursor + cfg.batch_size > pairs.n:
            order, cursor = rng.permutation(pairs.n), 0
        rows = order[cursor: cursor + cfg.batch_size]
        cursor += cfg.batch_size
        ch, rej = pairs.chosen_rejected(rows)
        r = packed_pair_scores(model, pack_pairs([pairs.ids[k] for k in ch], [pairs.ids[k] for k in rej],
                                                 pairs.pad_id, dtype))
        loss = bt_loss(r[:, 0], r[:, 1])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        history["step"].append(step)
        history["loss"].append(loss.item())
        history["accuracy"].append(float((r[:, 0] >= r[:, 1]).float().mean()))
        if on_checkpoint is not None and step in cfg.checkpoint_steps:
            on_checkpoint(step, model)
            model.train()
    model.eval()
    return history


def merged_state_dict(model: PreTrainedModel) -> dict[str, torch.Tensor]:
    """Full weights of an RM; a peft model is merged first (W + B·A·scale; NF4 dequantized)."""
    if hasattr(model, "get_base_model"):
        return lora_merged_state_dict(model)
    state = {k: v.detach().float().contiguous() if v.is_floating_point() else v.detach().contiguous()
             for k, v in model.state_dict().items()}
    return state


def save_rm(model: PreTrainedModel, path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    save_file(merged_state_dict(model), str(path / "rm.safetensors"))


def load_rm_state(art: Artifact, checkpoint: int | None = None) -> dict[str, torch.Tensor]:
    sub = "final" if checkpoint is None else f"checkpoint-{checkpoint}"
    path = art.path / sub / "rm.safetensors"
    if not path.exists():
        have = sorted(p.name for p in art.path.iterdir() if p.is_dir())
        raise ValueError(f"RM {art.key} has no {sub}; it keeps {have}")
    return load_file(str(path))


def history_of(art: Artifact) -> dict:
    return json.loads((art.path / "meta.json").read_text())["history"]


@torch.no_grad()
def merged_lora_weight(module: torch.nn.Module) -> torch.Tensor:
    """W + B·A·scale of one LoRA-adapted linear layer, float32 (an NF4 base is dequantized)."""
    base = module.base_layer
    if type(base).__name__ == "Linear4bit":
        import bitsandbytes.functional as bnbf

        weight = bnbf.dequantize_4bit(base.weight.data, base.weight.quant_state).float()
    else:
        weight = base.weight.detach().float()
    for adapter in module.active_adapters:
        a, b = module.lora_A[adapter].weight.float(), module.lora_B[adapter].weight.float()
        weight = weight + (b @ a) * module.scaling[adapter]
    return weight


def lora_merged_state_dict(model: PreTrainedModel) -> dict[str, torch.Tensor]:
    """Full weights of a peft LoRA model, W + B·A·scale per LoRA layer, plus its own heads.

    Computed explicitly rather than with `merge_and_unload`, which would re-quantize an NF4 base:
    for QLoRA the base is dequantized first, so the result is the dequantized base + ΔW.
    """
    inner = model.get_base_model()
    out: dict[str, torch.Tensor] = {}
    for key, value in inner.state_dict().items():
        if "lora_" in key or ".base_layer." in key or ".original_module." in key:
            continue
        out[key.replace(".modules_to_save.default.", ".")] = value.detach().float().contiguous() \
            if value.is_floating_point() else value.detach().contiguous()
    for name, module in inner.named_modules():
        if not (hasattr(module, "base_layer") and hasattr(module, "lora_A")):
            continue
        base = module.base_layer
        out[f"{name}.weight"] = merged_lora_weight(module).contiguous()
        if getattr(base, "bias", None) is not None:
            out[f"{name}.bias"] = base.bias.detach().float().contiguous()
    return out


class RewardModels:
    """Cached RM stages of a pipeline: the shared probe head, single RMs, their scores."""

    def __init__(self, pipeline, probe: ProbeConfig | None = None):
        self.pl = pipeline
        self.cfg = pipeline.profile.rm
        self.probe_cfg = probe or ProbeConfig(n_pairs=self.cfg.probe_pairs)
        self._pairsets: dict = {}
        self._scores: dict = {}

    # ---- data ---------------------------------------------------------------------------------
    def train_pairs(self, corruption: float) -> Dataset:
        ds = self.pl.world.comparisons["train"]
        return D.with_corrupted_labels(ds, corruption, seed=self.pl.profile.world.seed) \
            if corruption else ds

    def eval_subsets(self, corruption: float) -> dict[str, Dataset]:
        """WARM Fig. 4's subsets: train-corrupt (against the swapped labels), train-clean, ID
        validation, OOD test; at most `n_eval` pairs each."""
        n = self.cfg.n_eval
        train = self.train_pairs(corruption)
        flipped = np.asarray(train["flipped"])
        out = {}
        if corruption:
            out["train-corrupt"] = train.select(np.flatnonzero(flipped)[:n])
        out["train-clean"] = train.select(np.flatnonzero(~flipped)[:n])
        out["ID val"] = self.pl.world.comparisons["validation"].select(
            range(min(n, len(self.pl.world.comparisons["validation"]))))
        out["OOD"] = self.pl.world.comparisons["test_ood"].select(
            range(min(n, len(self.pl.world.comparisons["test_ood"]))))
        return out

    def pairset(self, name: str, ds: Dataset) -> PairSet:
        if name not in self._pairsets:
            self._pairsets[name] = PairSet(self.pl.tokenizer, ds, self.pl.profile.model.max_length)
        return self._pairsets[name]

    # ---- the pool -------------------------------------------------------------------------------
    def member(self, i: int, corruption: float = 0.0) -> RMConfig:
        """The i-th RM of the pool. Members 0–3 form WARM Fig. 3's ladder of diversity: 0 vs 1
        differ by data order, 0 vs 2 also by learning rate, 0 vs 3 also by dropout and Baklava
        init; later members cycle through the knobs."""
        c = self.cfg
        ladder = {0: (c.lrs[0], c.dropouts[0], c.baklava[0]),
                  1: (c.lrs[0], c.dropouts[0], c.baklava[0]),
                  2: (c.lrs[-1], c.dropouts[0], c.baklava[0]),
                  3: (c.lrs[-1], c.dropouts[-1], c.baklava[-1])}
        lr, dropout, init = ladder.get(i, (c.lrs[i % len(c.lrs)],
                                           c.dropouts[(i // len(c.lrs)) % len(c.dropouts)],
                                           c.baklava[i % len(c.baklava)]))
        return RMConfig(seed=i, lr=lr, dropout=dropout, init_checkpoint=init, mode=c.mode,
                        steps=c.steps, batch_size=c.batch_size, corruption=corruption,
                        checkpoint_steps=(c.steps // 2,))

    def pool(self, corruption: float = 0.0) -> list[RMConfig]:
        return [self.member(i, corruption) for i in range(self.cfg.n_rms)]

    # ---- stages ---------------------------------------------------------------------------------
    def _lm_path(self, checkpoint: int | None) -> Path:
        return self.pl.model_path("sft", checkpoint)

    def head(self, corruption: float = 0.0, seed: int | None = None) -> dict[str, torch.Tensor]:
        """The linear-probed head on the final SFT featurizer (or, with `seed`, on a random
        featurizer for the no-pre-training control), cached."""
        key = {"sft": self.pl.sft_key, "probe": self.probe_cfg, "corruption": corruption,
               "random_seed": seed, "version": RM_VERSION}

        def build(tmp: Path) -> dict:
            model = self._random_rm(seed) if seed is not None else \
                reward_model_from(self._lm_path(None), None)
            pairs = self.pairset(f"train-{corruption}", self.train_pairs(corruption))
            save_file(fit_linear_probe(model, pairs, self.probe_cfg), str(tmp / "head.safetensors"))
            return {}

        art = self.pl.cache.stage("rm-probe", key, build)
        return load_file(str(art.path / "head.safetensors"))

    def _random_rm(self, seed: int) -> PreTrainedModel:
        from transformers import LlamaForSequenceClassification

        from .models import tiny_llama
        lm = tiny_llama(self.pl.profile.model, self.pl.tokenizer, seed=1000 + seed)
        lm.config.num_labels = 1
        torch.manual_seed(1000 + seed)
        return LlamaForSequenceClassification(lm.config)

    def build_model(self, cfg: RMConfig) -> PreTrainedModel:
        """The RM of `cfg` before fine-tuning: featurizer init + shared head (+ LoRA)."""
        if cfg.random_init:
            model = self._random_rm(cfg.seed)
            model.score.load_state_dict(self.head(cfg.corruption, seed=cfg.seed))
            return model
        head = self.head(cfg.corruption)
        device = self.pl.profile.device
        if cfg.mode == "full":
            return reward_model_from(self._lm_path(cfg.init_checkpoint), head, cfg.dropout).to(device)
        if cfg.mode not in ("lora", "qlora"):
            raise ValueError(f"unknown RM mode {cfg.mode!r}; valid: full, lora, qlora")
        from peft import LoraConfig, get_peft_model

        from .models import from_pretrained, lora_targets

        model = from_pretrained(AutoModelForSequenceClassification, self._lm_path(cfg.init_checkpoint),
                                dtype=self.pl.profile.model.dtype, load_in_4bit=cfg.mode == "qlora",
                                double_quant=False, device=device, num_labels=1)
        model.score.load_state_dict(head)
        if self.pl.profile.gradient_checkpointing:
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        lora = LoraConfig(task_type="SEQ_CLS", r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                          lora_dropout=cfg.dropout, target_modules=lora_targets(model))
        return get_peft_model(model, lora)

    def rm_key(self, cfg: RMConfig) -> dict:
        return {"sft": self.pl.sft_key, "probe": self.probe_cfg, "rm": cfg, "version": RM_VERSION}

    def artifact(self, cfg: RMConfig) -> Artifact:
        """Train (or read back) the RM of `cfg`: final and intermediate weights, loss curve."""
        def build(tmp: Path) -> dict:
            model = self.build_model(cfg)
            pairs = self.pairset(f"train-{cfg.corruption}", self.train_pairs(cfg.corruption))
            history = train_reward_model(model, pairs, cfg,
                                         on_checkpoint=lambda s, m: save_rm(m, tmp / f"checkpoint-{s}"),
                                         desc=f"RM seed {cfg.seed}")
            save_rm(model, tmp / "final")
            return {"history": history}

        return self.pl.cache.stage("rm", self.rm_key(cfg), build)

    def state(self, cfg: RMConfig, checkpoint: int | None = None) -> dict[str, torch.Tensor]:
        return load_rm_state(self.artifact(cfg), checkpoint)

    def model_of(self, state: dict[str, torch.Tensor], copy: bool = True) -> PreTrainedModel:
        """An RM carrying the (e.g. weight-averaged) full state dict `state`. With `copy=False`
        the one shared template is reloaded in place (fast, for scoring one model at a time)."""
        if getattr(self, "_template", None) is None:
            self._template = reward_model_from(self._lm_path(None), None).to(
                self.pl.profile.device).eval()
        missing, unexpected = self._template.load_state_dict(state, strict=False)
        if unexpected or [k for k in missing if "lm_head" not in k]:
            raise ValueError(f"state dict does not fit the RM: missing {missing[:3]}, "
                             f"unexpected {unexpected[:3]}")
        if not copy:
            return self._template
        import copy as _copy
        return _copy.deepcopy(self._template)

    def score_texts(self, state: dict[str, torch.Tensor], prompts: Sequence[str],
                    summaries: Sequence[str]) -> np.ndarray:
        """Reward of each (prompt, summary) under the RM with weights `state`."""
        seqs = encode(self.pl.tokenizer, prompts, summaries, self.pl.profile.model.max_length)
        return score_sequences(self.model_of(state, copy=False), seqs, self.pl.tokenizer.pad_token_id)

    def ranking(self, corruption: float = 0.0) -> list[int]:
        """Pool members ranked by OOD accuracy, best first: φ1, φ2, … (WARM §5)."""
        ood = self.eval_subsets(corruption)["OOD"]
        acc = [accuracy(self.scores(self.state(cfg), "OOD", ood), np.asarray(ood["choice"]))
               for cfg in self.pool(corruption)]
        return [int(i) for i in np.argsort(-np.asarray(acc), kind="stable")]

    def warm(self, members: Sequence[RMConfig]) -> dict[str, torch.Tensor]:
        """WARM of `members`: the uniform average of their (merged) weights."""
        from .merge import weight_average

        states = [self.state(cfg) for cfg in members]
        return states[0] if len(states) == 1 else weight_average(states)

    def pool_scores(self, members: Sequence[RMConfig], pool: dict) -> np.ndarray:
        """Rewards (prompts, K) of the sample pool `pool` (from `Pipeline.sample_pool`) under WARM
        of `members` (one member: that RM); cached per (pool, members)."""
        key = {"pool": pool["key"], "rms": [self.rm_key(cfg) for cfg in members]}
        prompts = D.prompts_of(pool["posts"])
        k = len(pool["samples"][0])

        def build(tmp: Path) -> dict:
            flat_prompts = [p for p in prompts for _ in range(k)]
            flat = [s for row in pool["samples"] for s in row]
            scores = self.score_texts(self.warm(members), flat_prompts, flat)
            save_file({"scores": torch.from_numpy(scores.reshape(len(prompts), k))},
                      str(tmp / "scores.safetensors"))
            return {}

        art = self.pl.cache.stage("pool-scores", key, build)
        return load_file(str(art.path / "scores.safetensors"))["scores"].numpy()

    def scores(self, state: dict[str, torch.Tensor], name: str, ds: Dataset) -> np.ndarray:
        """Rewards (2, n) of the RM with weights `state` on the pairs of `ds` (named `name`).
        Memoized on the exact weights: a model reached twice (an endpoint shared by several pairs,
        the same average built in two places) is scored once."""
        key = (state_fingerprint(state), name)
        if key not in self._scores:
            self._scores[key] = score_pairs(self.model_of(state, copy=False), self.pairset(name, ds))
        return self._scores[key].copy()

    def interpolation(self, theta_1: dict[str, torch.Tensor], theta_2: dict[str, torch.Tensor],
                      subsets: dict[str, Dataset], lambdas: Sequence[float]) -> "pandas.DataFrame":
        """Accuracy along λ of WA (weights (1−λ)θ1 + λθ2), ENS ((1−λ)r1 + λr2) and the diagonal
        ((1−λ)acc1 + λacc2), on each subset (WARM Fig. 3 and 4). Endpoints are scored once."""
        import pandas as pd

        from .merge import weight_average

        rows = []
        ends = {name: (self.scores(theta_1, name, ds), self.scores(theta_2, name, ds))
                for name, ds in subsets.items()}
        for lam in lambdas:
            wa_state = None if lam in (0.0, 1.0) else weight_average([theta_1, theta_2], [1 - lam, lam])
            for name, ds in subsets.items():
                y = np.asarray(ds["choice"])
                s1, s2 = ends[name]
                wa = s1 if lam == 0.0 else s2 if lam == 1.0 else self.scores(wa_state, name, ds)
                rows.append({"lambda": lam, "subset": name, "WA": accuracy(wa, y),
                             "ENS": accuracy((1 - lam) * s1 + lam * s2, y),
                             "diag": (1 - lam) * accuracy(s1, y) + lam * accuracy(s2, y)})
        return pd.DataFrame(rows)
