"""Tab "Face denoising": add noise of a chosen σ to a face and remove it again, with the PSNR of each image; the bundled
conv autoencoder or the course's Table 3 MLP (the baseline) answers."""

from __future__ import annotations

import gradio as gr
import numpy as np
import torch
from PIL import Image

import dlhub
from dlhub.denoise import add_noise
from dlhub.errors import DLHubError
from dlhub.metrics import psnr
from dlhub.tasks import BUNDLED_DIR
from spaces.common import (CheckedImage, clear_on_failure, example_file, fit_within, handler, image_file, load_once,
                           model_line, open_image, user_error)

TITLE = "Face denoising"
MAX_SIDE = 512  # larger uploads are scaled down first (the model runs at the image's own resolution)
MAX_SEED = 2**31 - 1
CONCURRENCY = 2  # requests computed at once, from benchmarks/concurrency.py (README: "A whole class at once")
CONV, COURSE_MLP = "conv autoencoder (bundled)", "course baseline: Table 3 MLP"


@load_once
def model():
    return dlhub.load("denoiser")


@load_once
def course_mlp():
    return dlhub.load("denoiser", BUNDLED_DIR / "denoiser-mlp")


MODELS = {CONV: model, COURSE_MLP: course_mlp}


def examples() -> list[list]:
    from skimage import data

    astronaut = Image.fromarray(data.astronaut())
    face = example_file("astronaut_face.png", lambda: astronaut.crop((140, 10, 340, 210)))
    return [[face, 0.2, 0, False, CONV], [face, 0.4, 1, False, CONV], [face, 0.2, 0, False, COURSE_MLP]]


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


def run(path: str | None, sigma: float, seed, already_noisy: bool, model_choice: str | None = CONV):
    model_choice = model_choice or CONV  # API callers may leave the model out: the default one
    if model_choice not in MODELS:
        raise user_error(f"Unknown model {model_choice!r}: choose {' or '.join(repr(m) for m in MODELS)}.")
    image, note = fit_within(open_image(path), MAX_SIDE)
    gray = image.convert("L")
    try:
        denoiser = MODELS[model_choice]()
    except DLHubError as err:
        raise user_error(f"No denoising model could be loaded ({model_choice}): {err}") from None
    answered = f"Denoised by the {answered_by(model_choice, denoiser)}."
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


def answered_by(model_choice: str, m) -> str:
    """Which model answered, in words: the user's choice and the loaded model's architecture."""
    if m.arch == "mlp":
        return (f"**{model_choice}** (4,096 → 128 → 4,096, at {m.image_size}×{m.image_size} px: the photo is "
                "resized to it and back)")
    return f"**{model_choice}** (`{m.arch}`, at the photo's own resolution)"


def model_note() -> str:
    lines = []
    for name, loader in MODELS.items():
        try:
            m = loader()
        except DLHubError as err:  # the default model's line says why; the baseline is a folder of this Space
            why = model_line("denoiser", loader) if loader is model else f"⚠️ not loaded ({err})."
            lines.append(f"{name}: {why}")
            continue
        low, high = m.noise_std
        trained = f"σ from {low:g} to {high:g}" if high > low else f"σ = {low:g}"
        lines.append(f"{name}: a `{m.arch}` autoencoder trained on faces with {trained}. "
                     f"{model_line('denoiser', loader)}")
    return "\n\n".join(lines)


def build(demo: gr.Blocks) -> None:
    gr.Markdown("### Remove noise from a face photo\nThe photo is turned grayscale, Gaussian noise of strength σ is "
                "added, and the autoencoder removes it. PSNR compares each image with the clean one (higher is "
                "closer). Tick *already noisy* to denoise a photo that has no clean version.")
    gr.Markdown(model_note())
    with gr.Row():
        with gr.Column(scale=1):
            image = CheckedImage(type="filepath", sources=["upload", "webcam", "clipboard"], label="face photo",
                             elem_id="denoise-input", height=260)
            sigma = gr.Slider(0.0, 0.5, value=0.2, step=0.01, label="noise σ", elem_id="denoise-sigma")
            with gr.Row():
                seed = gr.Number(0, precision=0, label=f"noise seed (0 to {MAX_SEED:,})", elem_id="denoise-seed")
                already_noisy = gr.Checkbox(False, label="my photo is already noisy (no clean reference)")
            model_choice = gr.Radio(list(MODELS), value=CONV, label="model", elem_id="denoise-model")
        with gr.Column(scale=2):
            with gr.Row():
                clean_out = gr.Image(label="clean (grayscale)", interactive=False, height=256)
                noisy_out = gr.Image(label="noisy", interactive=False, height=256)
                denoised_out = gr.Image(label="denoised", interactive=False, height=256)
            summary = gr.Markdown(elem_id="denoise-psnr")
    # the model is the last input, with a default: callers of /denoise with the first four still get an answer
    inputs = [image, sigma, seed, already_noisy, model_choice]
    outputs = [clean_out, noisy_out, denoised_out, summary]
    gr.Examples(examples(), inputs, outputs, fn=handler(run), run_on_click=True, cache_examples=False,
                api_visibility="private")
    clear_on_failure(image.change(handler(run), inputs, outputs, show_progress="minimal", api_name="denoise",
                                  concurrency_limit=CONCURRENCY, concurrency_id="denoise"), outputs)
    rerun = handler(lambda im, *rest: run(im, *rest) if im is not None else gr.skip())
    for control in (sigma, seed, already_noisy, model_choice):
        clear_on_failure(control.change(rerun, inputs, outputs, show_progress="hidden", trigger_mode="always_last",
                                        api_visibility="undocumented", concurrency_id="denoise"), outputs)
    # no noise is added to a photo that is already noisy: σ and the seed do not apply
    already_noisy.change(lambda noisy: [gr.update(interactive=not noisy)] * 2, [already_noisy], [sigma, seed],
                         queue=False, api_visibility="private")
