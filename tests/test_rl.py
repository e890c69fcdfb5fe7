import math

import bitsandbytes.functional as bnbf
import pytest
import torch
from peft import LoraConfig, get_peft_model
from toy import CFG, PROMPTS, letters

from lib.config import RLConfig
from lib.models.ema import Ema
from lib.models.lora import lora_merged_state_dict, merged_state_dict
from lib.models.models import save_model, tiny_llama
from lib.models.policy import policy_for, policy_from_state
from lib.models.sampling import sample_batch
from lib.rl.rl import Hooks, kl_per_sequence, leave_one_out_advantages, reinforce_loss, response_logprobs, train_policy
from lib.rl.state import load_rl_state, save_rl_state

FAST = dict(steps=4, prompts_per_step=2, k=2, lr=1e-2, max_new_tokens=6, eval_every=2, n_eval_samples=1)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model_dir(tok, tmp_path_factory):
    path = tmp_path_factory.mktemp("policy")
    save_model(tiny_llama(CFG, tok, seed=0), path)
    return path


def encode(tok, prompt: str, responses: list[str]) -> dict:
    """Left-padded prompt+response+EOS rows with the response mask, built by hand."""
    p = tok(prompt, add_special_tokens=False)["input_ids"]
    rows = [p + tok(" " + r, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
            for r in responses]
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), tok.pad_token_id)
    attn, resp = torch.zeros_like(ids), torch.zeros_like(ids)
    for i, row in enumerate(rows):
        ids[i, width - len(row):] = torch.tensor(row)
        attn[i, width - len(row):] = 1
        resp[i, width - len(row) + len(p):] = 1
    return {"input_ids": ids, "attention_mask": attn, "response_mask": resp}


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# ---- estimators and advantages -----------------------------------------------------------------

def test_k1_and_k3_are_unbiased_estimates_of_the_exact_kl():
    p = torch.tensor([0.5, 0.2, 0.15, 0.1, 0.05], dtype=torch.float64)
    q = torch.tensor([0.2, 0.2, 0.2, 0.2, 0.2], dtype=torch.float64)
    exact = float((p * (p / q).log()).sum())
    x = torch.multinomial(p, 200_000, replacement=True, generator=torch.Generator().manual_seed(0))
    logp, logq = p.log()[x][:, None], q.log()[x][:, None]
    mask = torch.ones_like(logp)
    for est in ("k1", "k3"):
        values = kl_per_sequence(logp, logq, mask, est)
        stderr = float(values.std()) / math.sqrt(len(values))
        assert abs(float(values.mean()) - exact) < 4 * stderr + 1e-3, est
    assert (kl_per_sequence(logp, logq, mask, "k3") >= 0).all()
    # sums over the masked tokens of a sequence only
    two = torch.tensor([[0.0, -1.0, -2.0]]), torch.tensor([[-1.0, -1.5, 0.0]])
    assert kl_per_sequence(*two, torch.tensor([[1, 1, 0]]), "k1").item() == pytest.approx(1.5)


def test_leave_one_out_advantages_by_hand():
    r = torch.tensor([[1.0, 2.0, 6.0], [0.0, 0.0, 3.0]])
    adv = leave_one_out_advantages(r)
    expected = [[r[p, i] - (r[p].sum() - r[p, i]) / 2 for i in range(3)] for p in range(2)]
    assert torch.allclose(adv, torch.tensor(expected))
    assert torch.allclose(adv.sum(-1), torch.zeros(2))


# ---- log-probs and one step --------------------------------------------------------------------

def test_response_logprobs_ignore_left_padding_and_use_the_temperature(tok):
    model = tiny_llama(CFG, tok, seed=0).eval()
    batch = encode(tok, PROMPTS[0], ["my dog ate a sock .", "dog"])
    alone = encode(tok, PROMPTS[0], ["dog"])
    with torch.no_grad():
        both = response_logprobs(model, **batch, temperature=0.7)
        one = response_logprobs(model, **alone, temperature=0.7)
        logits = model(alone["input_ids"]).logits[0, :-1] / 0.7
    n = alone["input_ids"].shape[1] - 1
    assert torch.allclose(both[1, -n:], one[0], atol=1e-5)
    assert (both[:, ~batch["response_mask"][:, 1:].bool().any(0)] == 0).all()
    tokens = alone["input_ids"][0, 1:]
    ref = torch.log_softmax(logits, -1)[torch.arange(n), tokens] * alone["response_mask"][0, 1:]
    assert torch.allclose(one[0], ref, atol=1e-5)


def test_one_step_raises_the_logprob_of_the_better_sample(tok):
    model = tiny_llama(CFG, tok, seed=0).eval()
    batch = encode(tok, PROMPTS[0], ["my dog ate a sock .", "sock sock"])
    mask = batch["response_mask"][:, 1:]
    logp = response_logprobs(model, **batch)
    before = logp.detach().sum(-1)
    loss, stats = reinforce_loss(logp, logp.detach(), mask, torch.tensor([1.0, 0.0]), k=2, beta=0.1)
    assert torch.allclose(stats["advantages"], torch.tensor([1.0, -1.0]))  # KL to itself is 0
    loss.backward()
    torch.optim.SGD(model.parameters(), lr=0.05).step()
    with torch.no_grad():
        after = response_logprobs(model, **batch).sum(-1)
    assert after[0] > before[0]  # the better sample is more likely, and more so than the other
    assert after[0] - after[1] > before[0] - before[1]


def test_sample_batch_masks_everything_after_the_first_eos(tok):
    model = tiny_llama(CFG, tok, seed=0)
    cfg = RLConfig(max_new_tokens=6)
    a = sample_batch(model, tok, PROMPTS[:2], 3, cfg, generator_seed=1)
    b = sample_batch(model, tok, PROMPTS[:2], 3, cfg, generator_seed=1)
    assert torch.equal(a["input_ids"], b["input_ids"]) and a["texts"] == b["texts"]
    assert a["input_ids"].shape[0] == 6 and a["prompts"][:3] == [PROMPTS[0]] * 3
    assert a["input_ids"].shape[1] - tok(PROMPTS[:2], padding=True, return_tensors="pt")[
        "input_ids"].shape[1] <= 6
    for row, m, attn in zip(a["input_ids"], a["response_mask"], a["attention_mask"]):
        gen = row[m.bool()]
        assert (gen[:-1] != tok.eos_token_id).all()  # at most one EOS, the last masked-in token
        after = m.nonzero().max() + 1
        assert (row[after:] == tok.pad_token_id).all() and (attn[after:] == 0).all()


# ---- EMA anchor --------------------------------------------------------------------------------

def test_ema_update_of_full_weights(tok):
    policy = tiny_llama(CFG, tok, seed=0)
    anchor = Ema(policy, mu=0.1)
    before = anchor.state_dict()
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(torch.randn_like(p))
    anchor.update(policy)
    theta = dict(policy.named_parameters())
    for k, v in anchor.state_dict().items():
        assert torch.allclose(v, 0.9 * before[k] + 0.1 * theta[k], atol=1e-6)


def test_ema_update_of_a_lora_policy_is_on_merged_weights(tok):
    torch.manual_seed(0)
    policy = get_peft_model(tiny_llama(CFG, tok, seed=0),
                            LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"],
                                       init_lora_weights=False))
    anchor = Ema(policy, mu=0.25)
    x = torch.randint(2, len(tok), (2, 9))
    with torch.no_grad():
        assert torch.allclose(anchor.model(x).logits, policy(input_ids=x).logits, atol=1e-5)
    before = {k: v.clone() for k, v in anchor.model.state_dict().items()}
    with torch.no_grad():
        for n, p in policy.named_parameters():
            if "lora_" in n:
                p.add_(torch.randn_like(p))
    anchor.update(policy)
    merged, after = lora_merged_state_dict(policy), anchor.model.state_dict()
    key = "model.layers.0.self_attn.q_proj.weight"
    assert set(anchor.state_dict()) == {key, key.replace("q_proj", "v_proj")}
    assert torch.allclose(after[key], 0.75 * before[key] + 0.25 * merged[key], atol=1e-6)
    k_key = key.replace("q_proj", "k_proj")  # not adapted: stays the base weight
    assert torch.equal(after[k_key], before[k_key])


# ---- the loop ----------------------------------------------------------------------------------

def test_bad_config_values_raise():
    for bad in ({"kl_estimator": "k2"}, {"anchor": "sft"}, {"mode": "8bit"}, {"k": 1},
                {"ema_mu": 0.0}, {"temperature": 0.0}, {"beta": -1.0}, {"eval_every": 0}):
        with pytest.raises(ValueError):
            RLConfig(**bad)


def test_gold_reward_never_influences_training(tok):
    cfg = RLConfig(**FAST, anchor="ema", ema_mu=0.5)
    finals, histories = [], []
    for gold in (None, lambda p, t: torch.randn(len(t)).numpy() * 1e3):
        policy = tiny_llama(CFG, tok, seed=0)
        histories.append(train_policy(policy, tok, PROMPTS, letters, cfg, hooks=Hooks(gold_fn=gold)))
        finals.append(weights(policy))
    assert all(torch.equal(finals[0][k], finals[1][k]) for k in finals[0])
    assert histories[0]["loss"] == histories[1]["loss"]
    assert histories[0]["eval_step"] == [0, 2, 4] and histories[0]["eval_gold"] == [None] * 3
    assert all(g is not None for g in histories[1]["eval_gold"])
    assert histories[0]["eval_kl_init"][0] == 0.0 and histories[0]["eval_kl_init"][-1] != 0.0
    assert any(a != i for a, i in zip(histories[0]["kl_anchor"], histories[0]["kl_init"]))


def test_a_reference_sets_the_kl_to_init_and_not_the_anchor(tok):
    other = tiny_llama(CFG, tok, seed=1).state_dict()
    cfg = RLConfig(**{**FAST, "steps": 1})
    history = train_policy(tiny_llama(CFG, tok, seed=0), tok, PROMPTS, letters, cfg, reference=other)
    assert history["eval_kl_anchor"][0] == 0.0 and history["eval_kl_init"][0] > 0.0
    assert history["kl_init"][0] != history["kl_anchor"][0]


class Killed(Exception):
    pass


@pytest.mark.parametrize("mode", ["full", "lora"])
def test_a_resumed_run_ends_bit_identical(tok, model_dir, tmp_path, mode):
    cfg = RLConfig(**FAST, anchor="ema", ema_mu=0.5, kl_estimator="k3", mode=mode, lora_r=2)
    straight = policy_for(model_dir, cfg)
    full_history = train_policy(straight, tok, PROMPTS, letters, cfg)

    def save_then_die(state):
        save_rl_state(tmp_path / "state", state)
        if state["step"] == 2:
            raise Killed

    with pytest.raises(Killed):
        train_policy(policy_for(model_dir, cfg), tok, PROMPTS, letters, cfg,
                     hooks=Hooks(checkpoint_every=2, on_checkpoint=save_then_die))
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == ["state.json",
                                                                      "tensors.safetensors"]
    state = load_rl_state(tmp_path / "state")
    assert state["step"] == 2 and any(k.endswith(".exp_avg_sq") for k in state["optimizer"])
    assert state["anchor"] and all(("lora_" in k) == (mode == "lora") for k in state["policy"])
    resumed = policy_for(model_dir, cfg)
    history = train_policy(resumed, tok, PROMPTS, letters, cfg, hooks=Hooks(resume=state))
    a, b = weights(straight), weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert history["loss"] == full_history["loss"] and history["eval_step"] == [0, 2, 4]
    with pytest.raises(ValueError, match="beta"):
        train_policy(policy_for(model_dir, cfg), tok, PROMPTS, letters,
                     RLConfig(**{**FAST, "beta": 0.5}, anchor="ema", ema_mu=0.5, kl_estimator="k3",
                              mode=mode, lora_r=2), hooks=Hooks(resume=state))


@pytest.mark.parametrize("mode", ["lora", "qlora"])
def test_lora_and_qlora_runs_change_only_the_adapters(model_dir, tok, mode):
    cfg = RLConfig(**{**FAST, "steps": 2, "eval_every": 5}, mode=mode, anchor="ema", lora_r=2,
                   lora_alpha=4)
    policy = policy_for(model_dir, cfg)
    if mode == "qlora":
        assert "Linear4bit" in {type(m).__name__ for m in policy.modules()}
    before = weights(policy)
    seen = []
    history = train_policy(policy, tok, PROMPTS, letters, cfg,
                           hooks=Hooks(on_eval=lambda step, model, record: seen.append(step)))
    after = weights(policy)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all("lora_" in k for k in changed)
    assert any("lora_B" in k for k in changed) and len(history["loss"]) == 2 and seen == [0, 2]
    assert history["eval_kl_init"][0] == 0.0


@pytest.mark.parametrize("mode", ["full", "lora", "qlora"])
def test_a_policy_from_given_weights_starts_there(model_dir, tok, mode):
    """A WARP iteration after the first starts from the LITI weights: for lora/qlora they become the
    base under fresh adapters, for qlora quantized to NF4 (only the quantized layers then differ,
    by the NF4 round trip of the given weights, not the saved ones)."""
    saved = {k: v for k, v in tiny_llama(CFG, tok, seed=0).state_dict().items() if k != "lm_head.weight"}
    g = torch.Generator().manual_seed(1)
    state = {k: v + 0.05 * torch.randn(v.shape, generator=g) for k, v in saved.items()}
    policy = policy_from_state(model_dir, state, RLConfig(**FAST, mode=mode, lora_r=2, lora_alpha=4))
    start = merged_state_dict(policy)
    quantized = {k for k in state if mode == "qlora" and k.endswith("_proj.weight")}
    assert all(torch.equal(start[k], state[k]) for k in state if k not in quantized)
    for k in quantized:  # exactly the NF4 round trip of the given weights
        packed, quant_state = bnbf.quantize_4bit(state[k].contiguous(), blocksize=64, quant_type="nf4")
        assert torch.equal(start[k], bnbf.dequantize_4bit(packed, quant_state)), k
        assert (start[k] - state[k]).norm() < 0.5 * (saved[k] - state[k]).norm(), k
    assert mode != "qlora" or quantized
    assert mode == "full" or all("lora_" not in k for k in start)


@pytest.mark.parametrize("mode", ["full", "lora"])
def test_gradient_checkpointing_trains_the_same_policy(model_dir, tok, mode):
    cfg = RLConfig(**FAST, mode=mode, lora_r=2, lora_alpha=4)
    runs = []
    for checkpointing in (False, True):
        policy = policy_for(model_dir, cfg)
        history = train_policy(policy, tok, PROMPTS, letters, cfg, gradient_checkpointing=checkpointing)
        layers = [m for m in policy.modules() if hasattr(m, "gradient_checkpointing")]
        assert layers and all(m.gradient_checkpointing == checkpointing for m in layers)
        runs.append((history, merged_state_dict(policy)))
    (h_plain, w_plain), (h_ckpt, w_ckpt) = runs
    assert h_ckpt["loss"] == h_plain["loss"] and h_ckpt["eval_texts"] == h_plain["eval_texts"]
    assert all(torch.equal(w_plain[k], w_ckpt[k]) for k in w_plain)


def test_gradient_checkpointing_refuses_a_policy_with_dropout(tok):
    policy = tiny_llama(CFG, tok, seed=0)
    policy.config.attention_dropout = 0.1  # train mode would then sample other log-probs
    with pytest.raises(ValueError, match="dropout"):
        train_policy(policy, tok, PROMPTS, letters, RLConfig(**FAST), gradient_checkpointing=True)


def test_reinforce_raises_the_proxy_reward(tok):
    cfg = RLConfig(steps=30, prompts_per_step=4, k=4, lr=3e-3, beta=0.0, temperature=1.0,
                   max_new_tokens=8, eval_every=10, n_eval_samples=8)
    history = train_policy(tiny_llama(CFG, tok, seed=0), tok, PROMPTS, letters, cfg)
    assert history["eval_proxy"][-1] > history["eval_proxy"][0] + 0.3
    assert history["eval_kl_init"][-1] > 0.0 and len(history["eval_samples"][-1]) == 3


def test_cached_rl_run_resumes_after_an_interruption(tmp_path, monkeypatch):
    """An RL stage killed after its first saved state resumes from it and ends with the history and
    weights of an uninterrupted run; a second call reads the cache."""
    from lib.cache import ArtifactCache
    from lib.pipeline import Pipeline
    from lib.plans import Run
    from lib.rl import runs as RL
    from lib.rm.pool import RewardModels

    fast = {"pretrain.steps": 2, "sft.steps": 2, "sft.checkpoint_steps": (1,), "rm.epochs": 0.3,
            "world.n_pretrain_posts": 100, "world.n_sft_train": 60, "rl.run.steps": 4}

    def runs(cache_dir):
        pl = Pipeline("smoke", fast, cache=ArtifactCache(cache_dir))
        rms = RewardModels(pl)
        return pl, RL.RLRuns(pl, rms), Run(rms.pool(0.0)[:1], pl.profile.rl.run)

    pl, straight, members = runs(tmp_path / "a")
    reference = straight.run(members)

    pl, runner, members = runs(tmp_path / "b")
    save = RL.save_rl_state

    def killed_after_first_save(path, state):
        save(path, state)
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(RL, "save_rl_state", killed_after_first_save)
    with pytest.raises(KeyboardInterrupt):
        runner.run(members)
    assert list((tmp_path / "b" / "partial").rglob("state.json"))
    monkeypatch.setattr(RL, "save_rl_state", save)
    resumed = runner.run(members)
    assert not list((tmp_path / "b" / "partial").rglob("*.safetensors"))
    h_ref, h_res = runner.history(reference), runner.history(resumed)
    assert h_res["loss"] == h_ref["loss"] and h_res["eval_gold_all"] == h_ref["eval_gold_all"]
    a, b = runner.policy_state(reference), runner.policy_state(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert h_ref["eval_step"] == [0, 2, 4]
    assert sorted(p.name for p in resumed.path.glob("checkpoint-*")) == \
        ["checkpoint-0", "checkpoint-2", "checkpoint-4"]
    builds = pl.cache.builds
    runner.run(members)
    assert pl.cache.builds == builds


def test_the_loop_takes_at_most_eight_parameters_and_its_hooks_are_one_object():
    import inspect

    params = inspect.signature(train_policy).parameters
    assert len(params) <= 8 and "hooks" in params and "reference" in params
