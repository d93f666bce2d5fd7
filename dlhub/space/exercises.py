"""Tab "Exercises": the course's two calculation exercises, every number shown and checked against torch autograd."""

from __future__ import annotations

import math

import gradio as gr

from dlhub.exercises import COURSE_WEIGHTS, Z_FIXED_POINTS, mlp_autograd, mlp_step, plot_z, sigmoid, z_explanation
from dlhub.space.common import CheckedSlider, clear_on_failure, handler, user_warning

TITLE = "Exercises"
# requests computed at once, from benchmarks/concurrency.py (see "A whole class at once" in the README)
CONCURRENCY = {"mlp": 2, "z": 1}
DEFAULTS = {"x1": 1.0, "x2": 2.0, "y": 0.0, "lr": 0.1}  # the course's question: x = (1, 2), label 0, lr 0.1
NETWORK = """
```
            w13 = 0.4                w36 = −0.2
  x1 (1) ─┬──────────────▶ (3) ReLU ─────────────┐
          │ w14 = −0.2               w46 = 0.5   ▼
          ├──────────────▶ (4) ReLU ──────────▶ (6) sigmoid ─▶ ŷ
          │ w15 = −0.3               w56 = −0.6  ▲
          └──────────────▶ (5) ReLU ─────────────┘
  x2 (2) ── w23 = 0.0 ─▶ (3),  w24 = 0.7 ─▶ (4),  w25 = 0.1 ─▶ (5)

  L = −[y ln ŷ + (1 − y) ln(1 − ŷ)]      no biases      (the course's weights; edit them below)
```
"""


def parse_numbers(values: dict[str, str]) -> dict[str, float] | None:
    """Floats from the text boxes; on any bad entry a gr.Warning names it and None is returned."""
    out, bad = {}, []
    for name, text in values.items():
        try:
            out[name] = float(str(text).strip().replace(",", "."))
            if not math.isfinite(out[name]):
                raise ValueError
        except ValueError:
            bad.append(f"{name} = {text!r}")
    if bad:
        user_warning(f"Not a finite number: {', '.join(bad)}. Type a number such as 0.4 or -1e-2.")
        return None
    return out


def _fmt(v: float) -> str:
    """A number for the page: 4 significant digits (as the course writes them), 0 never −0, a true minus sign."""
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    text = f"{v:.4g}"
    return "0" if float(text) == 0 else text.replace("-", "−")


def _factor(v: float) -> str:
    """A factor inside a product: negative numbers in parentheses, as in 1 · (−0.2)."""
    text = _fmt(v)
    return f"({text})" if text.startswith("−") else text


def explain(x1, x2, y, lr, *weights) -> str:
    names = ["x1", "x2", "y", "lr", *COURSE_WEIGHTS]
    numbers = parse_numbers(dict(zip(names, [x1, x2, y, lr, *weights])))
    if numbers is None:
        return ""  # the warning says what to fix; the old result would answer other numbers
    if not 0 <= numbers["y"] <= 1:
        user_warning(f"The label y must lie in [0, 1] for the cross-entropy; got {_fmt(numbers['y'])}.")
        return ""
    if numbers["lr"] <= 0:  # a step of lr ≤ 0 does not descend: the answer to 1.3 would not hold
        user_warning(f"The learning rate lr must be above 0 (SGD moves each weight against its gradient by lr times "
                     f"it); got {_fmt(numbers['lr'])}.")
        return ""
    w = {k: numbers[k] for k in COURSE_WEIGHTS}
    step = mlp_step(numbers["x1"], numbers["x2"], numbers["y"], numbers["lr"], w)
    auto = mlp_autograd(numbers["x1"], numbers["x2"], numbers["y"], w)
    forward = "\n".join(
        f"| {j} | s{j} = " + " + ".join(f"{_factor(numbers[f'x{i}'])} · {_factor(w[f'w{i}{j}'])}" for i in (1, 2))
        + f" = {_fmt(step.pre[f's{j}'])} | h{j} = ReLU(s{j}) = {_fmt(step.act[f'h{j}'])} |" for j in (3, 4, 5))
    s6_terms = " + ".join(f"{_factor(step.act[f'h{j}'])} · {_factor(w[f'w{j}6'])}" for j in (3, 4, 5))
    parts = [
        "#### Forward pass\n| neuron | pre-activation | activation |\n|---|---|---|\n" + forward
        + f"\n| 6 | s6 = {s6_terms} = {_fmt(step.pre['s6'])} | ŷ = σ(s6) = {_fmt(step.act['y_hat'])} |",
        f"#### Loss (natural log)\n- y = 0: L = −ln(1 − ŷ) = **{_fmt(step.loss_y0)}**\n"
        f"- y = 1: L = −ln ŷ = **{_fmt(step.loss_y1)}**\n- your label y = {_fmt(numbers['y'])}: L = "
        f"**{_fmt(step.loss)}**",
        "#### Backward pass and one SGD step (lr = " + f"{_fmt(numbers['lr'])})",
    ]
    for name, factors in step.factors.items():
        grad_key = f"∂L/∂{name}"
        chain = " · ".join(f"{k.split(' = ')[0]}" for k in factors if k != grad_key)
        values = " · ".join(_factor(v) for k, v in factors.items() if k != grad_key)
        rows = "\n".join(f"| {k} | {_fmt(v)} |" for k, v in factors.items() if k != grad_key)
        parts.append(
            f"**{name}**: {grad_key} = {chain}\n\n| factor | value |\n|---|---|\n{rows}\n\n"
            f"{grad_key} = {values} = **{_fmt(factors[grad_key])}**  \n"
            f"{name} ← {_fmt(w[name])} − {_fmt(numbers['lr'])} · {_factor(factors[grad_key])} = "
            f"**{_fmt(step.updated[name])}**")
    parts.append(bigger_or_smaller(numbers, w, step))
    checks = [("loss", step.loss, auto["loss"]), ("∂L/∂w36", step.factors["w36"]["∂L/∂w36"], auto["w36"]),
              ("∂L/∂w25", step.factors["w25"]["∂L/∂w25"], auto["w25"])]
    agree = lambda a, b: "✓ yes" if math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) else "✗ NO"  # noqa: E731
    rows = "\n".join(f"| {n} | {_fmt(a)} | {_fmt(b)} | {agree(a, b)} |" for n, a, b in checks)
    parts.append("#### Check against torch autograd\n| quantity | by hand | autograd | agree |\n|---|---|---|---|\n"
                 + rows)
    if step.act["y_hat"] in (0.0, 1.0):
        parts.append("ŷ rounds to exactly %g in float64: ∂L/∂ŷ and ∂ŷ/∂s6 alone are ∞ and 0, so the gradient uses "
                     "their product, ŷ − y." % step.act["y_hat"])
    return "\n\n".join(parts)


def bigger_or_smaller(numbers: dict, w: dict, step) -> str:
    """Question 1.3: is the loss bigger or smaller, and why? Answered for these numbers."""
    y_hat, y = step.act["y_hat"], numbers["y"]
    leaning = "class 1" if y_hat > 0.5 else "class 0" if y_hat < 0.5 else "neither class"
    compare = ("bigger" if step.loss_y0 > step.loss_y1 else "smaller" if step.loss_y0 < step.loss_y1 else "the same")
    # the loss on the same example after the step: only w36 and w25 change (the two weights the exercise updates);
    # w25 reaches s6 through s5 and h5
    h5_after = max(0.0, numbers["x1"] * w["w15"] + numbers["x2"] * step.updated["w25"])
    s6_after = (step.pre["s6"] + (step.updated["w36"] - w["w36"]) * step.act["h3"]
                + (h5_after - step.act["h5"]) * w["w56"])
    y_after = sigmoid(s6_after)
    loss_after = -(y * math.log(y_after) + (1 - y) * math.log1p(-y_after)) if 0 < y_after < 1 else float("nan")
    change = "smaller" if loss_after < step.loss else "bigger" if loss_after > step.loss else "unchanged"
    return (
        "#### 1.3 Is the loss bigger or smaller, and why?\n"
        f"- **Label 0 against label 1:** ŷ = {_fmt(y_hat)}, so the network leans towards {leaning}. The loss for "
        f"y = 0, −ln(1 − ŷ) = {_fmt(step.loss_y0)}, is **{compare}** than for y = 1, −ln ŷ = {_fmt(step.loss_y1)}: "
        "cross-entropy punishes a prediction by how little probability it gave the true class, and −ln(1 − ŷ) > −ln ŷ "
        "exactly when ŷ > ½.\n"
        f"- **After the SGD step** (w36 → {_fmt(step.updated['w36'])}, w25 → {_fmt(step.updated['w25'])}), the same "
        f"example gives s6 = {_fmt(s6_after)}, ŷ = {_fmt(y_after)} and L = {_fmt(loss_after)}: **{change}** than "
        f"{_fmt(step.loss)}. Each weight moved against its gradient, the direction in which the loss falls; with a "
        "small enough learning rate one step lowers the loss on this example."
        + (" Here w25 does not move: neuron 5's ReLU is off (s5 ≤ 0), so no gradient reaches it." if
           step.act["h5"] == 0 else ""))


def z_view(n) -> tuple:
    n = int(n)
    return plot_z(n), (f"Fixed points of z: {', '.join(_fmt(p) for p in Z_FIXED_POINTS)}.\n\n{z_explanation(n)}")


def build(demo: gr.Blocks) -> None:
    gr.Markdown("### Exercise 1: one SGD step through a small MLP by hand" + NETWORK)
    with gr.Row(equal_height=True):
        inputs = [gr.Textbox(str(DEFAULTS[k]), label=k, elem_id=f"ex-{k}", min_width=80) for k in DEFAULTS]
        compute = gr.Button("Compute", variant="primary", elem_id="ex-compute", min_width=100)
    with gr.Row():
        weight_boxes = [gr.Textbox(str(v), label=k, elem_id=f"ex-{k}", min_width=70) for k, v in COURSE_WEIGHTS.items()]
    gr.Markdown("*Press Enter in a field or Compute to recompute.*")
    result = gr.Markdown(elem_id="mlp-result")
    fields = inputs + weight_boxes
    explain_ = handler(explain)
    for box in fields:  # Enter in a field computes; leaving a field does not (a click on Compute would compute twice)
        clear_on_failure(box.submit(explain_, fields, result, api_visibility="undocumented",
                                    concurrency_id="mlp_exercise"), [result])
    clear_on_failure(compute.click(explain_, fields, result, api_name="mlp_exercise", concurrency_id="mlp_exercise",
                                   concurrency_limit=CONCURRENCY["mlp"]), [result])

    gr.Markdown("### Exercise 2: the activation z(x) = eˣ − e⁻ˣ on [−1, 1], clamped to ±(e − e⁻¹) outside")
    n = CheckedSlider(1, 1000, value=1000, step=1, label="n: how many times z is composed", elem_id="z-slider")
    z_plot = gr.Plot(elem_id="z-plot", show_label=False)
    z_text = gr.Markdown(elem_id="z-text")
    z_view_ = handler(z_view)
    # a refused n (out of range) keeps the last plot: its text names its own n
    n.change(z_view_, [n], [z_plot, z_text], show_progress="hidden", trigger_mode="always_last", api_name="z_composed",
             concurrency_limit=CONCURRENCY["z"])
    demo.load(explain_, fields, result, api_visibility="undocumented").then(
        z_view_, [n], [z_plot, z_text], api_visibility="undocumented")
