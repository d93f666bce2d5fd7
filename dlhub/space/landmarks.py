"""Tab "Face landmarks": find every face in a photo, predict its 68 points, draw them, list their coordinates."""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

import gradio as gr
from PIL import Image, ImageDraw

from dlhub.data.landmarks import CONTOURS
from dlhub.metrics.intervals import estimate
from dlhub.space import models
from dlhub.space.common import (CheckedImage, clear_on_failure, example_file, fit_within, handler, image_file,
                                on_new_input, open_image, user_warning)

TITLE = "Face landmarks"
MAX_SIDE = 2048  # larger photos are scaled down first (a face of 100 px is plenty for the model)
COLUMNS = ["face", "point", "x", "y"]
ZOOM_SIDE = 320  # each face is also shown on its own at this size
CONCURRENCY = 2  # requests computed at once, from benchmarks/concurrency.py (README: "A whole class at once")


def warm_up(m) -> None:
    m.predict([Image.new("RGB", (224, 224))])  # each model once, when loaded: the first request is not the slow one


models.cache("landmarks").prepare = warm_up


def model(choice: str = models.DEFAULT):
    """The model `choice` names (the tab's default when left out), loaded once and kept."""
    return models.get_model("landmarks", choice)


def examples() -> list[str]:
    from skimage import data

    return [example_file("astronaut.png", lambda: Image.fromarray(data.astronaut()))]


def draw(photo: Image.Image, faces: list[dict], show_points: bool, show_lines: bool, show_boxes: bool) -> Image.Image:
    canvas = photo.convert("RGB")
    pen = ImageDraw.Draw(canvas)
    r = max(1.5, min(canvas.size) / 250)
    for face in faces:
        p = face["landmarks"]
        if show_boxes:
            x, y, w, h = face["box"]
            pen.rectangle((x, y, x + w, y + h), outline=(255, 200, 0), width=max(1, round(r)))
        if show_lines:
            for indices in CONTOURS.values():
                pen.line([tuple(p[i]) for i in indices], fill=(0, 200, 255), width=max(1, round(r * 0.8)))
        if show_points:
            for x, y in p:
                pen.ellipse((x - r, y - r, x + r, y + r), fill=(255, 40, 40))
    return canvas


def zoomed_faces(drawn: Image.Image, faces: list[dict]) -> list[tuple[str, str]]:
    """Each face cut out of the drawn photo with a margin and enlarged, so small faces' points can be seen."""
    views = []
    for i, face in enumerate(faces):
        x, y, w, h = face["box"]
        side = 1.4 * max(w, h)
        cx, cy = x + w / 2, y + h / 2
        box = tuple(round(v) for v in (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2))
        crop = drawn.crop(box).resize((ZOOM_SIDE, ZOOM_SIDE), Image.Resampling.LANCZOS)
        views.append((image_file(crop, f"face{i + 1}"), f"face {i + 1}"))
    return views


def run(path: str | None, show_points: bool, show_lines: bool, show_boxes: bool, model: str | None = models.DEFAULT):
    """/face_landmarks: `model` is the model chosen (the tab's default when left out)."""
    photo, note = fit_within(open_image(path), MAX_SIDE)
    photo = photo.convert("RGB")
    landmarker = models.get_model("landmarks", model)
    answered = models.answered_line(landmarker)
    faces = landmarker.detect_and_predict(photo)
    if not faces:
        user_warning("No face found: use a photo with a frontal face at least about 50 px across.")
        return (image_file(photo, "photo"), [], None, None,
                " ".join(t for t in ("**No face found** in this photo.", note, answered) if t))
    rows = [[i + 1, j + 1, round(float(x), 1), round(float(y), 1)]
            for i, face in enumerate(faces) for j, (x, y) in enumerate(face["landmarks"])]
    table = Path(tempfile.mkdtemp(prefix="dlhub-landmarks-")) / "landmarks.csv"
    with open(table, "w", newline="") as f:
        csv.writer(f).writerows([COLUMNS, *rows])
    summary = f"**{len(faces)} face{'s' if len(faces) > 1 else ''}** found; 68 points each (iBUG numbering from 1)."
    drawn = draw(photo, faces, show_points, show_lines, show_boxes)
    return (image_file(drawn, "landmarks"), rows, str(table), zoomed_faces(drawn, faces),
            " ".join(t for t in (summary, note, answered) if t))


def describe(m, metrics: dict) -> str:
    """The tab's header: the loaded model's test NME and MSE, with their 95% intervals when metrics.json has them."""
    nme, mse = estimate(metrics, "test_nme", mean=True), estimate(metrics, "test_mse_px2", mean=True)
    if nme is not None and mse is not None:
        measured = f", on HELEN test faces: NME {nme.text(3)}, MSE {mse.text(1, ' px²')}"
    elif metrics:
        measured = (f", test MSE {metrics['test_mse_px2']:.1f} px² and NME {metrics['test_nme']:.3f} on "
                    f"{metrics['test_faces']} HELEN faces")
    else:
        measured = ""
    return f"Backbone `{m.backbone}` + a 136-output head{measured}."


def build(demo: gr.Blocks) -> models.ModelChoice:
    gr.Markdown("### 68 face landmarks\nUpload a photo, use the webcam, or pick the example: every frontal face is "
                "found (OpenCV's Haar cascade), cropped like the training faces, and its 68 points are predicted.")
    choice = models.ModelChoice("landmarks", TITLE, "landmarks", describe)
    with gr.Row():
        with gr.Column():
            photo = CheckedImage(type="filepath", sources=["upload", "webcam", "clipboard"], label="photo",
                                 elem_id="landmarks-input", height=360)
            with gr.Row():
                points = gr.Checkbox(True, label="points")
                lines = gr.Checkbox(True, label="contour lines")
                boxes = gr.Checkbox(False, label="face boxes")
            picks = gr.Examples(examples(), [photo])
        with gr.Column():
            drawn = gr.Image(label="landmarks", interactive=False, height=360, elem_id="landmarks-output")
            summary = gr.Markdown(elem_id="landmarks-summary")
            zoomed = gr.Gallery(label="each face, enlarged", columns=3, height="auto", object_fit="contain",
                                elem_id="landmarks-faces", buttons=[])
    with gr.Accordion("Coordinates (pixels of the photo)", open=False):
        table = gr.Dataframe(headers=COLUMNS, interactive=False, elem_id="landmarks-table", max_height=300)
        download = gr.File(label="landmarks.csv", elem_id="landmarks-csv")
    # the model is the last input, with a default: callers of /face_landmarks with the first four still get an answer
    inputs, outputs = [photo, points, lines, boxes, choice.value], [drawn, table, download, zoomed, summary]
    nothing = (None, [], None, None, "")
    answer = handler(lambda photo, points, lines, boxes, model: run(photo, points, lines, boxes, model) if photo
                     else nothing)
    on_new_input(photo, picks, answer, inputs, outputs, api_name="face_landmarks", concurrency_limit=CONCURRENCY,
                 concurrency_id="landmarks")
    for toggle in (points, lines, boxes):
        clear_on_failure(toggle.change(answer, inputs, outputs, api_visibility="undocumented",
                                       concurrency_id="landmarks"), outputs)
    choice.on_change(lambda p, *rest: run(p, *rest) if p else gr.skip(), inputs[:-1], outputs,
                     concurrency_id="landmarks")
    return choice
