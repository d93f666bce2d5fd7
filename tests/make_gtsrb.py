"""Tests only: a tiny GTSRB in the Kaggle layout and in the official INI layout, made of drawn signs."""

from __future__ import annotations

import csv
from pathlib import Path

from dlhub.data.gtsrb import SIGN_NAMES
from dlhub.sign_drawings import DRAWN_CLASSES, draw_sign

HEADER = ["Width", "Height", "Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2", "ClassId"]


def _samples(tracks: int, frames: int, test_per_class: int):
    train = [(c, t, f, draw_sign(c, 40, seed=1000 * c + 10 * t + f)) for c in DRAWN_CLASSES
             for t in range(tracks) for f in range(frames)]
    test = [(c, draw_sign(c, 40, seed=99_000 + 10 * c + k)) for c in DRAWN_CLASSES for k in range(test_per_class)]
    return train, test


def make_kaggle(root: Path, tracks: int = 4, frames: int = 3, test_per_class: int = 3) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    train, test = _samples(tracks, frames, test_per_class)
    with open(root / "Train.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*HEADER, "Path"])
        for c, t, fr, image in train:
            rel = f"Train/{c}/{c:05d}_{t:05d}_{fr:05d}.png"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            image.save(root / rel)
            w.writerow([40, 40, 4, 4, 36, 36, c, rel])
    (root / "Test").mkdir(exist_ok=True)
    with open(root / "Test.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*HEADER, "Path"])
        for i, (c, image) in enumerate(test):
            image.save(root / f"Test/{i:05d}.png")
            w.writerow([40, 40, 4, 4, 36, 36, c, f"Test/{i:05d}.png"])
    with open(root / "signnames.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["ClassId", "SignName"])
        w.writerows(enumerate(SIGN_NAMES))
    return root


def make_ini(root: Path, tracks: int = 4, frames: int = 3, test_per_class: int = 3) -> Path:
    train, test = _samples(tracks, frames, test_per_class)
    for c in DRAWN_CLASSES:
        folder = root / "Final_Training" / "Images" / f"{c:05d}"
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"GT-{c:05d}.csv", "w", newline="") as f:
            w = csv.writer(f, delimiter=";")
            w.writerow(["Filename", *HEADER])
            for cc, t, fr, image in train:
                if cc == c:
                    image.save(folder / f"{t:05d}_{fr:05d}.ppm")
                    w.writerow([f"{t:05d}_{fr:05d}.ppm", 40, 40, 4, 4, 36, 36, c])
    images = root / "Final_Test" / "Images"
    images.mkdir(parents=True, exist_ok=True)
    with open(root / "GT-final_test.csv", "w", newline="") as f:
        w = csv.writer(f, delimiter=";")
        w.writerow(["Filename", *HEADER])
        for i, (c, image) in enumerate(test):
            image.save(images / f"{i:05d}.ppm")
            w.writerow([f"{i:05d}.ppm", 40, 40, 4, 4, 36, 36, c])
    return root
