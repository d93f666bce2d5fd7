"""Tab "Exercises": the course's two calculation exercises, every number shown and checked against torch autograd."""

from __future__ import annotations

import math

import gradio as gr

from dlhub.exercises import COURSE_WEIGHTS, Z_EXPLANATION, Z_FIXED_POINTS, mlp_autograd, mlp_step
from dlhub.plots import plot_z

TITLE = "Exercises"
DEFAULTS = {"x1": 1.0, "x2": 1.0, "y": 1.0, "lr": 0.1}
NETWORK = """
```
  x1 (1) ──w13──▶ (3) ReLU ──w36──▶
        ╲ w14 ──▶ (4) ReLU ──w46──▶ (6) sigmoid ─▶ ŷ     L = −[y ln ŷ + (1 − y) ln(1 − ŷ)]
  x2 (2) ─w23,w24,w25─▶ (5) ReLU ──w56──▶               no biases
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
        gr.Warning(f"Not a finite number: {', '.join(bad)}. Type a number such as 0.4 or -1e-2.")
        return None
    return out


def _fmt(v: float) -> str:
    return "∞" if math.isinf(v) else f"{v:.6g}"


def explain(x1, x2, y, lr, *weights) -> str:
    names = ["x1", "x2", "y", "lr", *COURSE_WEIGHTS]
    numbers = parse_numbers(dict(zip(names, [x1, x2, y, lr, *weights])))
    if numbers is None:
        return gr.skip()
    if not 0 <= numbers["y"] <= 1:
        gr.Warning(f"The label y must lie in [0, 1] for the cross-entropy; got {numbers['y']}.")
        return gr.skip()
    w = {k: numbers[k] for k in COURSE_WEIGHTS}
    step = mlp_step(numbers["x1"], numbers["x2"], numbers["y"], numbers["lr"], w)
    auto = mlp_autograd(numbers["x1"], numbers["x2"], numbers["y"], w)
    forward = "\n".join(
        f"| {j} | s{j} = " + " + ".join(f"{numbers[f'x{i}']:g}·{w[f'w{i}{j}']:g}" for i in (1, 2))
        + f" = {_fmt(step.pre[f's{j}'])} | h{j} = ReLU(s{j}) = {_fmt(step.act[f'h{j}'])} |" for j in (3, 4, 5))
    s6_terms = " + ".join(f"{_fmt(step.act[f'h{j}'])}·{w[f'w{j}6']:g}" for j in (3, 4, 5))
    parts = [
        "#### Forward pass\n| neuron | pre-activation | activation |\n|---|---|---|\n" + forward
        + f"\n| 6 | s6 = {s6_terms} = {_fmt(step.pre['s6'])} | ŷ = σ(s6) = {_fmt(step.act['y_hat'])} |",
        f"#### Loss (natural log)\n- y = 0: L = −ln(1 − ŷ) = **{_fmt(step.loss_y0)}**\n"
        f"- y = 1: L = −ln ŷ = **{_fmt(step.loss_y1)}**\n- your label y = {numbers['y']:g}: L = **{_fmt(step.loss)}**",
        "#### Backward pass and one SGD step (lr = " + f"{numbers['lr']:g})",
    ]
    for name, factors in step.factors.items():
        grad_key = f"∂L/∂{name}"
        chain = " · ".join(f"{k.split(' = ')[0]}" for k in factors if k != grad_key)
        values = " · ".join(f"({_fmt(v)})" for k, v in factors.items() if k != grad_key)
        rows = "\n".join(f"| {k} | {_fmt(v)} |" for k, v in factors.items() if k != grad_key)
        parts.append(
            f"**{name}**: {grad_key} = {chain}\n\n| factor | value |\n|---|---|\n{rows}\n\n"
            f"{grad_key} = {values} = **{_fmt(factors[grad_key])}**  \n"
            f"{name} ← {w[name]:g} − {numbers['lr']:g} · {_fmt(factors[grad_key])} = **{_fmt(step.updated[name])}**")
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


def z_view(n) -> tuple:
    n = int(n)
    return plot_z(n), (f"Fixed points of z: {', '.join(f'{p:.4f}' for p in Z_FIXED_POINTS)}.\n\n{Z_EXPLANATION}")


def build(demo: gr.Blocks) -> None:
    gr.Markdown("### Exercise 1: one SGD step through a small MLP by hand" + NETWORK)
    with gr.Row():
        inputs = [gr.Textbox(str(DEFAULTS[k]), label=k, elem_id=f"ex-{k}", min_width=80) for k in DEFAULTS]
    with gr.Row():
        weight_boxes = [gr.Textbox(str(v), label=k, elem_id=f"ex-{k}", min_width=70) for k, v in COURSE_WEIGHTS.items()]
    result = gr.Markdown(elem_id="mlp-result")
    fields = inputs + weight_boxes
    for box in fields:
        box.submit(explain, fields, result, api_visibility="undocumented")
        box.blur(explain, fields, result, api_visibility="undocumented")
    gr.Button("Compute").click(explain, fields, result, api_name="mlp_exercise")

    gr.Markdown("### Exercise 2: the activation z(x) = eˣ − e⁻ˣ on [−1, 1], clamped to ±(e − e⁻¹) outside")
    n = gr.Slider(1, 1000, value=1000, step=1, label="n: how many times z is composed", elem_id="z-slider")
    z_plot = gr.Plot(elem_id="z-plot", show_label=False)
    z_text = gr.Markdown()
    n.change(z_view, [n], [z_plot, z_text], show_progress="hidden", trigger_mode="always_last",
             api_name="z_composed")
    demo.load(explain, fields, result, api_visibility="undocumented").then(
        z_view, [n], [z_plot, z_text], api_visibility="undocumented")
