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
(seed, s), and a run resumed from a saved state (`state_of`, `save_rl_state`, `load_rl_state`:
safetensors and JSON only) ends with weights bit-identical to an uninterrupted run. The
gold reward is only ever computed for logging at evaluation steps.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from tqdm import tqdm
from transformers import AutoModelForCausalLM, PreTrainedModel, PreTrainedTokenizerBase

from .config import RLConfig
from .models import is_4bit

RewardFn = Callable[[list[str], list[str]], "np.ndarray | torch.Tensor"]
# Fields that do not change the trained weights: a run may be resumed with other values.
_RESUMABLE_FIELDS = ("steps", "eval_every", "n_eval_samples")
_EVAL_SEED_OFFSET = 999_983  # the eval samples' seed, far from any training step's


# ---- pure functions ---------------------------------------------------------------------------

def position_ids_of(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions of a left-padded batch, as `generate` computes them (padding at position 0)."""
    return (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)


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

def step_seed(seed: int, step: int) -> int:
    """The sampling seed of training step `step` (the eval samples use `step_seed(seed, -1)`)."""
    return seed * 1_000_003 + (step if step >= 0 else _EVAL_SEED_OFFSET)


def response_mask_of(new_tokens: torch.Tensor, eos_id: int) -> torch.Tensor:
    """1 on generated tokens up to and including the first EOS, 0 on the padding after it."""
    is_eos = (new_tokens == eos_id).long()
    return ((is_eos.cumsum(-1) - is_eos) == 0).long()


@torch.no_grad()
def sample_batch(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str],
                 k: int, cfg: RLConfig, generator_seed: int) -> dict:
    """`k` samples for each prompt in one batched `generate` call (rows prompt-major).

    Returns left-padded `input_ids` (prompt + response), `attention_mask` (0 on padding, including
    after the first EOS), `response_mask` (the generated tokens that are not padding), the
    flattened `prompts` and the decoded `texts`.
    """
    model.eval()
    device = next(model.parameters()).device
    flat = [p for p in prompts for _ in range(k)]
    if tokenizer.padding_side != "left":
        raise ValueError("sampling needs a tokenizer that pads on the left")
    enc = tokenizer(flat, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
    torch.manual_seed(generator_seed)
    out = model.generate(**enc, do_sample=True, temperature=cfg.temperature, top_k=0, top_p=1.0,
                         max_new_tokens=cfg.max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    width = enc["input_ids"].shape[1]
    new = out[:, width:]
    generated = response_mask_of(new, tokenizer.eos_token_id)
    texts = [t.strip() for t in tokenizer.batch_decode(new.masked_fill(generated == 0,
                                                                       tokenizer.pad_token_id),
                                                       skip_special_tokens=True)]
    zeros = torch.zeros_like(enc["attention_mask"])
    return {"input_ids": out, "attention_mask": torch.cat([enc["attention_mask"], generated], 1),
            "response_mask": torch.cat([zeros, generated], 1), "prompts": flat, "texts": texts}


# ---- models: LoRA, the init reference, the EMA anchor ---------------------------------------------

def is_peft(model: torch.nn.Module) -> bool:
    return hasattr(model, "get_base_model") and hasattr(model, "peft_config")


def _lora_config(cfg: RLConfig, policy: PreTrainedModel):
    from peft import LoraConfig

    from .models import lora_targets

    return LoraConfig(task_type="CAUSAL_LM", r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                      lora_dropout=0.0, target_modules=lora_targets(policy))


def wrap_lora(policy: PreTrainedModel, cfg: RLConfig) -> PreTrainedModel:
    """The policy with fresh LoRA adapters (B = 0, A seeded by `cfg.seed`) on every linear layer
    of the backbone (`lib.models.lora_targets`)."""
    from peft import get_peft_model, prepare_model_for_kbit_training

    if cfg.mode == "qlora":
        if not is_4bit(policy):
            raise ValueError("mode 'qlora' needs a policy loaded in 4-bit; use policy_for(path, cfg)")
        policy = prepare_model_for_kbit_training(policy, use_gradient_checkpointing=False)
    torch.manual_seed(cfg.seed)
    return get_peft_model(policy, _lora_config(cfg, policy))


def policy_for(path: Path | str, cfg: RLConfig, device: str = "cpu") -> PreTrainedModel:
    """A causal LM loaded from a saved directory, ready for `cfg.mode`: full weights, or fresh
    LoRA adapters on a float (lora) or NF4 4-bit base (qlora, compute in float32)."""
    from .models import from_pretrained

    model = from_pretrained(AutoModelForCausalLM, path, load_in_4bit=cfg.mode == "qlora",
                            double_quant=False, device=device)
    return model if cfg.mode == "full" else wrap_lora(model, cfg)


def policy_from_state(path: Path | str, state: dict[str, torch.Tensor], cfg: RLConfig,
                      device: str = "cpu") -> PreTrainedModel:
    """`policy_for(path, cfg)` with the full weights `state` in place of those saved at `path`
    (e.g. WARP's LITI model). For lora/qlora, `state` becomes the base under fresh adapters; for
    qlora it is quantized to NF4 like any saved model (so the base holds `state` up to NF4 error)."""
    import tempfile

    from .models import from_pretrained

    if cfg.mode == "full":
        policy = policy_for(path, cfg, device)
        _load_full_weights(policy, state)
        return policy
    plain = from_pretrained(AutoModelForCausalLM, path)
    _load_full_weights(plain, state)
    with tempfile.TemporaryDirectory() as tmp:
        plain.save_pretrained(tmp, safe_serialization=True)
        return policy_for(tmp, cfg, device)


def _lora_layers(model: PreTrainedModel) -> dict[str, torch.nn.Module]:
    """The LoRA-adapted linear layers of a peft model, by name inside the base model."""
    return {name: m for name, m in model.get_base_model().named_modules()
            if hasattr(m, "base_layer") and hasattr(m, "lora_A")}


def merged_lora_weights(model: PreTrainedModel) -> dict[str, torch.Tensor]:
    """W + B·A·scale (float32) of each adapted layer of a peft model, NF4 bases dequantized.

    The same weights as `lib.rm.lora_merged_state_dict`, restricted to the adapted layers (the
    only ones that change during LoRA training).
    """
    from .rm import merged_lora_weight

    return {f"{name}.weight": merged_lora_weight(m) for name, m in _lora_layers(model).items()}


def plain_model_like(policy: PreTrainedModel, state: dict[str, torch.Tensor]) -> PreTrainedModel:
    """A frozen float32 causal LM of the policy's architecture carrying the full weights `state`
    (e.g. `lib.rm.lora_merged_state_dict(policy)`), on the policy's device."""
    inner = policy.get_base_model() if is_peft(policy) else policy
    config = copy.deepcopy(inner.config)
    for attr in ("quantization_config", "_pre_quantization_dtype"):
        if hasattr(config, attr):
            delattr(config, attr)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = getattr(config, "tie_word_embeddings", False)
    missing = [k for k in missing if not (tied and k == "lm_head.weight")]
    if missing or unexpected:
        raise ValueError(f"state dict does not fit the policy: missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]}")
    return model.to(next(policy.parameters()).device).requires_grad_(False).eval()


class EmaAnchor:
    """WARP's anchor: θ_ema ← (1−μ)·θ_ema + μ·θ after every optimizer step, from θ_ema = θ_0.

    Full policies: a frozen copy whose floating parameters are moved towards the policy's.
    LoRA policies: a plain float32 model carrying the merged weights (W + B·A·scale) of the policy,
    whose adapted layers track the EMA of the policy's *merged* weights (the base W is frozen,
    so this is W + EMA(B·A·scale); an EMA of A and B separately would not be). For QLoRA the base
    is the dequantized NF4 weight, so the anchor computes in float32 with the same W.
    """

    def __init__(self, policy: PreTrainedModel, mu: float):
        from .rm import lora_merged_state_dict

        self.mu, self.lora = mu, is_peft(policy)
        if self.lora:
            self.model = plain_model_like(policy, lora_merged_state_dict(policy))
            keys = list(merged_lora_weights(policy))
        else:
            self.model = copy.deepcopy(policy).requires_grad_(False).eval()
            keys = [n for n, p in self.model.named_parameters() if p.is_floating_point()]
        params = dict(self.model.named_parameters())
        self.params = {k: params[k] for k in keys}

    def targets(self, policy: PreTrainedModel) -> dict[str, torch.Tensor]:
        """The policy weights the EMA tracks (merged weights of adapted layers for LoRA)."""
        if self.lora:
            return merged_lora_weights(policy)
        return {n: p.detach() for n, p in policy.named_parameters() if n in self.params}

    @torch.no_grad()
    def update(self, policy: PreTrainedModel) -> None:
        targets = self.targets(policy)
        keys = list(self.params)
        torch._foreach_lerp_([self.params[k].data for k in keys], [targets[k] for k in keys], self.mu)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: p.detach().clone().contiguous() for k, p in self.params.items()}

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if set(state) != set(self.params):
            raise ValueError("EMA anchor state does not match the policy's parameters")
        for k, p in self.params.items():
            p.data.copy_(state[k])


def has_dropout(model: torch.nn.Module) -> bool:
    """Whether train mode would drop anything: a dropout module (LoRA's included) or an attention
    dropout probability in the config."""
    config = getattr(model, "config", None)
    return any(isinstance(m, torch.nn.Dropout) and m.p > 0 for m in model.modules()) or \
        any(float(getattr(config, name, 0.0) or 0.0) > 0
            for name in ("attention_dropout", "hidden_dropout", "resid_pdrop", "attn_pdrop"))


def _lora_is_fresh(policy: PreTrainedModel) -> bool:
    return all(bool((m.lora_B[a].weight == 0).all()) for m in _lora_layers(policy).values()
               for a in m.active_adapters)


def _reference_logprobs(policy: PreTrainedModel, ref: PreTrainedModel | None, batch: dict,
                        temperature: float) -> torch.Tensor:
    """Log-probs under a frozen reference; `ref=None` means the peft policy's base (adapters off)."""
    args = (batch["input_ids"], batch["attention_mask"], batch["response_mask"], temperature)
    with torch.no_grad():
        if ref is None:
            with policy.disable_adapter():
                return response_logprobs(policy, *args)
        return response_logprobs(ref, *args)


# ---- resumable state --------------------------------------------------------------------------

def trainable_named_parameters(policy: PreTrainedModel) -> dict[str, torch.nn.Parameter]:
    """The policy's trainable parameters by name, in a stable order (tied weights once)."""
    return {n: p for n, p in policy.named_parameters() if p.requires_grad}


def state_of(step: int, policy: PreTrainedModel, optimizer: torch.optim.Optimizer,
             anchor: EmaAnchor | None, history: dict, cfg: RLConfig) -> dict:
    """A snapshot to resume from after `step`: trainable weights, Adam moments and step counts
    (keyed `<param name>.<field>`), EMA anchor weights, history and config (copies)."""
    params = trainable_named_parameters(policy)
    index = {id(p): n for n, p in params.items()}
    opt_state = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            for field, value in optimizer.state.get(p, {}).items():
                opt_state[f"{index[id(p)]}.{field}"] = value.detach().clone().contiguous()
    return {"step": step,
            "policy": {n: p.detach().clone().contiguous() for n, p in params.items()},
            "optimizer": opt_state,
            "anchor": anchor.state_dict() if anchor is not None else {},
            "history": copy.deepcopy(history), "config": asdict(cfg)}


def save_rl_state(path: Path | str, state: dict) -> None:
    """Write `state` to the directory `path`: tensors in `tensors.safetensors`, the rest in
    `state.json` (written last, each file replaced atomically). The tensors file records its step,
    so a run killed between the two writes leaves a pair that `load_rl_state` refuses."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tensors = {f"{part}/{k}": v.detach().cpu().contiguous()
               for part in ("policy", "optimizer", "anchor") for k, v in state[part].items()}
    save_file(tensors, str(path / "tensors.safetensors.tmp"), metadata={"step": str(state["step"])})
    os.replace(path / "tensors.safetensors.tmp", path / "tensors.safetensors")
    meta = {k: state[k] for k in ("step", "history", "config")}
    (path / "state.json.tmp").write_text(json.dumps(meta))
    os.replace(path / "state.json.tmp", path / "state.json")


class StaleRLState(ValueError):
    """A saved RL state whose files do not belong together (a run killed while saving it)."""


def load_rl_state(path: Path | str) -> dict:
    """Read back a state written by `save_rl_state`."""
    path = Path(path)
    meta = json.loads((path / "state.json").read_text())
    with safe_open(str(path / "tensors.safetensors"), framework="pt") as f:
        step = (f.metadata() or {}).get("step")
    if step != str(meta["step"]):
        raise StaleRLState(f"RL state in {path}: state.json is at step {meta['step']} but its "
                           f"tensors are at step {step}")
    state = {**meta, "policy": {}, "optimizer": {}, "anchor": {}}
    for key, value in load_file(str(path / "tensors.safetensors")).items():
        part, name = key.split("/", 1)
        state[part][name] = value
    return state


def _restore(state: dict, policy: PreTrainedModel, optimizer: torch.optim.Optimizer,
             anchor: EmaAnchor | None, cfg: RLConfig) -> None:
    saved = {k: v for k, v in state["config"].items() if k not in _RESUMABLE_FIELDS}
    now = {k: v for k, v in asdict(cfg).items() if k not in _RESUMABLE_FIELDS}
    if saved != now:
        diff = sorted(k for k in now if saved.get(k) != now[k])
        raise ValueError(f"cannot resume: the saved run has other settings for {diff}")
    params = trainable_named_parameters(policy)
    if set(state["policy"]) != set(params):
        raise ValueError("cannot resume: the saved trainable parameters differ from the policy's")
    with torch.no_grad():
        for n, p in params.items():
            p.copy_(state["policy"][n])
    per_param: dict[int, dict] = {}
    for i, n in enumerate(params):
        fields = {f: state["optimizer"][f"{n}.{f}"] for f in ("step", "exp_avg", "exp_avg_sq")
                  if f"{n}.{f}" in state["optimizer"]}
        if fields:
            per_param[i] = fields
    optimizer.load_state_dict({"state": per_param,
                               "param_groups": optimizer.state_dict()["param_groups"]})
    if anchor is not None:
        anchor.load_state_dict(state["anchor"])


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
            perms[epoch] = np.random.default_rng([seed, epoch]).permutation(n)
        out.append(int(perms[epoch][i % n]))
    return out


def _as_rewards(values, n: int, name: str) -> torch.Tensor:
    r = values.detach().float().cpu() if isinstance(values, torch.Tensor) else \
        torch.as_tensor(np.asarray(values, dtype=np.float32))
    r = r.reshape(-1)
    if r.numel() != n:
        raise ValueError(f"{name} returned {r.numel()} rewards for {n} samples")
    return r


def train_policy(policy: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompts: list[str],
                 reward_fn: RewardFn, cfg: RLConfig, *, eval_prompts: list[str] | None = None,
                 gold_fn: RewardFn | None = None, init_state: dict[str, torch.Tensor] | None = None,
                 on_eval: Callable[[int, PreTrainedModel, dict], None] | None = None,
                 resume: dict | None = None, checkpoint_every: int = 0,
                 on_checkpoint: Callable[[dict], None] | None = None,
                 gradient_checkpointing: bool = False, desc: str = "RL") -> dict:
    """KL-regularized REINFORCE with a leave-one-out baseline for `cfg.steps` steps (in place).

    `policy` must hold the *initial* weights (also when resuming: `resume` restores the rest). For
    `cfg.mode` "lora"/"qlora" a plain model is wrapped with fresh adapters (`wrap_lora`; qlora
    needs a 4-bit model), so pass one from `policy_for` to keep a handle on the trained model; the
    trained model is also what `on_eval` receives.

    - `reward_fn(prompts, texts)`: the proxy reward, the only reward used for training.
    - `gold_fn(prompts, texts)`: logged at evaluation steps only; it never influences training.
    - `init_state`: full weights θ_init the KL-to-init is measured against, e.g. the SFT policy
      when a WARP iteration starts elsewhere (default: the policy's starting weights). Anchor
      "init" is always the policy's starting weights; a LoRA policy using them must start with
      fresh adapters (B = 0), its base model then being the starting policy.
    - Every `cfg.eval_every` steps, and at step 0 and the last step, `n_eval_samples` samples per
      eval prompt (default: the first `prompts_per_step` prompts) are drawn with one fixed seed and
      scored; `on_eval(step, policy, record)` is then called (e.g. to save a checkpoint).
    - Every `checkpoint_every` steps (and at the last), `on_checkpoint(state)` gets `state_of(...)`,
      which `save_rl_state` writes and `resume=load_rl_state(...)` continues from, bit-identically.
    - `gradient_checkpointing`: recompute activations in the backward pass (memory, not math).
      Transformers checkpoints in train mode only, so the loss's forward pass runs in train mode,
      which computes the same log-probs as eval mode because the policy has no dropout (checked).

    Returns the history: per training step `step, loss, proxy, kl_anchor, kl_init` (KL estimates
    with `cfg.kl_estimator`, mean per sequence; they coincide with anchor "init" and no
    `init_state`), and per eval
    `eval_step, eval_proxy, eval_gold, eval_kl_init, eval_kl_anchor` (k1), `eval_length` (response
    tokens), `eval_samples` (a few texts), `eval_texts` (every eval sample, prompt-major, for win
    rates between policies on the same prompts) and `eval_gold_all` (their gold rewards).
    """
    if cfg.mode == "full" and is_peft(policy):
        raise ValueError("mode 'full' got a LoRA policy; use mode 'lora' or 'qlora'")
    if cfg.mode != "full" and not is_peft(policy):
        policy = wrap_lora(policy, cfg)
    if cfg.mode == "qlora" and not is_4bit(policy):
        raise ValueError("mode 'qlora' needs a policy loaded in 4-bit; use policy_for(path, cfg)")
    if not prompts:
        raise ValueError("no training prompts")
    policy.eval()  # no dropout: the log-probs are those of the sampling distribution
    device = next(policy.parameters()).device
    if gradient_checkpointing:
        if has_dropout(policy):
            raise ValueError("gradient checkpointing runs the loss in train mode, which needs a "
                             "policy without dropout (set its dropout probabilities to 0)")
        policy.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})

    # Frozen references, by name: "start" is the policy's starting weights (for a LoRA policy, its
    # base with the adapters disabled, None below), "init" the weights `init_state`, "ema" the EMA.
    init_name = "start" if init_state is None else "init"
    anchor_name = "start" if cfg.anchor == "init" else "ema"
    refs: dict[str, PreTrainedModel | None] = {}
    if "start" in (init_name, anchor_name):
        if is_peft(policy) and not _lora_is_fresh(policy):
            raise ValueError("a LoRA policy must start with fresh adapters (B = 0), its base being "
                             "its starting weights; pass init_state and use anchor 'ema' otherwise")
        refs["start"] = None if is_peft(policy) else copy.deepcopy(policy).requires_grad_(False).eval()
    if init_state is not None:
        refs["init"] = plain_model_like(policy, init_state)
    anchor = EmaAnchor(policy, cfg.ema_mu) if cfg.anchor == "ema" else None
    if anchor is not None:
        refs["ema"] = anchor.model

    params = trainable_named_parameters(policy)
    optimizer = torch.optim.Adam(list(params.values()), lr=cfg.lr)
    history: dict[str, list] = {k: [] for k in (
        "step", "loss", "proxy", "kl_anchor", "kl_init", "eval_step", "eval_proxy", "eval_gold",
        "eval_kl_init", "eval_kl_anchor", "eval_length", "eval_samples", "eval_gold_all",
        "eval_texts")}
    start = 0
    if resume is not None:
        _restore(resume, policy, optimizer, anchor, cfg)
        start, history = int(resume["step"]), copy.deepcopy(resume["history"])
    eval_prompts = list(eval_prompts) if eval_prompts is not None else prompts[: cfg.prompts_per_step]

    def logprobs_of(batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Reference log-probs: (init, anchor), each reference run once."""
        logp = {name: _reference_logprobs(policy, model, batch, cfg.temperature)
                for name, model in refs.items()}
        return logp[init_name], logp[anchor_name]

    def evaluate(step: int) -> None:
        batch = sample_batch(policy, tokenizer, eval_prompts, cfg.n_eval_samples, cfg,
                             step_seed(cfg.seed, -1))
        mask = batch["response_mask"][:, 1:]
        with torch.no_grad():
            logp = response_logprobs(policy, batch["input_ids"], batch["attention_mask"],
                                     batch["response_mask"], cfg.temperature)
            logp_init, logp_anchor = logprobs_of(batch)
        proxy = _as_rewards(reward_fn(batch["prompts"], batch["texts"]), len(batch["texts"]),
                            "reward_fn")
        gold, gold_all = None, None
        if gold_fn is not None:
            gold_all = _as_rewards(gold_fn(batch["prompts"], batch["texts"]), len(batch["texts"]),
                                   "gold_fn").tolist()
            gold = float(np.mean(gold_all))
        record = {"step": step, "proxy": float(proxy.mean()), "gold": gold, "gold_all": gold_all,
                  "texts": batch["texts"],
                  "kl_init": float(kl_per_sequence(logp, logp_init, mask).mean()),
                  "kl_anchor": float(kl_per_sequence(logp, logp_anchor, mask).mean()),
                  "length": float(mask.sum(-1).float().mean()), "samples": batch["texts"][:3]}
        for key in ("step", "proxy", "gold", "kl_init", "kl_anchor", "length", "samples",
                    "gold_all", "texts"):
            history[f"eval_{key}"].append(record[key])
        if on_eval is not None:
            on_eval(step, policy, record)
            policy.eval()

    if start == 0:
        evaluate(0)
    for step in tqdm(range(start + 1, cfg.steps + 1), desc=desc, leave=False, mininterval=5):
        idx = step_prompts(len(prompts), cfg.prompts_per_step, step, cfg.seed)
        batch = sample_batch(policy, tokenizer, [prompts[i] for i in idx], cfg.k, cfg,
                             step_seed(cfg.seed, step))
        rewards = _as_rewards(reward_fn(batch["prompts"], batch["texts"]), len(batch["texts"]),
                              "reward_fn").to(device)
        logp_init, logp_anchor = logprobs_of(batch)
        mask = batch["response_mask"][:, 1:]
        policy.train(gradient_checkpointing)  # see the docstring: same log-probs either way
        logp = response_logprobs(policy, batch["input_ids"], batch["attention_mask"],
                                 batch["response_mask"], cfg.temperature)
        policy.eval()
        loss, stats = reinforce_loss(logp, logp_anchor, mask, rewards, cfg.k, cfg.beta,
                                     cfg.kl_estimator)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(list(params.values()), cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if anchor is not None:
            anchor.update(policy)

        kl_init = stats["kl"] if init_name == anchor_name else \
            kl_per_sequence(logp.detach(), logp_init, mask, cfg.kl_estimator)
        history["step"].append(step)
        history["loss"].append(loss.item())
        history["proxy"].append(float(rewards.mean()))
        history["kl_anchor"].append(float(stats["kl"].mean()))
        history["kl_init"].append(float(kl_init.mean()))
        if step % cfg.eval_every == 0 or step == cfg.steps:
            evaluate(step)
        if on_checkpoint is not None and (step == cfg.steps or
                                          (checkpoint_every and step % checkpoint_every == 0)):
            on_checkpoint(state_of(step, policy, optimizer, anchor, history, cfg))
    policy.eval()
    return history


def _load_full_weights(model: PreTrainedModel, state: dict[str, torch.Tensor]) -> None:
    """Load full weights into a plain causal LM (a tied output embedding may be absent)."""
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not (k == "lm_head.weight" and model.config.tie_word_embeddings)]
    if missing or unexpected:
        raise ValueError(f"state dict does not fit the policy: missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]}")


# ---- cached runs of a pipeline ----------------------------------------------------------------

# Bump when training changes in a way the config does not show, so cached runs are retrained.
RL_VERSION = 1


class RLRuns:
    """Cached RL fine-tunings of a pipeline's SFT policy against the RMs of a `RewardModels`.

    The reward is WARM of some pool members (their uniform weight average; one member: that RM)
    or ENS of them (the mean of their rewards). Prompts are the first `rl.n_prompts` SFT-train
    posts; every eval step samples the first `rl.n_eval_prompts` SFT-validation posts with one fixed
    seed, so policies and steps are compared on the same prompts. A killed run resumes from its
    last eval step (states under `<cache>/partial/`, safetensors + JSON) and ends bit-identical.
    """

    def __init__(self, pipeline, rms):
        from . import data as D

        self.pl, self.rms, self.setup = pipeline, rms, pipeline.profile.rl
        sft = pipeline.world.sft
        train = sft["train"].select(range(min(self.setup.n_prompts, len(sft["train"]))))
        val = sft["validation"].select(range(min(self.setup.n_eval_prompts, len(sft["validation"]))))
        self.prompts, self.eval_prompts = D.prompts_of(train), D.prompts_of(val)
        self._post_of = dict(zip(self.prompts + self.eval_prompts, list(train["post"]) + list(val["post"])))

    def gold_fn(self, prompts: list[str], texts: list[str]) -> np.ndarray:
        """The gold reward (the world's exact one, or the control RM): logged, never trained on."""
        return self.pl.gold(prompts, [self._post_of[p] for p in prompts], texts)

    def reward_fn(self, members: Sequence, kind: str = "warm") -> RewardFn:
        """The proxy reward of WARM (`kind="warm"`) or ENS (`"ens"`) of the pool `members`."""
        from .rm import encode, score_sequences

        if kind not in ("warm", "ens"):
            raise ValueError(f"unknown reward kind {kind!r}; valid: warm, ens")
        states = [self.rms.warm(members)] if kind == "warm" else [self.rms.state(c) for c in members]
        models = [self.rms.model_of(s) for s in states]
        tok, max_length = self.pl.tokenizer, self.pl.profile.model.max_length

        def reward(prompts: list[str], texts: list[str]) -> np.ndarray:
            seqs = encode(tok, prompts, texts, max_length)
            return np.mean([score_sequences(m, seqs, tok.pad_token_id) for m in models], axis=0)
        return reward

    def key(self, members: Sequence, kind: str, cfg: RLConfig, init_key: Any = None) -> dict:
        return {"sft": self.pl.sft_key, "reward": {"kind": kind, "rms": [self.rms.rm_key(c) for c in members]},
                "rl": cfg, "n_prompts": self.setup.n_prompts, "n_eval_prompts": self.setup.n_eval_prompts,
                "version": RL_VERSION, **({} if self.pl.gold_key is None else {"gold": self.pl.gold_key}),
                **({} if init_key is None else {"init": init_key})}

    def finished(self, members: Sequence, cfg: RLConfig, kind: str = "warm", init_key: Any = None):
        """The artifact of a run that is already built, else None (nothing is trained)."""
        return self.pl.cache.load("rl", self.key(members, kind, cfg, init_key))

    def run(self, members: Sequence, cfg: RLConfig | None = None, kind: str = "warm",
            desc: str = "RL", init: tuple[Any, dict[str, torch.Tensor]] | None = None):
        """Train (or read back) the policy of `cfg` against WARM/ENS of `members`: its history and
        its weights at every eval step (`checkpoint-<step>/policy.safetensors`, full weights).

        `init = (init_key, state)` starts from the full weights `state` instead of the SFT policy
        (e.g. WARP's LITI model; for lora/qlora, `state` is the base under fresh adapters, see
        `policy_from_state`); `init_key` names how they were made, for the cache. The logged KL to
        init is always to the SFT policy.
        """
        from .rm import merged_state_dict

        cfg = cfg or self.setup.run
        key = self.key(members, kind, cfg, None if init is None else init[0])
        partial = self.pl.cache.root / "partial" / self.pl.cache.key("rl", key)

        def build(tmp: Path) -> dict:
            import shutil

            device = self.pl.profile.device
            policy = policy_for(self.pl.model_path("sft"), cfg, device=device) if init is None \
                else policy_from_state(self.pl.model_path("sft"), init[1], cfg, device=device)
            resume = None
            if (partial / "state" / "state.json").exists():
                try:
                    resume = load_rl_state(partial / "state")
                except (StaleRLState, OSError, ValueError, json.JSONDecodeError) as err:
                    print(f"[rl] {desc}: discarding an unusable saved state ({err}); starting over")
                    shutil.rmtree(partial, ignore_errors=True)

            def on_eval(step: int, model: PreTrainedModel, record: dict) -> None:
                weights = merged_state_dict(model)
                if getattr(model.config, "tie_word_embeddings", False):
                    weights.pop("lm_head.weight", None)  # tied to the input embeddings
                out = partial / f"checkpoint-{step}"
                out.mkdir(parents=True, exist_ok=True)
                save_file(weights, str(out / "policy.safetensors.tmp"))
                os.replace(out / "policy.safetensors.tmp", out / "policy.safetensors")

            history = train_policy(policy, self.pl.tokenizer, self.prompts,
                                   self.reward_fn(members, kind), cfg, eval_prompts=self.eval_prompts,
                                   gold_fn=self.gold_fn, on_eval=on_eval, resume=resume,
                                   init_state=None if init is None else self.sft_state(),
                                   checkpoint_every=cfg.eval_every,
                                   on_checkpoint=lambda state: save_rl_state(partial / "state", state),
                                   gradient_checkpointing=self.pl.profile.gradient_checkpointing,
                                   desc=desc)
            for ckpt in sorted(partial.glob("checkpoint-*")):
                shutil.move(str(ckpt), str(tmp / ckpt.name))
            shutil.rmtree(partial, ignore_errors=True)
            return {"history": history}

        return self.pl.cache.stage("rl", key, build)

    def sft_state(self) -> dict[str, torch.Tensor]:
        """Full weights of the SFT policy (the tied output embedding left out)."""
        return load_file(str(self.pl.model_path("sft") / "model.safetensors"))

    @torch.no_grad()
    def evaluate(self, state: dict[str, torch.Tensor], members: Sequence, kind: str = "warm",
                 cfg: RLConfig | None = None) -> dict[str, float]:
        """Proxy reward (WARM/ENS of `members`), gold reward and KL to the SFT policy (k1) of the
        policy with full weights `state`, on the eval prompts with the eval seed of the RL runs."""
        cfg = cfg or self.setup.run
        if getattr(self, "_sft_model", None) is None:
            self._sft_model = policy_for(self.pl.model_path("sft"), replace(cfg, mode="full"),
                                         device=self.pl.profile.device).eval()
            self._probe = copy.deepcopy(self._sft_model)
            self._rewards: dict = {}
        _load_full_weights(self._probe, state)
        batch = sample_batch(self._probe, self.pl.tokenizer, self.eval_prompts, cfg.n_eval_samples,
                             cfg, step_seed(cfg.seed, -1))
        args = (batch["input_ids"], batch["attention_mask"], batch["response_mask"], cfg.temperature)
        kl = kl_per_sequence(response_logprobs(self._probe, *args), response_logprobs(self._sft_model, *args),
                             batch["response_mask"][:, 1:])
        reward_key = json.dumps([self.rms.rm_key(c) for c in members], default=str) + kind
        if reward_key not in self._rewards:
            self._rewards[reward_key] = self.reward_fn(members, kind)
        proxy = self._rewards[reward_key](batch["prompts"], batch["texts"])
        gold = self.gold_fn(batch["prompts"], batch["texts"])
        return {"proxy": float(np.mean(proxy)), "gold": float(np.mean(gold)), "kl": float(kl.mean()),
                "gold_all": gold.reshape(len(self.eval_prompts), cfg.n_eval_samples)}

    @staticmethod
    def history(art) -> dict:
        return json.loads((art.path / "meta.json").read_text())["history"]

    @staticmethod
    def start_state(art) -> dict[str, torch.Tensor]:
        """Full weights the run `art` started from (its step-0 checkpoint): the SFT policy or the
        given init, for QLoRA as quantized to NF4. Task vectors taken from here hold what RL
        learned, and nothing of the quantization error that all runs from one init share."""
        return RLRuns.policy_state(art, 0)

    @staticmethod
    def policy_state(art, step: int | None = None) -> dict[str, torch.Tensor]:
        """Full weights of the policy at eval step `step` (default: the last)."""
        steps = sorted(int(p.name.split("-")[1]) for p in art.path.glob("checkpoint-*"))
        step = steps[-1] if step is None else step
        if step not in steps:
            raise ValueError(f"RL run {art.key} keeps no checkpoint at step {step}; it keeps {steps}")
        return load_file(str(art.path / f"checkpoint-{step}" / "policy.safetensors"))
