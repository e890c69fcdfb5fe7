"""KL-regularized on-policy REINFORCE with a leave-one-out baseline (WARM §5.2, WARP §3).

Each step samples `k` completions for each of `prompts_per_step` prompts from the policy and
maximizes the shaped reward

    r(x, y) − β · KL(π(·|x) ‖ π_anchor(·|x)),

with the KL estimated on the sampled sequence (Schulman's k1 or k3) and detached inside the reward,
and the advantage of each sample taken against the mean shaped reward of the k − 1 other samples
of its prompt (RLOO, Ahmadian et al. 2024; WARP uses REINFORCE with this baseline). The loss is

    −mean_i A_i · Σ_t log π(y_t | x, y_<t).

The anchor is either the frozen initial policy (WARM, standard RLHF) or an exponential moving
average of the policy, θ_ema ← (1−μ)·θ_ema + μ·θ after every optimizer step (WARP's EMA anchor,
μ = 0.01). For LoRA policies the EMA is kept over the *merged* weights W + B·A·scale of the
adapted layers (an EMA of A and B separately is not an EMA of B·A) and the anchor is a plain model
carrying those weights.

Temperature: samples are drawn from softmax(logits / T) (top-k and top-p off), and every
log-probability in the loss and in the KL is taken under that same tempered distribution, for the
policy and for the reference models, so that the estimator is on-policy and the KL is the one of the
distributions actually sampled from. Dropout is never active (the policy stays in eval mode), so the
log-probabilities are those of the sampling distribution.

Runs are deterministic on CPU: the prompts and the sampling randomness of step s depend only on
(seed, s), and a run resumed from a saved state (`lib.rl.state`: safetensors and JSON only) ends
with weights bit-identical to an uninterrupted run. The gold reward is only ever computed for
logging at evaluation steps. The cached runs of a pipeline are `lib.rl.runs.RLRuns`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lib.config import RLConfig
from lib.models.ema import Ema
from lib.models.lora import is_peft, lora_is_fresh, wrap_lora
from lib.models.models import is_4bit
from lib.models.policy import plain_model_like
from lib.models.sampling import position_ids_of, sample_batch
from lib.rl.state import restore, state_of, trainable_named_parameters
from lib.seeds import epoch_permutation, step_seed

RewardFn = Callable[[list[str], list[str]], "np.ndarray | torch.Tensor"]
StateDict = dict[str, torch.Tensor]


# ---- pure functions ---------------------------------------------------------------------------

def response_logprobs(model: PreTrainedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                      response_mask: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """log π(y_t | x, y_<t) of the realized tokens, shaped (B, T−1), zero outside the response.

    Column t scores token t+1 of the left-padded prompt+response sequences. The distribution is
    softmax(logits / `temperature`), the one samples are drawn from (see the module docstring).
    Only the positions from the first response token on go through the LM head (`logits_to_keep`).
    """
    mask = response_mask[:, 1:]
    cols = mask.bool().any(0)
    start = int(cols.nonzero()[0]) if cols.any() else 0  # first column that scores a response token
    out = model(input_ids=input_ids, attention_mask=attention_mask,
                position_ids=position_ids_of(attention_mask), logits_to_keep=input_ids.shape[1] - start)
    logits = out.logits[:, :-1].float() / temperature
    tail = torch.log_softmax(logits, dim=-1).gather(-1, input_ids[:, start + 1:, None]).squeeze(-1)
    logp = torch.cat([tail.new_zeros(tail.shape[0], start), tail], dim=1)
    return logp * mask.to(logp.dtype)


def kl_per_sequence(logp: torch.Tensor, logp_ref: torch.Tensor, mask: torch.Tensor,
                    estimator: str = "k1") -> torch.Tensor:
    """Per-sequence estimate of KL(π ‖ π_ref) from tokens sampled from π (Schulman, 2020).

    k1 = Σ_t (log π − log π_ref), unbiased, can be negative;
    k3 = Σ_t [exp(log π_ref − log π) − 1 − (log π_ref − log π)], unbiased and ≥ 0 pointwise.
    `mask` (same shape) marks response tokens.
    """
    mask = mask.to(logp.dtype)
    log_ratio = (logp - logp_ref) * mask
    if estimator == "k1":
        return log_ratio.sum(-1)
    if estimator == "k3":
        return ((torch.exp(-log_ratio) - 1.0 + log_ratio) * mask).sum(-1)
    raise ValueError(f"unknown KL estimator {estimator!r}; valid: k1, k3")


def leave_one_out_advantages(rewards: torch.Tensor) -> torch.Tensor:
    """A_i = r_i − mean_{j≠i} r_j over the k samples of each prompt; `rewards` is (P, k)."""
    k = rewards.shape[-1]
    if k < 2:
        raise ValueError("the leave-one-out baseline needs at least 2 samples per prompt")
    return rewards - (rewards.sum(-1, keepdim=True) - rewards) / (k - 1)


def reinforce_loss(logp: torch.Tensor, logp_anchor: torch.Tensor, mask: torch.Tensor,
                   rewards: torch.Tensor, k: int, beta: float,
                   estimator: str = "k1") -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The loss of one REINFORCE step with a leave-one-out baseline (RLOO).

    Rows are grouped by prompt, k consecutive rows per prompt. Shaped reward per sequence:
    r − β·KL_anchor, the KL estimate detached (a reward, not a loss term); advantage: leave-one-out
    over the k samples of each prompt; loss = −mean(A · Σ_t log π). Returns the loss and the
    per-sequence shaped rewards, KL estimates and advantages.
    """
    kl = kl_per_sequence(logp.detach(), logp_anchor, mask, estimator)
    shaped = rewards.to(kl.dtype) - beta * kl
    advantages = leave_one_out_advantages(shaped.view(-1, k)).view(-1)
    loss = -(advantages * (logp * mask.to(logp.dtype)).sum(-1)).mean()
    return loss, {"kl": kl, "shaped": shaped, "advantages": advantages}


# ---- sampling ---------------------------------------------------------------------------------

def has_dropout(model: torch.nn.Module) -> bool:
    """Whether train mode would drop anything: a dropout module (LoRA's included) or an attention
    dropout probability in the config."""
    config = getattr(model, "config", None)
    return any(isinstance(m, torch.nn.Dropout) and m.p > 0 for m in model.modules()) or \
        any(float(getattr(config, name, 0.0) or 0.0) > 0
            for name in ("attention_dropout", "hidden_dropout", "resid_pdrop", "attn_pdrop"))


def reference_logprobs(policy: PreTrainedModel, ref: PreTrainedModel | None, batch: dict,
                        temperature: float) -> torch.Tensor:
    """Log-probs under a frozen reference; `ref=None` means the peft policy's base (adapters off)."""
    args = (batch["input_ids"], batch["attention_mask"], batch["response_mask"], temperature)
    with torch.no_grad():
        if ref is None:
            with policy.disable_adapter():
                return response_logprobs(policy, *args)
        return response_logprobs(ref, *args)


# ---- the loop ---------------------------------------------------------------------------------

def step_prompts(n: int, per_step: int, step: int, seed: int) -> list[int]:
    """Indices of the prompts of training step `step` (1-based): consecutive slices of a fresh
    permutation per epoch, a function of (seed, step) only so that a resumed run sees the same."""
    positions = range((step - 1) * per_step, step * per_step)
    perms: dict[int, np.ndarray] = {}
    out = []
    for i in positions:
        epoch = i // n
        if epoch not in perms:
            perms[epoch] = epoch_permutation(n, seed, epoch)
        out.append(int(perms[epoch][i % n]))
    return out


def _as_rewards(values, n: int, name: str) -> torch.Tensor:
    r = values.detach().float().cpu() if isinstance(values, torch.Tensor) else \
        torch.as_tensor(np.asarray(values, dtype=np.float32))
    r = r.reshape(-1)
    if r.numel() != n:
        raise ValueError(f"{name} returned {r.numel()} rewards for {n} samples")
    return r


def frozen_start(policy: PreTrainedModel) -> PreTrainedModel | None:
    """The policy's starting weights, frozen: a copy, or None for a LoRA policy, whose base under
    its fresh adapters is its start (`reference_logprobs` disables the adapters)."""
    if is_peft(policy):
        if not lora_is_fresh(policy):
            raise ValueError("a LoRA policy must start with fresh adapters (B = 0), its base being "
                             "its starting weights; pass reference and use anchor 'ema' otherwise")
        return None
    return copy.deepcopy(policy).requires_grad_(False).eval()


def kl_logprobs(policy: PreTrainedModel, batch: dict, reference: PreTrainedModel | None,
                anchor: PreTrainedModel | None, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probs of the batch's responses under the KL-to-init `reference` and the `anchor`, one
    forward pass each (one in all where they are the same model)."""
    logp_reference = reference_logprobs(policy, reference, batch, temperature)
    same = anchor is reference
    return logp_reference, logp_reference if same else reference_logprobs(policy, anchor, batch, temperature)


@dataclass
class Hooks:
    """What a caller hooks into `train_policy`: the evaluation (prompts, gold reward, a callback per
    eval step), resuming from a saved state and saving one. The runs module builds one per cached
    run (`lib.rl.runs.RLRuns.run`); a test or a benchmark passes what it needs."""

    eval_prompts: list[str] | None = None
    """the evaluation prompts (None: the first `prompts_per_step` training prompts)"""
    gold_fn: RewardFn | None = None
    """the gold reward, logged at evaluation steps only"""
    on_eval: Callable[[int, PreTrainedModel, dict], None] | None = None
    """called with (step, policy, eval record) at step 0, every `eval_every` steps and the last"""
    resume: dict | None = None
    """a saved state (`lib.rl.state.load_rl_state`) to go on from; the policy holds the initial weights"""
    checkpoint_every: int = 0
    """steps between two resumable states (0: the last step only, if `on_checkpoint` is set)"""
    on_checkpoint: Callable[[dict], None] | None = None
    """called with a resumable state (`lib.rl.state.state_of`)"""
    desc: str = "RL"
    """the progress bar's label"""


EVAL_KEYS = ("step", "proxy", "gold", "kl_init", "kl_anchor", "length", "samples", "gold_all", "texts", "kl_all")


@torch.no_grad()
def evaluate_policy(policy: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompts: list[str],
                    cfg: RLConfig, models: tuple[PreTrainedModel | None, PreTrainedModel | None],
                    reward_fn: RewardFn, gold_fn: RewardFn | None, step: int) -> dict:
    """`cfg.n_eval_samples` samples per prompt, drawn with the one eval seed, with their proxy
    reward, gold reward (logged only) and KL to init and to the anchor (k1, `models` = (reference,
    anchor)): one eval record."""
    batch = sample_batch(policy, tokenizer, prompts, cfg.n_eval_samples, cfg, step_seed(cfg.seed, -1))
    mask = batch["response_mask"][:, 1:]
    logp = response_logprobs(policy, batch["input_ids"], batch["attention_mask"], batch["response_mask"],
                             cfg.temperature)
    logp_init, logp_anchor = kl_logprobs(policy, batch, *models, cfg.temperature)
    n = len(batch["texts"])
    proxy = _as_rewards(reward_fn(batch["prompts"], batch["texts"]), n, "reward_fn")
    gold_all = None if gold_fn is None else _as_rewards(gold_fn(batch["prompts"], batch["texts"]), n,
                                                        "gold_fn").tolist()
    kl_all = kl_per_sequence(logp, logp_init, mask)
    return {"step": step, "proxy": float(proxy.mean()), "gold": None if gold_all is None else float(np.mean(gold_all)),
            "gold_all": gold_all, "texts": batch["texts"], "kl_all": kl_all.tolist(), "kl_init": float(kl_all.mean()),
            "kl_anchor": float(kl_per_sequence(logp, logp_anchor, mask).mean()),
            "length": float(mask.sum(-1).float().mean()), "samples": batch["texts"][:3]}


def prepare_policy(policy: PreTrainedModel, cfg: RLConfig, gradient_checkpointing: bool) -> PreTrainedModel:
    """Check the policy against `cfg.mode` (wrapping a plain model with fresh LoRA adapters), put it
    in eval mode (no dropout: the log-probs are those of the sampling distribution) and turn on
    activation checkpointing if asked."""
    if cfg.mode == "full" and is_peft(policy):
        raise ValueError("mode 'full' got a LoRA policy; use mode 'lora' or 'qlora'")
    if cfg.mode != "full" and not is_peft(policy):
        policy = wrap_lora(policy, cfg)
    if cfg.mode == "qlora" and not is_4bit(policy):
        raise ValueError("mode 'qlora' needs a policy loaded in 4-bit; use policy_for(path, cfg)")
    policy.eval()
    if gradient_checkpointing:
        if has_dropout(policy):
            raise ValueError("gradient checkpointing runs the loss in train mode, which needs a "
                             "policy without dropout (set its dropout probabilities to 0)")
        policy.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    return policy


def train_policy(policy: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompts: list[str],
                 reward_fn: RewardFn, cfg: RLConfig, *, reference: StateDict | None = None,
                 hooks: Hooks | None = None, gradient_checkpointing: bool = False) -> dict:
    """KL-regularized REINFORCE with a leave-one-out baseline for `cfg.steps` steps (in place).

    `policy` holds the *initial* weights (also when resuming from `hooks.resume`); lora/qlora modes
    wrap a plain model (`prepare_policy`). `reward_fn(prompts, texts)` is the proxy, the only
    training signal. `reference`: the weights the logged KL-to-init is measured against (default:
    the starting weights); the KL of the loss is to the anchor, the frozen start (`cfg.anchor`
    "init") or an EMA of the policy ("ema"). `hooks` evaluates, resumes and saves (`Hooks`).
    `gradient_checkpointing` recomputes activations in the backward pass (train mode: the same
    log-probs, as the policy has no dropout). Returns the history: per step `step, loss, proxy,
    kl_anchor, kl_init`, and per eval `eval_<key>` for each of `EVAL_KEYS`.
    """
    if not prompts:
        raise ValueError("no training prompts")
    hooks = hooks or Hooks()
    policy = prepare_policy(policy, cfg, gradient_checkpointing)
    device = next(policy.parameters()).device
    # the frozen models the loss and the logs compare the policy with
    needs_start = reference is None or cfg.anchor == "init"
    start = frozen_start(policy) if needs_start else None
    kl_reference = start if reference is None else plain_model_like(policy, reference)
    ema = Ema(policy, cfg.ema_mu) if cfg.anchor == "ema" else None
    anchor = start if ema is None else ema.model
    params = trainable_named_parameters(policy)
    optimizer = torch.optim.Adam(list(params.values()), lr=cfg.lr)
    history = {k: [] for k in ("step", "loss", "proxy", "kl_anchor", "kl_init", *(f"eval_{k}" for k in EVAL_KEYS))}
    start_step = 0
    if hooks.resume is not None:
        restore(hooks.resume, policy, optimizer, ema, cfg)
        start_step, history = int(hooks.resume["step"]), copy.deepcopy(hooks.resume["history"])
    eval_prompts = list(hooks.eval_prompts) if hooks.eval_prompts is not None else prompts[: cfg.prompts_per_step]

    def log_eval(step: int) -> None:
        record = evaluate_policy(policy, tokenizer, eval_prompts, cfg, (kl_reference, anchor), reward_fn,
                                 hooks.gold_fn, step)
        for key in EVAL_KEYS:
            history[f"eval_{key}"].append(record[key])
        if hooks.on_eval is not None:
            hooks.on_eval(step, policy, record)
            policy.eval()

    if start_step == 0:
        log_eval(0)
    for step in tqdm(range(start_step + 1, cfg.steps + 1), desc=hooks.desc, leave=False, mininterval=5):
        # sample k completions for each of this step's prompts (a function of (seed, step) only)
        idx = step_prompts(len(prompts), cfg.prompts_per_step, step, cfg.seed)
        batch = sample_batch(policy, tokenizer, [prompts[i] for i in idx], cfg.k, cfg, step_seed(cfg.seed, step))
        rewards = _as_rewards(reward_fn(batch["prompts"], batch["texts"]), len(batch["texts"]), "reward_fn").to(device)
        logp_init, logp_anchor = kl_logprobs(policy, batch, kl_reference, anchor, cfg.temperature)
        mask = batch["response_mask"][:, 1:]
        # the policy's log-probs, with gradients (train mode only for activation checkpointing)
        policy.train(gradient_checkpointing)
        logp = response_logprobs(policy, batch["input_ids"], batch["attention_mask"], batch["response_mask"],
                                 cfg.temperature)
        policy.eval()
        # REINFORCE on the KL-shaped reward, leave-one-out baseline; clip, step, zero; move the EMA
        loss, stats = reinforce_loss(logp, logp_anchor, mask, rewards, cfg.k, cfg.beta, cfg.kl_estimator)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(list(params.values()), cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if ema is not None:
            ema.update(policy)
        # log; evaluate and save a resumable state when due
        kl_init = stats["kl"] if kl_reference is anchor else \
            kl_per_sequence(logp.detach(), logp_init, mask, cfg.kl_estimator)
        for key, value in (("step", step), ("loss", loss.item()), ("proxy", float(rewards.mean())),
                           ("kl_anchor", float(stats["kl"].mean())), ("kl_init", float(kl_init.mean()))):
            history[key].append(value)
        if step % cfg.eval_every == 0 or step == cfg.steps:
            log_eval(step)
        every = hooks.checkpoint_every
        if hooks.on_checkpoint is not None and (step == cfg.steps or (every and step % every == 0)):
            hooks.on_checkpoint(state_of(step, policy, optimizer, ema, history, cfg))
    policy.eval()
    return history
