"""Tab "Face denoising": add noise of a chosen σ to a face and remove it again, with the PSNR of each image; the model
chosen answers: the default conv autoencoder, the course's Table 3 MLP (the bundled baseline), or any denoiser on the
Hub or in a folder."""

from __future__ import annotations

import gradio as gr
import numpy as np
import torch
from PIL import Image

from dlhub.denoise import add_noise
from dlhub.metrics import psnr
from dlhub.metrics.intervals import estimate
from dlhub.space import models
from dlhub.space.common import (CheckedImage, CheckedSlider, example_file, fit_within, handler, image_file,
                                on_new_input, open_image, user_error)

TITLE = "Face denoising"
MAX_SIDE = 512  # larger uploads are scaled down first (the model runs at the image's own resolution)
MAX_SEED = 2**31 - 1
CONCURRENCY = 2  # requests computed at once, from benchmarks/concurrency.py (README: "A whole class at once")
COURSE_MLP_KEY = "bundled:denoiser-mlp"  # the course's Table 3 MLP, bundled: the baseline
LABELS = {COURSE_MLP_KEY: "course baseline: Table 3 MLP (bundled: checkpoints/denoiser-mlp)"}
# the names of the two models this tab offered before the model choice, still understood by /denoise
CONV, COURSE_MLP = "conv autoencoder (bundled)", "course baseline: Table 3 MLP"
ALIASES = {CONV: models.DEFAULT, COURSE_MLP: COURSE_MLP_KEY}


def model(choice: str = models.DEFAULT):
    """The model `choice` names (the tab's default when left out), loaded once and kept."""
    return models.get_model("denoiser", choice, aliases=ALIASES)


def examples() -> list[list]:
    from skimage import data

    astronaut = Image.fromarray(data.astronaut())
    face = example_file("astronaut_face.png", lambda: astronaut.crop((140, 10, 340, 210)))
    return [[face, 0.2, 0, False], [face, 0.4, 1, False]]


def _db(value: float) -> str:
    return "∞ dB (identical)" if np.isinf(value) else f"{value:.2f} dB"


def parse_seed(seed) -> int:
    try:
        value = float(seed)
    except (TypeError, ValueError):
        value = float("nan")
    if not (value.is_integer() and 0 <= value <= MAX_SEED):
        raise user_error(f"The noise seed must be a whole number from 0 to {MAX_SEED:,}; got {seed!r}.")
    return int(value)


def run(path: str | None, sigma: float, seed, already_noisy: bool, model: str | None = models.DEFAULT):
    """/denoise: `model` is the model chosen (the tab's default when left out)."""
    image, note = fit_within(open_image(path), MAX_SIDE)
    gray = image.convert("L")
    denoiser = models.get_model("denoiser", model, aliases=ALIASES)
    answered = f"Denoised by {answered_by(denoiser, image.size if note else None)}."
    if already_noisy:
        denoised = image_file(denoiser.denoise([gray])[0], "denoised")
        text = ("Your photo was treated as already noisy: it was denoised as it is. With no clean reference, "
                "no PSNR can be computed.")
        return None, image_file(gray, "noisy"), denoised, " ".join(t for t in (text, answered, note) if t)
    if sigma is None or not 0 <= float(sigma) <= 1:
        raise user_error(f"σ must lie between 0 and 1, got {sigma}")
    generator = torch.Generator().manual_seed(parse_seed(seed))
    clean = torch.from_numpy(np.asarray(gray, dtype=np.float32) / 255.0)
    noisy_array = add_noise(clean, float(sigma), generator).numpy()
    noisy = Image.fromarray(np.round(noisy_array * 255).astype(np.uint8))
    denoised = denoiser.denoise([noisy])[0]
    reference = np.asarray(gray, np.float32) / 255.0
    as_float = lambda im: np.asarray(im, np.float32) / 255.0  # noqa: E731
    noisy_db = psnr([as_float(noisy)], [reference])["psnr"]
    denoised_db = psnr([as_float(denoised)], [reference])["psnr"]
    text = (f"PSNR against the clean image (σ = {float(sigma):.2f}): noisy **{_db(noisy_db)}**, denoised "
            f"**{_db(denoised_db)}**")
    if np.isfinite(noisy_db) and np.isfinite(denoised_db):
        text += f" ({denoised_db - noisy_db:+.2f} dB)."
    return (image_file(gray, "clean"), image_file(noisy, "noisy"), image_file(denoised, "denoised"),
            " ".join(t for t in (text, answered, note) if t))


def answered_by(m, scaled_to: tuple[int, int] | None = None) -> str:
    """Which model answered, in words: where it came from (repo and commit, or folder), its architecture, and the size
    it worked at (`scaled_to`: the photo was scaled down to that size first)."""
    if m.arch == "mlp":
        return (f"{models.answered_by(m)}, an MLP as the course's Table 3 (4,096 → 128 → 4,096, at "
                f"{m.image_size}×{m.image_size} px: the photo is resized to it and back)")
    size = f"at {scaled_to[0]}×{scaled_to[1]} px" if scaled_to else "at the photo's own resolution"
    return f"{models.answered_by(m)}, a `{m.arch}` autoencoder ({size})"


def run_or_clear(path: str | None, sigma: float, seed, already_noisy: bool, model: str | None = models.DEFAULT):
    """/denoise as the tab calls it: `run`, and no image (the photo removed) empties the outputs without a message."""
    return (None,) * 4 if path is None else run(path, sigma, seed, already_noisy, model)


def describe(m, metrics: dict) -> str:
    low, high = m.noise_std
    trained = f"σ from {low:g} to {high:g}" if high > low else f"σ = {low:g}"
    kind = "the course's Table 3 MLP" if m.arch == "mlp" else f"a `{m.arch}` autoencoder"
    return f"{kind[0].upper()}{kind[1:]} trained on faces with {trained}.{measured_psnr(metrics)}"


def measured_psnr(metrics: dict, sigma: float = 0.2) -> str:
    """The header's figure: the test faces' PSNR at σ, noisy → denoised, and the gain, with 95% intervals."""
    noisy, denoised = metrics.get(f"test_psnr_noisy_{sigma}"), estimate(metrics, f"test_psnr_denoised_{sigma}", mean=True)
    gain = estimate(metrics, f"test_psnr_gain_{sigma}", mean=True)
    if noisy is None or denoised is None or gain is None:
        return ""
    return (f" On its test faces (people never seen) at σ = {sigma:g}: PSNR {noisy:.2f} → {denoised.text(2, ' dB')}, "
            f"a gain of {gain.text(2, ' dB')}.")


def build(demo: gr.Blocks) -> models.ModelChoice:
    gr.Markdown("### Remove noise from a face photo\nThe photo is turned grayscale, Gaussian noise of strength σ is "
                "added, and the autoencoder removes it. PSNR compares each image with the clean one (higher is "
                "closer). Tick *already noisy* to denoise a photo that has no clean version.")
    choice = models.ModelChoice("denoiser", TITLE, "denoise", describe, labels=LABELS, aliases=ALIASES)
    with gr.Row():
        with gr.Column(scale=1):
            image = CheckedImage(type="filepath", sources=["upload", "webcam", "clipboard"], label="face photo",
                                 elem_id="denoise-input", height=260)
            sigma = CheckedSlider(0.0, 0.5, value=0.2, step=0.01, label="noise σ", elem_id="denoise-sigma")
            with gr.Row():
                seed = gr.Number(0, precision=0, label=f"noise seed (0 to {MAX_SEED:,})", elem_id="denoise-seed")
                already_noisy = gr.Checkbox(False, label="my photo is already noisy (no clean reference)")
        with gr.Column(scale=2):
            with gr.Row():
                clean_out = gr.Image(label="clean (grayscale)", interactive=False, height=256)
                noisy_out = gr.Image(label="noisy", interactive=False, height=256)
                denoised_out = gr.Image(label="denoised", interactive=False, height=256)
            summary = gr.Markdown(elem_id="denoise-psnr")
    # the model is the last input, with a default: callers of /denoise with the first four still get an answer
    inputs = [image, sigma, seed, already_noisy, choice.value]
    outputs = [clean_out, noisy_out, denoised_out, summary]
    # an example fills the four inputs and is denoised once, with the model chosen; a photo removed (×) empties the
    # outputs without a message. The controls' input events: only a visitor's own change reruns (an example sets them)
    picks = gr.Examples(examples(), inputs[:-1])
    on_new_input(image, picks, handler(run_or_clear), inputs, outputs, api_name="denoise", show_progress="minimal",
                 concurrency_limit=CONCURRENCY, concurrency_id="denoise")
    rerun = lambda im, *rest: run(im, *rest) if im is not None else gr.skip()  # noqa: E731
    for control in (sigma, seed, already_noisy):  # a refused value keeps the last answer (it names its own σ)
        control.input(handler(rerun), inputs, outputs, show_progress="hidden", trigger_mode="always_last",
                      api_visibility="undocumented", concurrency_id="denoise")
    choice.on_change(rerun, inputs[:-1], outputs, concurrency_id="denoise")
    # no noise is added to a photo that is already noisy: σ and the seed do not apply
    already_noisy.change(lambda noisy: [gr.update(interactive=not noisy)] * 2, [already_noisy], [sigma, seed],
                         queue=False, api_visibility="private")
    return choice
