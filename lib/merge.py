"""Weight averaging on state dicts (`dict[str, torch.Tensor]`): WA, task vectors, SLERP, LITI.
WARP's merge of its runs is `lib.rl.warp.merge_policies`; the moving average of a model's weights
along its training is `lib.models.ema.Ema`.

- WARM: θ_WA = Σ_i w_i θ_i (uniform by default).
- WARP: task vectors δ_i = θ_i − θ_init are merged by spherical interpolation,
  θ_init + sin((1−λ)Ω)/sin Ω · δ_1 + sin(λΩ)/sin Ω · δ_2, Ω the angle between δ_1 and δ_2
  (per tensor by default, or per group of tensors such as a layer, or on the whole vector);
  then LITI, θ = (1−η)·θ_init + η·θ_merged.

Every merge first checks that its inputs share keys, shapes and dtypes, and raises a `ValueError`
naming the first offending key otherwise: nothing is silently averaged. Merges compute in float64
and return tensors in the inputs' dtype.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Sequence

import torch

StateDict = dict[str, torch.Tensor]


def check_state_dict(sd, name: str = "state dict") -> None:
    """Raise `TypeError` unless `sd` is a state dict: a dict of parameter names to tensors."""
    if isinstance(sd, torch.nn.Module):
        raise TypeError(f"{name} is a {type(sd).__name__} module, not a state dict: pass its .state_dict()")
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise TypeError(f"{name} must be a state dict (a dict of tensors), got {type(sd).__name__}")


def check_coefficient(value: float, name: str) -> None:
    """Raise `ValueError` unless `value` is a finite number (a λ, η or averaging weight)."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite number, got {value!r}")


def check_compatible(state_dicts: Sequence[StateDict], names: Sequence[str] | None = None) -> None:
    """Raise `ValueError` unless all state dicts have the same keys, shapes and dtypes."""
    if isinstance(state_dicts, (dict, torch.nn.Module)):
        raise TypeError("expected a list of state dicts, got a single "
                        f"{'state dict' if isinstance(state_dicts, dict) else 'module'}: wrap it in a list")
    if not state_dicts:
        raise ValueError("nothing to merge: no state dicts given")
    names = names or [f"state dict {i}" for i in range(len(state_dicts))]
    for sd, name in zip(state_dicts, names):
        check_state_dict(sd, name)
    ref, ref_name = state_dicts[0], names[0]
    for sd, name in zip(state_dicts[1:], names[1:]):
        missing = sorted(set(ref) ^ set(sd))
        if missing:
            k = missing[0]
            where = ref_name if k in ref else name
            raise ValueError(f"cannot merge: key {k!r} is only in {where} "
                             f"({len(missing)} keys differ between {ref_name} and {name})")
        for k in ref:
            if ref[k].shape != sd[k].shape:
                raise ValueError(f"cannot merge: key {k!r} has shape {tuple(ref[k].shape)} in "
                                 f"{ref_name} but {tuple(sd[k].shape)} in {name}")
            if ref[k].dtype != sd[k].dtype:
                raise ValueError(f"cannot merge: key {k!r} has dtype {ref[k].dtype} in {ref_name} "
                                 f"but {sd[k].dtype} in {name}")


def _mergeable(t: torch.Tensor) -> bool:
    return t.is_floating_point()


def weight_average(state_dicts: Sequence[StateDict], weights: Sequence[float] | None = None) -> StateDict:
    """Σ_i w_i θ_i, uniform weights by default (WARM). Integer buffers are taken from the first."""
    check_compatible(state_dicts)
    if weights is None:
        weights = [1.0 / len(state_dicts)] * len(state_dicts)
    if len(weights) != len(state_dicts):
        raise ValueError(f"got {len(weights)} weights for {len(state_dicts)} state dicts")
    for i, w in enumerate(weights):
        check_coefficient(w, f"weight {i}")
    out = {}
    for k, ref in state_dicts[0].items():
        if not _mergeable(ref):
            out[k] = ref.clone()
            continue
        acc = sum(w * sd[k].double() for w, sd in zip(weights, state_dicts))
        out[k] = acc.to(ref.dtype)
    return out


def task_vector(theta: StateDict, theta_init: StateDict) -> StateDict:
    """δ = θ − θ_init, per key."""
    check_compatible([theta, theta_init], ["theta", "theta_init"])
    return {k: (theta[k].double() - theta_init[k].double()).to(theta[k].dtype)
            for k in theta if _mergeable(theta[k])}


def layer_group(key: str) -> str:
    """Group a parameter name by transformer layer (`...layers.3....` → `layers.3`), as WARP does."""
    m = re.search(r"(?:layers|h|layer|blocks)\.(\d+)\.", key)
    return f"layers.{m.group(1)}" if m else key


def _slerp_coefficients(d1: torch.Tensor, d2: torch.Tensor, lam: float,
                        eps: float = 1e-6) -> tuple[float, float]:
    n1, n2 = d1.norm(), d2.norm()
    if n1 < 1e-12 or n2 < 1e-12:
        return 1.0 - lam, lam  # a zero task vector has no direction: LERP
    cos = float(torch.clamp((d1 @ d2) / (n1 * n2), -1.0, 1.0))
    omega = math.acos(cos)
    if math.sin(omega) < eps:  # (anti)parallel task vectors: SLERP degenerates to LERP
        return 1.0 - lam, lam
    return math.sin((1 - lam) * omega) / math.sin(omega), math.sin(lam * omega) / math.sin(omega)


def slerp(theta_init: StateDict, theta_a: StateDict, theta_b: StateDict, lam: float = 0.5,
          per_tensor: bool = True, group: Callable[[str], str] | None = None) -> StateDict:
    """SLERP of the task vectors of `theta_a` and `theta_b` w.r.t. `theta_init` (WARP, Eq. 2).

    Angles are taken per tensor (`per_tensor=True`), per group of tensors (`group(key)` names the
    group, e.g. `layer_group`), or over the whole flattened vector (`per_tensor=False`). λ=0 gives
    `theta_a`, λ=1 gives `theta_b`; parallel task vectors fall back to LERP.
    """
    check_coefficient(lam, "lam")
    check_compatible([theta_init, theta_a, theta_b], ["theta_init", "theta_a", "theta_b"])
    keys = [k for k in theta_init if _mergeable(theta_init[k])]
    if group is None:
        group = (lambda k: k) if per_tensor else (lambda k: "all")
    groups: dict[str, list[str]] = {}
    for k in keys:
        groups.setdefault(group(k), []).append(k)
    out = {k: v.clone() for k, v in theta_init.items() if not _mergeable(v)}
    for members in groups.values():
        d1 = torch.cat([(theta_a[k].double() - theta_init[k].double()).flatten() for k in members])
        d2 = torch.cat([(theta_b[k].double() - theta_init[k].double()).flatten() for k in members])
        c1, c2 = _slerp_coefficients(d1, d2, lam)
        for k in members:
            merged = (theta_init[k].double() + c1 * (theta_a[k].double() - theta_init[k].double())
                      + c2 * (theta_b[k].double() - theta_init[k].double()))
            out[k] = merged.to(theta_init[k].dtype)
    return out


def slerp_many(theta_init: StateDict, thetas: Sequence[StateDict], per_tensor: bool = True,
               group: Callable[[str], str] | None = None) -> StateDict:
    """WARP's rule for M > 2: slerp_M = slerp(θ_init, slerp_{M−1}(θ_1..θ_{M−1}), θ_M, λ = 1/M).

    The paper calls it uniform, but it does not give each task vector the weight 1/M: three
    orthogonal unit task vectors get the coefficients (√(3/8), √(3/8), 1/2) ≈ (0.61, 0.61, 0.50);
    and it is not associative (the order of `thetas` changes the result), as the paper notes. For
    M = 2 it is `slerp(θ_init, θ_1, θ_2, λ=1/2)`.
    """
    if not thetas:
        raise ValueError("slerp_many needs at least one model")
    merged = thetas[0]
    for m, theta in enumerate(thetas[1:], start=2):
        merged = slerp(theta_init, merged, theta, lam=1.0 / m, per_tensor=per_tensor, group=group)
    return merged


def liti(theta_init: StateDict, theta: StateDict, eta: float) -> StateDict:
    """LITI: (1−η)·θ_init + η·θ (η > 1 extrapolates)."""
    check_coefficient(eta, "eta")
    return weight_average([theta_init, theta], [1.0 - eta, eta])


def global_norm(state_dict: StateDict) -> float:
    """‖θ‖ over all floating tensors (for task-vector norms)."""
    return math.sqrt(sum(float(v.double().square().sum()) for v in state_dict.values()
                         if _mergeable(v)))


def angle_deg(delta_a: StateDict, delta_b: StateDict) -> float:
    """The angle (degrees) between two task vectors flattened over all their floating tensors;
    NaN if either is zero."""
    keys = [k for k in delta_a if delta_a[k].is_floating_point()]
    dot = sum(float((delta_a[k].double() * delta_b[k].double()).sum()) for k in keys)
    na, nb = global_norm(delta_a), global_norm(delta_b)
    if na == 0.0 or nb == 0.0:
        return float("nan")
    return math.degrees(math.acos(max(-1.0, min(1.0, dot / (na * nb)))))
