import math
from dataclasses import replace

import pytest
import torch
from toy import CFG, PROMPTS, letters

from lib.config import RLConfig
from lib.merge import global_norm, slerp, slerp_many, task_vector
from lib.models.lora import is_peft, merged_state_dict, wrap_lora
from lib.models.models import tiny_llama
from lib.models.sampling import sample_batch
from lib.rl.rl import train_policy
from lib.rl.warp import WARPConfig, angle_deg, merge_policies, warp
from lib.seeds import run_seed

TINY_RL = RLConfig(steps=2, prompts_per_step=2, k=4, lr=1e-2, max_new_tokens=6, eval_every=5,
                   n_eval_samples=1, anchor="ema", ema_mu=0.01, beta=0.1)

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
                {"merge": "ties"}, {"angles": "row"}, {"lam": 1.5}, {"run": {"beta": 0.1}}):
        with pytest.raises(ValueError):
            WARPConfig(**bad)
    assert WARPConfig().run.anchor == "ema" and WARPConfig().run.beta == 0.1
    WARPConfig(run=RLConfig(anchor="init"), m=1, eta=1.5)  # ablations and extrapolation are valid


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

def full_weights(policy, keys):
    """A copy of the policy's full weights (`lib.models.lora.merged_state_dict`), on the init's keys."""
    state = merged_state_dict(policy)
    return {k: state[k].cpu().clone() for k in keys}


def toy_runs(tok, sft, rl, make_policy=None, received=None, calls=None):
    """`lib.rl.warp.warp`'s `train_run` on the toy world, uncached: each run from `init` (or the SFT
    weights), trained with the toy reward, its KL to init measured against the SFT weights."""
    make = make_policy or factory(tok, received)

    def train_run(iteration, m, init):
        cfg = replace(rl, seed=run_seed(rl.seed, iteration, m))
        policy = make({k: v.clone() for k, v in (sft if init is None else init[1]).items()})
        if cfg.mode != "full" and not is_peft(policy):
            policy = wrap_lora(policy, cfg)  # keep a handle on the adapted model
        start = full_weights(policy, list(sft))
        history = train_policy(policy, tok, PROMPTS, letters, cfg, reference=sft)
        if calls is not None:
            calls.append((cfg.seed, init))
        return {"start": start, "theta": full_weights(policy, list(sft)), "history": history,
                "key": f"run {iteration} {m}"}
    return train_run


def test_liti_endpoints_through_the_warp_path(tok, sft):
    cfg = WARPConfig(iterations=1, m=2, run=TINY_RL, eta=0.0)
    out = warp(toy_runs(tok, sft, TINY_RL), cfg)
    it = out["iterations"][0]
    assert equal(out["final"], sft) and equal(it["init"], sft)
    assert not equal(it["merged"], sft)
    out1 = warp(toy_runs(tok, sft, TINY_RL), replace(cfg, eta=1.0))
    assert equal(out1["final"], out1["iterations"][0]["merged"])
    assert equal(out1["iterations"][0]["merged"], it["merged"])  # the runs are deterministic
    assert it["key"] == {"warp_runs": ["run 0 0", "run 0 1"], "merge": "slerp", "angles": "tensor", "eta": 0.0}


def test_every_run_starts_from_the_previous_liti_model(tok, sft):
    received, calls = [], []
    rl = replace(TINY_RL, seed=7)
    out = warp(toy_runs(tok, sft, rl, received=received, calls=calls), WARPConfig(iterations=2, m=2, run=rl, eta=0.3),
               first_runs=3)
    it1, it2 = out["iterations"]
    assert len(received) == 5 and len(it1["runs"]) == 3 and len(it2["runs"]) == 2  # a third first run, unmerged
    assert all(equal(r, sft) for r in received[:3])
    assert equal(received[3], it1["init"]) and equal(received[4], it1["init"])
    assert not equal(it1["init"], sft) and equal(out["final"], it2["init"])
    assert [s for s, _ in calls] == [7, 8, 9, 1007, 1008]
    assert [run_seed(7, i, m) for i in range(2) for m in range(2)] == [7, 8, 1007, 1008]
    assert calls[3][1][0] == it1["key"] and it1["key"]["warp_runs"] == ["run 0 0", "run 0 1"]
    assert it2["runs"][0]["history"]["eval_kl_init"][0] != 0.0  # the KL to init is always to the SFT
    assert it1["runs"][0]["history"]["eval_kl_init"][0] == 0.0
    assert len(it1["task_norms"]) == 2 and all(n > 0 for n in it1["task_norms"])
    assert 0.0 < it1["angle_deg"] < 180.0 and it1["merged_norm"] > 0.0


def test_warp_raises_the_reward_of_the_final_policy(tok, sft):
    rl = RLConfig(steps=10, prompts_per_step=4, k=4, lr=1e-2, beta=0.1, anchor="ema", ema_mu=0.01,
                  temperature=1.0, max_new_tokens=8, eval_every=100, n_eval_samples=1)
    out = warp(toy_runs(tok, sft, rl), WARPConfig(iterations=2, m=2, run=rl))

    def reward(state):
        batch = sample_batch(factory(tok)(state), tok, PROMPTS, 16, rl, generator_seed=123)
        return float(letters(None, batch["texts"]).mean())

    before, after = reward(sft), reward(out["final"])
    assert after > before + 0.2, (before, after)
    it1 = out["iterations"][0]  # SLERP keeps the norm of the (nearly orthogonal) task vectors
    assert it1["merged_norm"] > 0.9 * min(it1["task_norms"])


def test_warp_of_lora_policies_merges_their_weight_updates(tok, sft):
    """LoRA runs: merges act on the merged weights W + B·A·scale; only adapted layers move."""
    rl = replace(TINY_RL, mode="lora", lr=5e-2)
    out = warp(toy_runs(tok, sft, rl), WARPConfig(iterations=1, m=2, run=rl, eta=1.0))
    final = out["final"]
    assert set(final) == set(sft)
    moved = {k for k in sft if not torch.equal(final[k], sft[k])}
    assert moved and all(k.endswith(("_proj.weight",)) for k in moved)
    assert not any("lora_" in k for k in final)


def test_warp_of_qlora_policies_merges_from_their_nf4_start(tok, sft, tmp_path):
    """4-bit runs hold θ_init rounded to NF4: the merge and LITI start there, so at η = 0 the next
    init is that rounding (the only change from θ_init, and only on the quantized layers)."""
    from lib.models.models import save_model
    from lib.models.policy import policy_from_state

    save_model(tiny_llama(CFG, tok, seed=0), tmp_path)
    rl = replace(TINY_RL, mode="qlora", steps=1)

    def make(state):
        return policy_from_state(tmp_path, state, rl)

    out = warp(toy_runs(tok, sft, rl, make_policy=make), WARPConfig(iterations=1, m=2, run=rl, eta=0.0))
    nf4 = full_weights(make(sft), list(sft))
    assert equal(out["final"], nf4)
    rounded = {k for k in sft if not torch.equal(nf4[k], sft[k])}
    assert rounded and all(k.endswith("_proj.weight") for k in rounded)


def test_the_recursive_rule_for_m_above_2_is_neither_uniform_nor_order_free():
    """WARP's M > 2 rule, slerp(slerp_{M−1}, θ_M, 1/M), as `merge_policies` documents it."""
    init = {"w": torch.zeros(3)}
    unit = [{"w": torch.eye(3)[i]} for i in range(3)]
    cfg = WARPConfig()
    merged = merge_policies(init, unit, cfg)["w"]
    assert torch.allclose(merged, torch.tensor([math.sqrt(3 / 8), math.sqrt(3 / 8), 0.5]), atol=1e-4)
    a, b, c = ({"w": torch.tensor(v)} for v in ([1.0, 0, 0], [0.6, 0.8, 0], [0.0, 0, 1]))
    assert not torch.allclose(merge_policies(init, [a, b, c], cfg)["w"], merge_policies(init, [c, b, a], cfg)["w"],
                              atol=1e-3)
