"""Traffic signs drawn by code (PIL): example images for the Space and test data, with no photo shipped.

Each drawing is a sign of one GTSRB class centred on a plain or noisy background, like the dataset's crops.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

RED, WHITE, BLUE, YELLOW, BLACK = (200, 20, 30), (245, 245, 245), (20, 70, 170), (250, 200, 0), (15, 15, 15)


def _font(size: int):
    try:
        return ImageFont.truetype("DejaVuSans-Bold.ttf", size)
    except OSError:
        return ImageFont.load_default(size=size)


def _polygon(cx, cy, r, n, rotation=0.0):
    return [(cx + r * math.cos(rotation + 2 * math.pi * k / n), cy + r * math.sin(rotation + 2 * math.pi * k / n))
            for k in range(n)]


def _text(draw, cx, cy, text, size, fill):
    font = _font(size)
    box = draw.textbbox((0, 0), text, font=font)
    draw.text((cx - (box[2] - box[0]) / 2 - box[0], cy - (box[3] - box[1]) / 2 - box[1]), text, font=font, fill=fill)


def _arrow(draw, cx, cy, r, direction: str):
    """A white arrow pointing right, or bending right (turn right ahead), inside a blue disc."""
    w = max(2, int(r * 0.22))
    if direction == "keep right":  # diagonal down-right arrow
        a, b = (cx - 0.45 * r, cy - 0.45 * r), (cx + 0.35 * r, cy + 0.35 * r)
        draw.line([a, b], fill=WHITE, width=w)
        draw.polygon([(b[0] + 0.15 * r, b[1] + 0.15 * r), (b[0] - 0.35 * r, b[1] + 0.05 * r),
                      (b[0] + 0.05 * r, b[1] - 0.35 * r)], fill=WHITE)
    else:  # ahead only: vertical arrow up
        draw.line([(cx, cy + 0.6 * r), (cx, cy - 0.25 * r)], fill=WHITE, width=w)
        draw.polygon([(cx, cy - 0.65 * r), (cx - 0.35 * r, cy - 0.2 * r), (cx + 0.35 * r, cy - 0.2 * r)], fill=WHITE)


DRAWN_CLASSES = {14: "stop", 13: "yield", 17: "no entry", 1: "speed 30", 12: "priority", 38: "keep right",
                 35: "ahead only", 2: "speed 50"}


def draw_sign(class_id: int, size: int = 64, seed: int = 0) -> Image.Image:
    """An RGB image of the sign of `class_id` (one of DRAWN_CLASSES), with a little background clutter."""
    if class_id not in DRAWN_CLASSES:
        raise ValueError(f"no drawing for class {class_id}: drawn classes are {sorted(DRAWN_CLASSES)}")
    rng = np.random.default_rng(seed)
    scale = 4  # draw large, then shrink: smooth edges like a photo
    s = size * scale
    base = rng.integers(60, 200, 3)
    background = np.clip(base + rng.normal(0, 12, (s // 16, s // 16, 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(background).resize((s, s), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    c, r = s / 2 + rng.uniform(-0.03, 0.03) * s, s * rng.uniform(0.36, 0.42)
    kind = DRAWN_CLASSES[class_id]
    if kind == "stop":
        draw.polygon(_polygon(c, c, r, 8, math.pi / 8), fill=WHITE)
        draw.polygon(_polygon(c, c, r * 0.9, 8, math.pi / 8), fill=RED)
        _text(draw, c, c, "STOP", int(r * 0.55), WHITE)
    elif kind == "yield":
        draw.polygon(_polygon(c, c + 0.1 * r, r * 1.1, 3, math.pi / 2), fill=RED)
        draw.polygon(_polygon(c, c + 0.1 * r, r * 0.62, 3, math.pi / 2), fill=WHITE)
    elif kind == "no entry":
        draw.ellipse([c - r, c - r, c + r, c + r], fill=RED)
        draw.rectangle([c - 0.7 * r, c - 0.17 * r, c + 0.7 * r, c + 0.17 * r], fill=WHITE)
    elif kind in ("speed 30", "speed 50"):
        draw.ellipse([c - r, c - r, c + r, c + r], fill=RED)
        draw.ellipse([c - 0.8 * r, c - 0.8 * r, c + 0.8 * r, c + 0.8 * r], fill=WHITE)
        _text(draw, c, c, kind.split()[1], int(r * 0.9), BLACK)
    elif kind == "priority":
        draw.polygon(_polygon(c, c, r * 1.05, 4, 0), fill=WHITE)
        draw.polygon(_polygon(c, c, r * 0.7, 4, 0), fill=YELLOW)
    else:
        draw.ellipse([c - r, c - r, c + r, c + r], fill=WHITE)
        draw.ellipse([c - 0.92 * r, c - 0.92 * r, c + 0.92 * r, c + 0.92 * r], fill=BLUE)
        _arrow(draw, c, c, r, kind)
    return image.resize((size, size), Image.Resampling.LANCZOS)
