"""What every tab shares: user-facing errors (never naming a server path), handlers safe under concurrent requests,
the model line, example files, image-size and upload limits. Choosing and loading models: dlhub/space/models.py."""

from __future__ import annotations

import functools
import logging
import math
import os
import re
import tempfile
import time
from pathlib import Path

import gradio as gr
from PIL import Image, UnidentifiedImageError

from dlhub.cache import MB, megabytes_setting, prune_lru
from dlhub.errors import DLHubError
from dlhub.modeling import MAX_PIXELS
from dlhub.tasks import get_task

# Example files are generated at start-up (nothing from the course's data is shipped); launch() allows this folder.
EXAMPLES_DIR = Path(tempfile.gettempdir()) / "dlhub-space-examples"
MIN_IMAGE_SIDE = 8
# Output images are written here, one new file per request, and handed to Gradio as paths (see `image_file`)
OUTPUT_DIR = Path(tempfile.gettempdir()) / "dlhub-space-outputs"
OUTPUT_MAX_AGE_S = 600
OUTPUT_MAX_BYTES = megabytes_setting("DLHUB_OUTPUT_CACHE_MB", 200)  # and at most this much, the oldest removed first
OUTPUT_IN_USE_S = 60  # younger files may not have been copied by Gradio yet: never removed
_last_prune = [0.0]  # time.time() of the last clean-up of OUTPUT_DIR
# Uploads: Gradio refuses larger files (CourseSpace.launch sets it however the app is started), and the upload
# components check it again when they read a file (`checked_upload`), which holds however the app is launched
MAX_UPLOAD_MB = int(os.environ.get("DLHUB_MAX_UPLOAD_MB", "20"))
SERVER_ERROR = "Something went wrong on the server; it was logged."
log = logging.getLogger("dlhub.space")


def user_error(message: str) -> gr.Error:
    """A gr.Error for bad user input: shown in the page, not printed as a server traceback (it is not a bug)."""
    return gr.Error(message, print_exception=False)


# A server path in a message: from / or ~, not inside a URL or a repo id (no letter, ':', '/' or '.' just before it)
_SERVER_PATH = re.compile(r"(?<![\w:/.~-])[/~][^\s'\"`,;()\[\]]*")


def without_paths(text: str) -> str:
    """`text` with every server path cut to its last part ("/srv/models/run-3" → "run-3"): what the page shows of
    an error never says where things are on the server."""

    def last_part(match: re.Match) -> str:
        path = match.group(0).rstrip(".:")
        return (Path(path).name or "…") + match.group(0)[len(path):]

    return _SERVER_PATH.sub(last_part, text)


def user_warning(message: str) -> None:
    """A gr.Warning for the page, also written to the server's log (what people were told, for whoever runs the Space)."""
    gr.Warning(message)
    log.info("dlhub: the user was warned: %s", message)


def handler(fn):
    """An event handler as the page should see it: a gr.Error (bad input) passes through as it is; any other exception
    is a bug: it is logged with its traceback and the page shows one short sentence instead of a bare "Error"."""

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception:
            log.exception("dlhub: unexpected error in the Space's %s", fn.__qualname__)
            raise gr.Error(SERVER_ERROR, print_exception=False) from None

    return wrapped


def on_new_input(component, examples: gr.Examples, fn, inputs: list, outputs: list, *, api_name: str, **kwargs):
    """Run `fn` once each time a visitor puts something new in `component` (an upload, the webcam, a paste, the ×:
    its `input` event) or picks one of `examples` (after they are loaded into the inputs), and empty the outputs when
    it fails. Not `.change`: Gradio 6 fires an image's change event twice when one image replaces another, so every
    replacement ran the model twice and showed its message twice. `api_name` names the first event only."""
    typed = component.input(fn, inputs, outputs, api_name=api_name, **kwargs)
    picked = examples.load_input_event.then(fn, inputs, outputs, api_visibility="undocumented", **kwargs)
    for event in (typed, picked):
        clear_on_failure(event, outputs)


def clear_on_failure(event, outputs: list) -> None:
    """When `event` fails, empty its outputs: a message never stands beside the previous request's results."""
    event.failure(lambda: [None] * len(outputs) if len(outputs) > 1 else None, None, outputs,
                  api_visibility="private", queue=False)


def heading_unless(prefix: str):
    """For `answer.change` beside a gr.Label: the Label's bold heading (its top class) is hidden while the answer
    starts with `prefix`, the tab's "not sure" (the heading would read as the answer)."""
    def label_heading(answer: str | None):
        return gr.Label(show_heading=not (answer or "").startswith(prefix))
    return label_heading


def model_line(task: str, load) -> str:
    """One sentence for users on where the tab's model came from, with a link to its card (details go to the log)."""
    spec = get_task(task)
    try:
        model = load()
    except DLHubError:
        log.exception("dlhub: no %s model", task)
        return f"⚠️ No model could be loaded for this tab (the {spec.repo_id} repo and the bundled copy both failed)."
    origin = model.origin
    card = f"[model card](https://huggingface.co/{origin.repo_id or spec.repo_id})"
    if origin.kind == "hub":
        commit = f", commit `{origin.commit[:7]}`" if origin.commit else ""
        return f"Model: `{origin.repo_id}` from the Hub{commit} ({card})."
    if origin.kind == "local":
        return f"Model: the local folder `{origin.folder_name}`."
    why = {"offline": "this Space runs offline", "unreachable": "the Hub could not be reached",
           "missing": f"`{spec.repo_id}` is not on the Hub yet"}.get(origin.reason, "the Hub could not be used")
    return f"Bundled model — {why} ({card})."


def image_file(image: Image.Image, name: str = "image") -> str:
    """Save an output image to a new file and return its path.

    Gradio caches a returned PIL image under the hash of its bytes and rewrites that file in place, so two requests
    that produce the same image write one file while a browser may be reading it (seen as "Too much data for declared
    Content-Length"). A returned path is copied into the cache under a temporary name and renamed: atomic."""
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    now = time.time()
    if now - _last_prune[0] > OUTPUT_MAX_AGE_S / 10:  # not on every request: the folder holds minutes of outputs
        _last_prune[0] = now  # two requests pruning at once is harmless
        recent = []
        for old in OUTPUT_DIR.glob("*.png"):  # Gradio has its own copy by then
            try:
                age = now - old.stat().st_mtime
                if age > OUTPUT_MAX_AGE_S:
                    old.unlink()
                elif age < OUTPUT_IN_USE_S:
                    recent.append(old)
            except OSError:
                pass
        prune_lru(OUTPUT_DIR.glob("*.png"), OUTPUT_MAX_BYTES, recent)
    fd, path = tempfile.mkstemp(prefix=f"{name}-", suffix=".png", dir=OUTPUT_DIR)
    with os.fdopen(fd, "wb") as f:
        image.save(f, format="PNG")
    return path


def example_file(name: str, make) -> str:
    """Path of an example image, written once by make() -> PIL.Image."""
    path = EXAMPLES_DIR / name
    if not path.is_file():
        EXAMPLES_DIR.mkdir(parents=True, exist_ok=True)
        make().save(path)
    return str(path)


def fit_within(image: Image.Image, max_side: int) -> tuple[Image.Image, str]:
    """The image scaled down so its longer side is at most max_side; a note says when it was scaled."""
    w, h = image.size
    if max(w, h) <= max_side:
        return image, ""
    scale = max_side / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return image.resize(size, Image.Resampling.LANCZOS), f"Scaled from {w}×{h} to {size[0]}×{size[1]} px."


def open_image(path: str | None) -> Image.Image:
    """Open an upload lazily: its size is checked before the pixels are decoded (no memory blow-up)."""
    if not path:
        raise user_error("No image: upload one or pick an example.")
    try:
        image = Image.open(path)
    except (UnidentifiedImageError, OSError):
        raise user_error("This file is not an image that can be read (PNG, JPEG, WebP, GIF, BMP, TIFF…).") from None
    except Image.DecompressionBombError:
        raise user_error(f"The image is too large: use one under {MAX_PIXELS // 1_000_000} megapixels.") from None
    w, h = image.size
    if w * h > MAX_PIXELS:
        raise user_error(f"The image is {w}×{h} px: use one under {MAX_PIXELS // 1_000_000} megapixels.")
    if min(w, h) < MIN_IMAGE_SIDE:
        raise user_error(f"The image is {w}×{h} px: use one at least {MIN_IMAGE_SIDE} px on each side.")
    try:
        image.load()
    except (OSError, ValueError) as err:
        raise user_error(f"The image could not be decoded ({err}).") from None
    return image


def check_upload_size(payload) -> None:
    """Refuse an uploaded file over MAX_UPLOAD_MB before it is read, with one sentence."""
    path = getattr(payload, "path", None)
    try:
        size = os.path.getsize(path) if path else 0
    except OSError:
        return  # no such file: the component's own reading says so
    if size > MAX_UPLOAD_MB * MB:
        raise user_error(f"The file is {size / MB:,.0f} MB: upload one of at most {MAX_UPLOAD_MB} MB.")


class CheckedFile(gr.File):
    """gr.File that refuses a file over MAX_UPLOAD_MB when it is read, however the app was launched."""

    def get_block_name(self) -> str:
        return "file"

    def preprocess(self, payload):
        check_upload_size(payload)
        return super().preprocess(payload)


class CheckedAudio(gr.Audio):
    """gr.Audio that refuses a file over MAX_UPLOAD_MB when it is read, however the app was launched."""

    def get_block_name(self) -> str:
        return "audio"

    def preprocess(self, payload):
        check_upload_size(payload)
        return super().preprocess(payload)


class CheckedSlider(gr.Slider):
    """gr.Slider whose bad value (typed into its number box, or sent to the API: out of range, not a number, NaN) is
    refused as a user error naming the range: shown in the page, no traceback in the server's log (it is not a bug)."""

    def get_block_name(self) -> str:
        return "slider"

    def preprocess(self, payload):
        number = isinstance(payload, (int, float)) and not isinstance(payload, bool) and math.isfinite(payload)
        if not (number and self.minimum <= payload <= self.maximum):
            name = re.split(r" \(|:", self.label or "the value")[0]  # "σ (refits as you move it)" → "σ"
            raise user_error(f"{name} must be a number from {self.minimum:g} to {self.maximum:g}; got {payload!r}.")
        return super().preprocess(payload)


class CheckedImage(gr.Image):
    """gr.Image whose own preprocessing (Gradio opens every upload) refuses a file over MAX_UPLOAD_MB and turns an
    unreadable file into a clear message instead of a generic server error."""

    def get_block_name(self) -> str:
        return "image"  # drawn by the browser's own Image component

    def preprocess(self, payload):
        check_upload_size(payload)
        try:
            return super().preprocess(payload)
        except gr.Error:
            raise
        except Image.DecompressionBombError:
            raise user_error(f"The image is too large: use one under {MAX_PIXELS // 1_000_000} megapixels.") from None
        except Exception:  # PIL's UnidentifiedImageError, truncated files, formats PIL cannot decode
            raise user_error("This file is not an image that can be read (PNG, JPEG, WebP, GIF, BMP, TIFF…).") from None
