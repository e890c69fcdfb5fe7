import math
import re

import pytest
import torch

from lib.merge import global_norm, layer_group, liti, slerp, slerp_many, task_vector, weight_average


def sd(*values, dtype=torch.float32):
    return {"layers.0.w": torch.tensor(values[:2], dtype=dtype),
            "layers.1.w": torch.tensor(values[2:], dtype=dtype),
            "step": torch.tensor(3)}


def close(a, b, atol=1e-6):
    return a.keys() == b.keys() and all(torch.allclose(a[k].double(), b[k].double(), atol=atol) for k in a)


def test_weight_average_by_hand():
    a, b = sd(1.0, 2.0, 3.0, 4.0), sd(3.0, 6.0, 5.0, 0.0)
    assert close(weight_average([a, b]), sd(2.0, 4.0, 4.0, 2.0))
    assert close(weight_average([a, b], [0.25, 0.75]), sd(2.5, 5.0, 4.5, 1.0))
    assert torch.equal(weight_average([a, b])["step"], torch.tensor(3))  # integer buffers kept


def test_task_vector_and_liti_by_hand():
    init, theta = sd(1.0, 1.0, 1.0, 1.0), sd(3.0, 0.0, 1.0, 5.0)
    assert close(task_vector(theta, init), {k: v for k, v in sd(2.0, -1.0, 0.0, 4.0).items() if k != "step"})
    assert close(liti(init, theta, 0.0), init) and close(liti(init, theta, 1.0), theta)
    assert close(liti(init, theta, 0.5), sd(2.0, 0.5, 1.0, 3.0))


def test_slerp_endpoints_and_midpoint_by_hand():
    init = sd(0.0, 0.0, 0.0, 0.0)
    a, b = sd(1.0, 0.0, 2.0, 0.0), sd(0.0, 1.0, 0.0, 2.0)  # orthogonal task vectors, Ω = 90°
    assert close(slerp(init, a, b, 0.0), a) and close(slerp(init, a, b, 1.0), b)
    c = math.sin(math.pi / 4) / math.sin(math.pi / 2)
    assert close(slerp(init, a, b, 0.5), sd(c, c, 2 * c, 2 * c))


def test_slerp_preserves_the_norm_of_equal_norm_task_vectors():
    torch.manual_seed(0)
    init = {"w": torch.randn(50)}
    d1, d2 = torch.randn(50), torch.randn(50)
    d2 = d2 / d2.norm() * d1.norm()
    a, b = {"w": init["w"] + d1}, {"w": init["w"] + d2}
    for lam in (0.2, 0.5, 0.9):
        merged = task_vector(slerp(init, a, b, lam), init)
        assert global_norm(merged) == pytest.approx(float(d1.norm()), rel=1e-5)
        lerp = task_vector(weight_average([a, b], [1 - lam, lam]), init)
        assert global_norm(lerp) < global_norm(merged)  # LERP shrinks it (WARP Lemma 1)


def test_slerp_falls_back_to_lerp_for_parallel_task_vectors():
    init = sd(0.0, 0.0, 0.0, 0.0)
    a, b = sd(1.0, 1.0, 1.0, 1.0), sd(2.0, 2.0, 2.0, 2.0)
    out = slerp(init, a, b, 0.5)
    assert all(torch.isfinite(v).all() for v in out.values())
    assert close(out, weight_average([a, b]))


def test_slerp_of_identical_models_is_that_model():
    init, a = sd(0.0, 1.0, 2.0, 3.0), sd(1.0, 3.0, -2.0, 0.5)
    assert close(slerp(init, a, a, 0.5), a)
    assert close(slerp_many(init, [a, a, a]), a)


def test_per_tensor_and_global_angles_differ():
    init = sd(0.0, 0.0, 0.0, 0.0)
    a, b = sd(1.0, 0.0, 1.0, 0.0), sd(0.0, 1.0, 1.0, 0.0)  # layer 0 orthogonal, layer 1 parallel
    per_tensor, whole = slerp(init, a, b), slerp(init, a, b, per_tensor=False)
    assert torch.allclose(per_tensor["layers.1.w"], torch.tensor([1.0, 0.0]))
    assert not torch.allclose(whole["layers.1.w"], per_tensor["layers.1.w"])
    assert close(slerp(init, a, b, group=layer_group), per_tensor)  # one tensor per layer here


def test_slerp_many_reduces_to_slerp_for_two_models():
    torch.manual_seed(1)
    init, a, b = ({"w": torch.randn(8)} for _ in range(3))
    assert close(slerp_many(init, [a, b]), slerp(init, a, b, 0.5))


@pytest.mark.parametrize("bad, message", [
    ({"layers.0.w": torch.zeros(2), "step": torch.tensor(3)}, "key 'layers.1.w' is only in"),
    ({**sd(0.0, 0.0, 0.0, 0.0), "layers.1.w": torch.zeros(3)}, "shape"),
    (sd(0.0, 0.0, 0.0, 0.0, dtype=torch.float64), "dtype"),
])
def test_merges_refuse_incompatible_state_dicts(bad, message):
    good = sd(1.0, 2.0, 3.0, 4.0)
    for merge in (lambda: weight_average([good, bad]), lambda: slerp(good, good, bad),
                  lambda: liti(good, bad, 0.3), lambda: task_vector(bad, good)):
        with pytest.raises(ValueError, match=message):
            merge()


@pytest.mark.parametrize("call, error, message", [
    (lambda sd, lin: weight_average([lin, lin]), TypeError,
     "is a Linear module, not a state dict: pass its .state_dict()"),
    (lambda sd, lin: weight_average(sd), TypeError, "expected a list of state dicts, got a single state dict"),
    (lambda sd, lin: liti(sd, sd, float("nan")), ValueError, "eta must be a finite number, got nan"),
    (lambda sd, lin: slerp(sd, sd, sd, lam=float("inf")), ValueError, "lam must be a finite number, got inf"),
    (lambda sd, lin: weight_average([sd, sd], [0.5, float("nan")]), ValueError, "weight 1 must be a finite number"),
])
def test_public_merges_refuse_bad_input_in_one_line(call, error, message):
    lin = torch.nn.Linear(2, 2)
    with pytest.raises(error, match=re.escape(message)):
        call(lin.state_dict(), lin)
