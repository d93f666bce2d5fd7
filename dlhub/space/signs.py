"""Tab "Traffic signs": the GTSRB classifier's top-5, the image as the model saw it, and a Grad-CAM overlay."""

from __future__ import annotations

import gradio as gr
import numpy as np
from matplotlib import colormaps
from PIL import Image, ImageDraw

from dlhub.metrics.intervals import estimate
from dlhub.sign_drawings import DRAWN_CLASSES, draw_sign
from dlhub.signs import UNSURE
from dlhub.space import models
from dlhub.space.common import (CheckedImage, example_file, handler, heading_unless, image_file, on_new_input,
                                open_image)

TITLE = "Traffic signs"
CONCURRENCY = 2  # requests computed at once, from benchmarks/concurrency.py (README: "A whole class at once")
SHOWN = 200  # side of the 'as the model saw it' and Grad-CAM images


def model(choice: str = models.DEFAULT):
    """The model `choice` names (the tab's default when left out), loaded once and kept."""
    return models.get_model("signs", choice)


def examples() -> list[str]:
    return [example_file(f"sign_{c}.png", lambda c=c: draw_sign(c, 96, seed=c)) for c in (14, 1, 17, 13, 38, 12)]


def with_colour_scale(heat_overlay: Image.Image) -> Image.Image:
    """The Grad-CAM overlay with the colour scale beside it (jet: blue = no evidence, red = the most)."""
    w, h = heat_overlay.size
    bar_w, margin, text_w = 14, 6, 34
    canvas = Image.new("RGB", (w + margin + bar_w + text_w, h), "white")
    canvas.paste(heat_overlay, (0, 0))
    ramp = colormaps["jet"](np.linspace(1, 0, h - 20))[:, :3]
    bar = Image.fromarray(np.round(np.repeat(ramp[:, None], bar_w, 1) * 255).astype(np.uint8))
    canvas.paste(bar, (w + margin, 10))
    pen = ImageDraw.Draw(canvas)
    pen.text((w + margin + bar_w + 3, 6), "high", fill="black")
    pen.text((w + margin + bar_w + 3, h - 18), "low", fill="black")
    return canvas


def classify(path: str | None, model: str | None = models.DEFAULT):
    """/classify_sign: `model` is the model chosen (the tab's default when left out)."""
    image = open_image(path)
    classifier = models.get_model("signs", model)
    probabilities = classifier.predict([image], top_k=5)[0]
    seen = classifier.preprocess([image])[0].permute(1, 2, 0).numpy()
    heat, index = classifier.grad_cam(image)
    overlay = 0.55 * seen + 0.45 * colormaps["jet"](heat)[..., :3]
    as_pil = lambda a: Image.fromarray(np.round(np.clip(a, 0, 1) * 255).astype(np.uint8)).resize(  # noqa: E731
        (SHOWN, SHOWN), Image.Resampling.NEAREST)
    top = max(probabilities.values())
    unsure = (f"{NOT_SURE} the top class has only {top:.0%}. Crop the photo close around one German traffic sign.  \n"
              if top < UNSURE else "")
    note = (f"{unsure}The model saw the image at {classifier.input_size}×{classifier.input_size} px. Grad-CAM shows "
            f"where the evidence for **{classifier.labels[index]}** is (red: most, blue: none).  \n{CONFIDENCE_NOTE}  \n"
            f"{models.answered_line(classifier)}")
    return (probabilities, image_file(as_pil(seen), "seen"), image_file(with_colour_scale(as_pil(overlay)), "cam"),
            note)


NOT_SURE = "**Not sure this is a traffic sign:**"  # the note's start when the top class is under UNSURE
label_heading = heading_unless(NOT_SURE)  # the top-5 box shows no top class then (it would read as the answer)
CONFIDENCE_NOTE = ("*The top class rarely shows more than about 90 %: the model was trained with label smoothing "
                   "(0.1), which asks it to keep some probability for the other 42 classes. Read the bars as a "
                   "ranking; the test accuracy above says how often the top class is right.*")


def describe(m, metrics: dict) -> str:
    """The tab's header: the loaded model's test accuracy with its 95% interval (dlhub.metrics.intervals)."""
    found = estimate(metrics, "test_accuracy", "test_images")
    if found is not None:
        accuracy = f", test accuracy {found.text()} on the official test images"
    elif metrics:
        accuracy = f", test accuracy {metrics['test_accuracy']:.4f} on the {metrics['test_images']:,} official test images"
    else:
        accuracy = ""
    return f"{len(m.labels)} GTSRB classes{accuracy}."


def build(demo: gr.Blocks) -> models.ModelChoice:
    gr.Markdown("### Which traffic sign is this?\nUpload a photo cropped around a German traffic sign, or pick one "
                f"of the signs this project draws ({', '.join(DRAWN_CLASSES.values())}…).")
    choice = models.ModelChoice("signs", TITLE, "signs", describe)
    with gr.Row():
        with gr.Column():
            image = CheckedImage(type="filepath", sources=["upload", "clipboard"], label="sign photo",
                                 elem_id="signs-input", height=260)
            picks = gr.Examples(examples(), [image])
        with gr.Column():
            label = gr.Label(num_top_classes=5, label="top 5", elem_id="signs-label")
            with gr.Row():
                seen = gr.Image(label="as the model saw it", interactive=False, height=230, buttons=[],
                                elem_id="signs-seen")
                cam = gr.Image(label="Grad-CAM for the top class", interactive=False, height=230, buttons=[],
                               elem_id="signs-cam")
            note = gr.Markdown(elem_id="signs-note")
    outputs = [label, seen, cam, note]
    answer = handler(lambda photo, model: classify(photo, model) if photo else (None, None, None, ""))
    on_new_input(image, picks, answer, [image, choice.value], outputs, api_name="classify_sign",
                 concurrency_limit=CONCURRENCY, concurrency_id="classify_sign")
    choice.on_change(lambda photo, model: classify(photo, model) if photo else gr.skip(), [image], outputs,
                     concurrency_id="classify_sign")
    note.change(label_heading, [note], [label], queue=False, api_visibility="private")  # after every answer
    return choice
