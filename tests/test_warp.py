import math
from dataclasses import replace

import pytest
import torch

from lib import warp as W
from lib.config import RLConfig
from lib.merge import global_norm, slerp, slerp_many, task_vector
from lib.models import tiny_llama
from lib.rl import sample_batch
from lib.warp import WARPConfig, angle_deg, liti_front, merge_policies, run_seed, warp

from toy import CFG, PROMPTS, letters

TINY_RL = RLConfig(steps=2, prompts_per_step=2, k=4, lr=1e-2, max_new_tokens=6, eval_every=5,
                   anchor="ema", ema_mu=0.01, beta=0.1)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def sft(tok):
    """The 'SFT' weights: a random tiny Llama, tied lm_head left out as saved checkpoints do."""
    model = tiny_llama(CFG, tok, seed=0)
    return {k: v.detach().clone() for k, v in model.state_dict().items() if k != "lm_head.weight"}


def factory(tok, received=None):
    def make_policy(state):
        if received is not None:
            received.append({k: v.clone() for k, v in state.items()})
        model = tiny_llama(CFG, tok, seed=0)
        model.load_state_dict(state, strict=False)  # lm_head is tied to the embeddings
        return model
    return make_policy


def equal(a, b) -> bool:
    return set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def synthetic(seed: int, scale: float = 1.0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"w": scale * torch.randn(4, 5, generator=g), "b": scale * torch.randn(7, generator=g),
            "steps": torch.tensor(3)}


# ---- config ------------------------------------------------------------------------------------

def test_bad_config_values_raise():
    for bad in ({"m": 0}, {"m": 1000}, {"iterations": 0}, {"eta": -0.1}, {"eta": float("nan")},
                {"merge": "ties"}, {"angles": "row"}, {"lam": 1.5}, {"rl": {"beta": 0.1}}):
        with pytest.raises(ValueError):
            WARPConfig(**bad)
    assert WARPConfig().rl.anchor == "ema" and WARPConfig().rl.beta == 0.1
    WARPConfig(rl=RLConfig(anchor="init"), m=1, eta=1.5)  # ablations and extrapolation are valid


# ---- merges ------------------------------------------------------------------------------------

def test_slerp_of_identical_policies_returns_that_policy():
    init, theta = synthetic(0), synthetic(1)
    for m, angles in ((2, "tensor"), (2, "global"), (2, "layer"), (3, "tensor")):
        merged = merge_policies(init, [theta] * m, WARPConfig(m=m, angles=angles))
        assert set(merged) == set(theta)
        assert all(torch.allclose(merged[k], theta[k], atol=1e-6) for k in theta)
    assert equal(merge_policies(init, [theta], WARPConfig(m=1)), theta)


def test_the_many_model_rule_reduces_to_two_model_slerp():
    init, a, b = synthetic(0), synthetic(1), synthetic(2)
    for angles, per_tensor in (("tensor", True), ("global", False)):
        two = slerp(init, a, b, lam=0.5, per_tensor=per_tensor)
        many = slerp_many(init, [a, b], per_tensor=per_tensor)
        via = merge_policies(init, [a, b], WARPConfig(angles=angles))
        assert all(torch.allclose(many[k], two[k], atol=1e-6) for k in two)
        assert all(torch.allclose(via[k], two[k], atol=1e-6) for k in two)
    # M = 3 gives each model weight 1/3: for parallel task vectors it is their mean
    c = {k: init[k] + 2 * (a[k] - init[k]) if k != "steps" else init[k] for k in init}
    mean3 = merge_policies(init, [a, a, c], WARPConfig(m=3))
    assert torch.allclose(mean3["w"], init["w"] + (4 / 3) * (a["w"] - init["w"]), atol=1e-5)


def test_layer_angles_take_one_angle_per_transformer_layer():
    # layer 0: its two tensors' task vectors are orthogonal in `q` and parallel in `k`
    init = {"layers.0.q": torch.zeros(2), "layers.0.k": torch.zeros(2), "norm": torch.zeros(2)}
    a = {"layers.0.q": torch.tensor([1.0, 0.0]), "layers.0.k": torch.tensor([1.0, 0.0]),
         "norm": torch.tensor([0.0, 1.0])}
    b = {"layers.0.q": torch.tensor([0.0, 1.0]), "layers.0.k": torch.tensor([1.0, 0.0]),
         "norm": torch.tensor([0.0, 1.0])}
    by_layer = merge_policies(init, [a, b], WARPConfig(angles="layer"))
    by_tensor = merge_policies(init, [a, b], WARPConfig(angles="tensor"))
    # per tensor, `q` keeps its norm (90°) and `k` is its own (parallel) vector
    assert by_tensor["layers.0.q"].norm() == pytest.approx(1.0)
    assert torch.allclose(by_tensor["layers.0.k"], a["layers.0.k"])
    # per layer, one 60° angle for the concatenated (q, k): both tensors get the same coefficients
    c = math.sin(math.pi / 6) / math.sin(math.pi / 3)
    assert torch.allclose(by_layer["layers.0.q"], torch.tensor([c, c]), atol=1e-6)
    assert torch.allclose(by_layer["layers.0.k"], torch.tensor([2 * c, 0.0]), atol=1e-6)
    assert torch.allclose(by_layer["norm"], a["norm"])  # outside any layer: its own group


def test_lerp_shrinks_orthogonal_task_vectors_and_slerp_keeps_their_norm():
    init = synthetic(0)
    e = torch.eye(20)
    a = {**init, "w": init["w"] + 3 * e[0].view(4, 5), "b": init["b"] + 3 * e[1, :7]}
    b = {**init, "w": init["w"] + 3 * e[5].view(4, 5), "b": init["b"] + 3 * e[2, :7]}
    norm = global_norm(task_vector(a, init))
    assert norm == pytest.approx(global_norm(task_vector(b, init)))
    assert angle_deg(task_vector(a, init), task_vector(b, init)) == pytest.approx(90.0)
    for angles in ("tensor", "global"):
        lerp = merge_policies(init, [a, b], WARPConfig(merge="lerp", angles=angles))
        sl = merge_policies(init, [a, b], WARPConfig(angles=angles))
        assert global_norm(task_vector(lerp, init)) == pytest.approx(norm / math.sqrt(2), rel=1e-5)
        assert global_norm(task_vector(sl, init)) == pytest.approx(norm, rel=1e-5)
        assert torch.equal(sl["steps"], init["steps"]) and sl["w"].dtype == torch.float32


# ---- the loop ----------------------------------------------------------------------------------

def test_liti_endpoints_through_the_warp_path(tok, sft):
    cfg = WARPConfig(iterations=1, m=2, rl=TINY_RL, eta=0.0)
    out = warp(sft, factory(tok), tok, PROMPTS, letters, cfg)
    it = out["iterations"][0]
    assert equal(out["final"], sft) and equal(it["liti"], sft)
    assert not equal(it["merged"], sft)
    out1 = warp(sft, factory(tok), tok, PROMPTS, letters, replace(cfg, eta=1.0))
    assert equal(out1["final"], out1["iterations"][0]["merged"])
    assert equal(out1["iterations"][0]["merged"], it["merged"])  # the runs are deterministic
    front = liti_front(sft, it["merged"], [0.0, 1.0], lambda s: {"w": s["model.norm.weight"]})
    assert [r["eta"] for r in front] == [0.0, 1.0]
    assert torch.equal(front[0]["w"], sft["model.norm.weight"])
    assert torch.equal(front[1]["w"], it["merged"]["model.norm.weight"])


def test_every_run_starts_from_the_previous_liti_model(tok, sft, monkeypatch):
    received, calls = [], []
    real = W.train_policy

    def recording(policy, tokenizer, prompts, reward_fn, cfg, **kw):
        calls.append((cfg.seed, kw["init_state"]))
        return real(policy, tokenizer, prompts, reward_fn, cfg, **kw)

    monkeypatch.setattr(W, "train_policy", recording)
    evals = []
    cfg = WARPConfig(iterations=2, m=2, rl=replace(TINY_RL, seed=7), eta=0.3)
    out = warp(sft, factory(tok, received), tok, PROMPTS, letters, cfg,
               eval_fn=lambda s: evals.append(s) or {"n": len(evals)})
    it1, it2 = out["iterations"]
    assert len(received) == 4
    assert equal(received[0], sft) and equal(received[1], sft)
    assert equal(received[2], it1["liti"]) and equal(received[3], it1["liti"])
    assert not equal(it1["liti"], sft) and equal(out["final"], it2["liti"])
    assert [s for s, _ in calls] == [7, 8, 1007, 1008] == it1["seeds"] + it2["seeds"]
    assert [run_seed(7, i, m) for i in range(2) for m in range(2)] == [7, 8, 1007, 1008]
    assert all(equal(init, sft) for _, init in calls)  # KL-to-init is always against the SFT
    assert len(it2["histories"]) == 2 and it2["histories"][0]["eval_kl_init"][0] != 0.0
    assert it1["histories"][0]["eval_kl_init"][0] == 0.0
    assert len(it1["task_norms"]) == 2 and all(n > 0 for n in it1["task_norms"])
    assert 0.0 < it1["angle_deg"] < 180.0 and it1["merged_norm"] > 0.0
    assert out["eval_init"] == {"n": 1} and it1["eval_merged"] == {"n": 2}
    assert it2["eval_liti"] == {"n": 5} and equal(evals[2], it1["liti"])


def test_warp_raises_the_reward_of_the_final_policy(tok, sft):
    rl = RLConfig(steps=10, prompts_per_step=4, k=4, lr=1e-2, beta=0.1, anchor="ema", ema_mu=0.01,
                  temperature=1.0, max_new_tokens=8, eval_every=100)
    out = warp(sft, factory(tok), tok, PROMPTS, letters, WARPConfig(iterations=2, m=2, rl=rl))

    def reward(state):
        batch = sample_batch(factory(tok)(state), tok, PROMPTS, 16, rl, generator_seed=123)
        return float(letters(None, batch["texts"]).mean())

    before, after = reward(sft), reward(out["final"])
    assert after > before + 0.2, (before, after)
    it1 = out["iterations"][0]  # SLERP keeps the norm of the (nearly orthogonal) task vectors
    assert it1["merged_norm"] > 0.9 * min(it1["task_norms"])


def test_warp_of_lora_policies_merges_their_weight_updates(tok, sft):
    """LoRA runs: merges act on the merged weights W + B·A·scale; only adapted layers move."""
    cfg = WARPConfig(iterations=1, m=2, rl=replace(TINY_RL, mode="lora", lr=5e-2), eta=1.0)
    out = warp(sft, factory(tok), tok, PROMPTS, letters, cfg)
    final = out["final"]
    assert set(final) == set(sft)
    moved = {k for k in sft if not torch.equal(final[k], sft[k])}
    assert moved and all(k.endswith(("_proj.weight",)) for k in moved)
    assert not any("lora_" in k for k in final)


def test_warp_of_qlora_policies_merges_from_their_nf4_start(tok, sft, tmp_path):
    """4-bit runs hold θ_init rounded to NF4: the merge and LITI start there, so at η = 0 the next
    init is that rounding (the only change from θ_init, and only on the quantized layers)."""
    from lib.models import save_model
    from lib.rl import policy_from_state
    from lib.warp import full_weights

    save_model(tiny_llama(CFG, tok, seed=0), tmp_path)
    rl = replace(TINY_RL, mode="qlora", steps=1)

    def make(state):
        return policy_from_state(tmp_path, state, rl)

    out = warp(sft, make, tok, PROMPTS, letters, WARPConfig(iterations=1, m=2, rl=rl, eta=0.0))
    nf4 = full_weights(make(sft), list(sft))
    assert equal(out["final"], nf4)
    rounded = {k for k in sft if not torch.equal(nf4[k], sft[k])}
    assert rounded and all(k.endswith("_proj.weight") for k in rounded)
