"""The course's two calculation exercises, computed step by step and checked against torch autograd.

1. A 2-3-1 MLP without biases: inputs x1, x2 (neurons 1, 2); hidden ReLU neurons 3, 4, 5; sigmoid output 6.
   Forward pass, BCE loss (natural log), and one SGD step on w36 and w25 with every chain-rule factor.
2. z(x) = eˣ − e⁻ˣ on [−1, 1], clamped to ±(e − e⁻¹) outside, and its n-fold composition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure

COURSE_WEIGHTS = {"w13": 0.4, "w14": -0.2, "w15": -0.3, "w23": 0.0, "w24": 0.7, "w25": 0.1,
                  "w36": -0.2, "w46": 0.5, "w56": -0.6}
HIDDEN = (3, 4, 5)


def relu_grad(s: float) -> float:
    return 1.0 if s > 0 else 0.0  # the subgradient 0 at s = 0, as torch uses


def sigmoid(s: float) -> float:
    return 1.0 / (1.0 + math.exp(-s)) if s >= 0 else math.exp(s) / (1.0 + math.exp(s))  # no overflow


def bce_from_logit(s: float, y: float) -> float:
    """−(y ln ŷ + (1 − y) ln(1 − ŷ)) with ŷ = sigmoid(s), computed stably as softplus(s) − y·s."""
    return max(s, 0.0) + math.log1p(math.exp(-abs(s))) - y * s


@dataclass
class MLPStep:
    pre: dict[str, float]  # s3, s4, s5, s6
    act: dict[str, float]  # h3, h4, h5, y_hat
    loss_y0: float
    loss_y1: float
    loss: float  # for the given label
    factors: dict[str, dict[str, float]]  # per updated weight: each chain-rule factor, then the gradient
    updated: dict[str, float]  # the weights after one SGD step


def mlp_step(x1: float, x2: float, y: float, lr: float, weights: dict[str, float] = COURSE_WEIGHTS) -> MLPStep:
    w, x = weights, {1: x1, 2: x2}
    pre = {f"s{j}": sum(x[i] * w[f"w{i}{j}"] for i in (1, 2)) for j in HIDDEN}
    act = {f"h{j}": max(0.0, pre[f"s{j}"]) for j in HIDDEN}
    pre["s6"] = sum(act[f"h{j}"] * w[f"w{j}6"] for j in HIDDEN)
    y_hat = act["y_hat"] = sigmoid(pre["s6"])
    # ∂L/∂ŷ·∂ŷ/∂s6 = (ŷ − y)/(ŷ(1 − ŷ)) · ŷ(1 − ŷ) = ŷ − y; the gradients use the simplified product, which stays
    # finite when ŷ rounds to exactly 0 or 1 and the two factors alone would be ∞ and 0.
    saturated = y_hat in (0.0, 1.0)
    head = {"∂L/∂ŷ": math.inf if saturated else (y_hat - y) / (y_hat * (1.0 - y_hat)), "∂ŷ/∂s6": y_hat * (1 - y_hat)}
    tails = {"w36": {"∂s6/∂w36 = h3": act["h3"]},
             "w25": {"∂s6/∂h5 = w56": w["w56"], "∂h5/∂s5 = ReLU'(s5)": relu_grad(pre["s5"]), "∂s5/∂w25 = x2": x2}}
    factors, updated = {}, {}
    for name, tail in tails.items():
        grad = (y_hat - y) * math.prod(tail.values())
        factors[name] = {**head, **tail, f"∂L/∂{name}": grad}
        updated[name] = w[name] - lr * grad
    loss = bce_from_logit(pre["s6"], y)
    return MLPStep(pre, act, bce_from_logit(pre["s6"], 0.0), bce_from_logit(pre["s6"], 1.0), loss, factors, updated)


def mlp_autograd(x1: float, x2: float, y: float, weights: dict[str, float] = COURSE_WEIGHTS) -> dict[str, float]:
    """The same network in torch: loss and the gradient of every weight, for checking `mlp_step`."""
    w = {k: torch.tensor(float(v), dtype=torch.float64, requires_grad=True) for k, v in weights.items()}
    x = {1: torch.tensor(float(x1), dtype=torch.float64), 2: torch.tensor(float(x2), dtype=torch.float64)}
    h = {j: torch.relu(x[1] * w[f"w1{j}"] + x[2] * w[f"w2{j}"]) for j in HIDDEN}
    s6 = sum(h[j] * w[f"w{j}6"] for j in HIDDEN)
    # the same BCE computed from the logit: exact where torch's binary_cross_entropy clamps log at -100
    loss = torch.nn.functional.binary_cross_entropy_with_logits(s6, torch.tensor(float(y), dtype=torch.float64))
    loss.backward()
    return {"loss": loss.item(), "y_hat": torch.sigmoid(s6).item(), **{k: v.grad.item() for k, v in w.items()}}


Z_LIMIT = math.e - 1.0 / math.e  # z(±1): the clamp value, also a fixed point


def z(x):
    """eˣ − e⁻ˣ on [−1, 1], clamped to ±(e − e⁻¹) outside (= 2·sinh(clip(x, −1, 1)))."""
    return 2.0 * np.sinh(np.clip(np.asarray(x, dtype=np.float64), -1.0, 1.0))


def z_composed(x, n: int):
    """z applied n times."""
    out = np.asarray(x, dtype=np.float64)
    for _ in range(int(n)):
        out = z(out)
    return out


# z(x) = x: 0 (repelling, z'(0) = 2) and ±(e − e⁻¹) (attracting: z is flat there, every x ≠ 0 ends on them).
Z_FIXED_POINTS = (-Z_LIMIT, 0.0, Z_LIMIT)

def z_saturation_threshold(n: int) -> float:
    """The smallest |x| with z_n(x) = ±(e − e⁻¹): z_1 saturates at |x| = 1, and t_(k+1) = asinh(t_k / 2)."""
    t = 1.0
    for _ in range(int(n) - 1):
        t = math.asinh(t / 2.0)
    return t


def z_explanation(n: int) -> str:
    """What z composed n times does on ℝ, for this n."""
    n = int(n)
    t = z_saturation_threshold(n)
    slope = f"2^{n} ≈ {2.0 ** n:.3g}" if n > 10 else f"2^{n} = {2 ** n}"
    shape = (f"Between −{t:.3g} and {t:.3g} it still rises smoothly through 0, with slope z_{n}′(0) = {slope}."
             if t > 1e-3 else
             f"The ramp between −{t:.3g} and {t:.3g} is far too narrow to see: on ℝ, z_{n} is in effect a step "
             "function, discontinuous at 0, whose derivative is 0 almost everywhere.")
    return (
        "z has three fixed points: 0 and ±(e − e⁻¹) ≈ ±2.3504. Near 0, z(x) ≈ 2x, so 0 repels: each application "
        "roughly doubles a small |x|. Once |x| ≥ 1 the clamp sends it to ±(e − e⁻¹), where z is constant, so those "
        f"points attract everything on their side. After n = {n} compositions, z_{n}(x) = (e − e⁻¹)·sign(x) for every "
        f"|x| ≥ {t:.3g}, and z_{n}(0) = 0. {shape} As an activation, stacking z deeply saturates every signal, and "
        "the gradient vanishes wherever it is saturated."
    )


def plot_z(n: int) -> Figure:
    """z and z composed n times on [−3, 3], with the fixed points of z marked."""
    xs = np.linspace(-3, 3, 2001)
    fig = Figure(figsize=(7, 3.8))
    ax = fig.add_subplot()
    ax.plot(xs, xs, color="#bbbbbb", lw=1, label="y = x")
    ax.plot(xs, z(xs), color="#1f77b4", lw=2, label="z(x)")
    ax.plot(xs, z_composed(xs, n), color="#d62728", lw=2, ls="--", label=f"z composed {n} times")
    fixed = np.array(Z_FIXED_POINTS)
    ax.scatter(fixed, fixed, color="k", zorder=3, s=40, label="fixed points z(x) = x")
    ax.set_xlabel("x")
    ax.set_ylim(-2.7, 2.7)
    ax.set_title(f"z(x) = eˣ − e⁻ˣ clamped outside [−1, 1], and z∘…∘z ({n}×)")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
