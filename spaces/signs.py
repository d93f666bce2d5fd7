"""Tab "Traffic signs": the GTSRB classifier's top-5, the image as the model saw it, and a Grad-CAM overlay."""

from __future__ import annotations

import functools

import gradio as gr
import numpy as np
from matplotlib import colormaps
from PIL import Image

import dlhub
from dlhub.errors import DLHubError
from dlhub.hub import read_metrics
from dlhub.sign_drawings import DRAWN_CLASSES, draw_sign
from spaces.common import CheckedImage, example_file, open_image, user_error

TITLE = "Traffic signs"
SHOWN = 200  # side of the 'as the model saw it' and Grad-CAM images


@functools.cache
def model():
    return dlhub.load("signs")


def examples() -> list[str]:
    return [example_file(f"sign_{c}.png", lambda c=c: draw_sign(c, 96, seed=c)) for c in (14, 1, 17, 13, 38, 12)]


def classify(path: str | None):
    image = open_image(path)
    try:
        classifier = model()
    except DLHubError as err:
        raise user_error(f"No traffic-sign model could be loaded: {err}") from None
    probabilities = classifier.predict([image], top_k=5)[0]
    seen = classifier.preprocess([image])[0].permute(1, 2, 0).numpy()
    heat, index = classifier.grad_cam(image)
    overlay = 0.55 * seen + 0.45 * colormaps["jet"](heat)[..., :3]
    as_pil = lambda a: Image.fromarray(np.round(np.clip(a, 0, 1) * 255).astype(np.uint8)).resize(  # noqa: E731
        (SHOWN, SHOWN), Image.Resampling.NEAREST)
    note = (f"The model saw the image at {classifier.input_size}×{classifier.input_size} px. Grad-CAM shows where "
            f"the evidence for **{classifier.labels[index]}** is.")
    return probabilities, as_pil(seen), as_pil(overlay), note


def model_note() -> str:
    try:
        m = model()
    except DLHubError as err:
        return f"⚠️ No traffic-sign model could be loaded: {err}"
    metrics = read_metrics(m)
    accuracy = f", test accuracy {metrics['test_accuracy']:.4f} on the {metrics['test_images']:,} official test " \
               "images" if metrics else ""
    return f"Model: {len(m.labels)} GTSRB classes{accuracy}; loaded from {m.source}."


def build(demo: gr.Blocks) -> None:
    gr.Markdown("### Which traffic sign is this?\nUpload a photo cropped around a German traffic sign, or pick one "
                f"of the signs this project draws ({', '.join(DRAWN_CLASSES.values())}…).")
    gr.Markdown(model_note())
    with gr.Row():
        with gr.Column():
            image = CheckedImage(type="filepath", sources=["upload", "clipboard"], label="sign photo",
                             elem_id="signs-input", height=260)
            gr.Examples(examples(), [image])
        with gr.Column():
            label = gr.Label(num_top_classes=5, label="top 5", elem_id="signs-label")
            with gr.Row():
                seen = gr.Image(label="as the model saw it", interactive=False, height=210)
                cam = gr.Image(label="Grad-CAM for the top class", interactive=False, height=210)
            note = gr.Markdown()
    image.change(lambda photo: classify(photo) if photo else (None, None, None, ""), [image], [label, seen, cam, note],
                 api_name="classify_sign")
