"""68-point face landmarks as an HF DatasetDict: image + landmarks (68 × 2 float pixel coordinates, x then y).

Layouts read:
- iBUG 300-W: images with a `.pts` file each; a folder with `trainset/` and `testset/` (HELEN as stored here), or one
  folder (then all of it is training data);
- the PyTorch tutorial: images + `face_landmarks.csv` (image_name, part_0_x, part_0_y, …, part_67_y);
- the course's `face_landmark.npz` (train_images, train_landmarks, test_images, test_landmarks);
- a folder written by `save_to_disk`, or a Hub dataset id.
Validation = 10% of the training data, as in the course, drawn by photo (HELEN's `<photo>_<n>` faces of one photo stay
together). The test split is for the final evaluation only.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from dlhub.data import load_saved_or_hub
from dlhub.errors import DataError

N_POINTS = 68
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
SPLIT_SEED = 0
# iBUG 68-point scheme (0-based): the index each point takes when the face is mirrored left ↔ right
FLIP_INDEX = np.array(
    list(range(16, -1, -1))  # jaw
    + list(range(26, 16, -1))  # eyebrows
    + [27, 28, 29, 30] + [35, 34, 33, 32, 31]  # nose bridge, nostrils
    + [45, 44, 43, 42, 47, 46] + [39, 38, 37, 36, 41, 40]  # eyes
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]  # outer lip
    + [64, 63, 62, 61, 60, 67, 66, 65])  # inner lip
OUTER_EYE_CORNERS = (36, 45)  # points 37 and 46 in iBUG's 1-based numbering: the NME's normaliser
# point ranges of the contours drawn on a face (closed ones repeat their first point)
CONTOURS = {"jaw": list(range(0, 17)), "right brow": list(range(17, 22)), "left brow": list(range(22, 27)),
            "nose bridge": list(range(27, 31)), "nostrils": list(range(31, 36)),
            "right eye": [*range(36, 42), 36], "left eye": [*range(42, 48), 42],
            "outer lip": [*range(48, 60), 48], "inner lip": [*range(60, 68), 60]}


def read_pts(path: Path) -> np.ndarray:
    """An iBUG `.pts` file → (68, 2) float32."""
    lines = Path(path).read_text().split("{", 1)[-1].split("}", 1)[0].split()
    try:
        points = np.array(lines, dtype=np.float32).reshape(-1, 2)
    except ValueError:
        raise DataError(f"{path} is not an iBUG .pts file (expected 68 'x y' lines between braces)") from None
    if points.shape != (N_POINTS, 2):
        raise DataError(f"{path} has {len(points)} points: expected {N_POINTS}")
    return points


def list_pts_folder(folder: Path) -> list[tuple[str, np.ndarray]]:
    items = []
    for image in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        pts = image.with_suffix(".pts")
        if pts.is_file():
            items.append((str(image), read_pts(pts)))
    return items


def list_tutorial_csv(folder: Path) -> list[tuple[str, np.ndarray]]:
    with open(folder / "face_landmarks.csv", newline="") as f:
        rows = list(csv.reader(f))
    if not rows or len(rows[0]) != 1 + 2 * N_POINTS:
        raise DataError(f"{folder / 'face_landmarks.csv'}: expected image_name and {2 * N_POINTS} coordinate columns")
    items = [(str(folder / r[0]), np.array(r[1:], dtype=np.float32).reshape(N_POINTS, 2)) for r in rows[1:]]
    missing = [p for p, _ in items if not Path(p).is_file()]
    if missing:
        raise DataError(f"{folder}: {len(missing)} images listed in face_landmarks.csv are missing, e.g. {missing[0]}")
    return items


def photo_of(path: str) -> str:
    """HELEN names faces `<photo>_<n>`: faces of one photo share a split."""
    stem = Path(path).stem
    return stem.rsplit("_", 1)[0] if "_" in stem else stem


def split_validation(n: int, groups: list[str], fraction: float = 0.1, seed: int = SPLIT_SEED) -> np.ndarray:
    """Boolean mask of the validation items: `fraction` of the groups, drawn with a fixed seed."""
    names = sorted(set(groups))
    order = np.random.default_rng(seed).permutation(len(names))
    chosen = {names[i] for i in order[: max(1, round(fraction * len(names)))]}
    return np.array([g in chosen for g in groups]) if n else np.zeros(0, bool)


def _from_items(train: list, test: list):
    from datasets import Array2D, Dataset, DatasetDict, Features, Image

    features = Features({"image": Image(), "landmarks": Array2D((N_POINTS, 2), "float32")})
    val = split_validation(len(train), [photo_of(p) for p, _ in train])
    splits = {"train": [t for t, v in zip(train, val) if not v], "validation": [t for t, v in zip(train, val) if v]}
    if test:
        splits["test"] = test
    return DatasetDict({name: Dataset.from_dict({"image": [p for p, _ in items], "landmarks": [x for _, x in items]},
                                                features=features) for name, items in splits.items()})


def _from_npz(path: Path):
    from datasets import Array2D, Dataset, DatasetDict, Features, Image

    arrays = np.load(path)
    needed = ["train_images", "train_landmarks", "test_images", "test_landmarks"]
    missing = [k for k in needed if k not in arrays.files]
    if missing:
        raise DataError(f"{path}: missing arrays {missing} (found {arrays.files})")
    features = Features({"image": Image(), "landmarks": Array2D((N_POINTS, 2), "float32")})

    def as_images(a: np.ndarray) -> list:
        a = np.asarray(a)
        if a.dtype != np.uint8:  # floats in [0, 1] or [0, 255]
            a = np.clip(a * (255 if a.max() <= 1.0 else 1), 0, 255).astype(np.uint8)
        return list(a)

    train_images, train_points = as_images(arrays["train_images"]), arrays["train_landmarks"].reshape(-1, N_POINTS, 2)
    val = split_validation(len(train_images), [str(i) for i in range(len(train_images))])
    rows = {"train": ([x for x, v in zip(train_images, val) if not v], train_points[~val]),
            "validation": ([x for x, v in zip(train_images, val) if v], train_points[val]),
            "test": (as_images(arrays["test_images"]), arrays["test_landmarks"].reshape(-1, N_POINTS, 2))}
    return DatasetDict({name: Dataset.from_dict({"image": images, "landmarks": points.astype(np.float32)},
                                                features=features) for name, (images, points) in rows.items()})


def load_landmarks(source):
    """DatasetDict train/validation(/test) with image and landmarks (68 × 2 pixel coordinates)."""
    saved = load_saved_or_hub(source)
    if saved is not None:
        return saved
    path = Path(str(source))
    if path.suffix == ".npz" and path.is_file():
        return _from_npz(path)
    if not path.is_dir():
        raise DataError(f"{source} not found: pass a folder of images with .pts files (or trainset/ + testset/), a "
                        "folder with face_landmarks.csv, the course's face_landmark.npz, or a Hub dataset id")
    if (path / "face_landmarks.csv").is_file():
        return _from_items(list_tutorial_csv(path), [])
    if (path / "trainset").is_dir():
        train, test = list_pts_folder(path / "trainset"), list_pts_folder(path / "testset") \
            if (path / "testset").is_dir() else []
    else:
        train, test = list_pts_folder(path), []
    if len(train) < 2:
        raise DataError(f"{path} holds {len(train)} images with .pts files: expected a folder of images each with "
                        "an iBUG .pts file of 68 points")
    return _from_items(train, test)


def to_tensors(dataset, size: int, cache_dir=None):
    """(uint8 images (N, 3, size, size), float32 landmarks (N, 68, 2) scaled to size), resized once and cached."""
    import torch
    from PIL import Image

    from dlhub.cache import cached_tensors

    def decode() -> dict:
        images, points = [], []
        for row in dataset:
            image = row["image"].convert("RGB")
            w, h = image.size
            images.append(np.asarray(image.resize((size, size), Image.Resampling.BILINEAR)))
            points.append(np.asarray(row["landmarks"], np.float32) * np.array([size / w, size / h], np.float32))
        return {"images": torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2),
                "landmarks": torch.from_numpy(np.stack(points))}

    cache = Path(cache_dir) / f"landmarks_{dataset._fingerprint}_{size}.safetensors" if cache_dir else None
    tensors = cached_tensors(cache, decode)
    return tensors["images"], tensors["landmarks"]
