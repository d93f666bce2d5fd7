"""What every tab shares: user-facing errors, example files, image-size limits."""

from __future__ import annotations

import tempfile
from pathlib import Path

import gradio as gr
from PIL import Image, UnidentifiedImageError

from dlhub.modeling import MAX_PIXELS

# Example files are generated at start-up (nothing from the course's data is shipped); launch() allows this folder.
EXAMPLES_DIR = Path(tempfile.gettempdir()) / "dlhub-space-examples"
MIN_IMAGE_SIDE = 8


def user_error(message: str) -> gr.Error:
    """A gr.Error for bad user input: shown in the page, not printed as a server traceback (it is not a bug)."""
    return gr.Error(message, print_exception=False)


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


class CheckedImage(gr.Image):
    """gr.Image whose own preprocessing (Gradio opens every upload) turns an unreadable file into a clear message
    instead of a generic server error."""

    def get_block_name(self) -> str:
        return "image"  # drawn by the browser's own Image component

    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except gr.Error:
            raise
        except Image.DecompressionBombError:
            raise user_error(f"The image is too large: use one under {MAX_PIXELS // 1_000_000} megapixels.") from None
        except Exception:  # PIL's UnidentifiedImageError, truncated files, formats PIL cannot decode
            raise user_error("This file is not an image that can be read (PNG, JPEG, WebP, GIF, BMP, TIFF…).") from None
