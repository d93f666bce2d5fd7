"""Grayscale face images for the denoising task, as HF datasets split 60/20/20.

Sources: a `.npy` of shape (N, H, W) uint8 (the course's face_data.npy layout; Olivetti is (400, 64, 64)), a folder of
face images of any size (converted to grayscale, centre-cropped to a square, resized), or a folder written by
`save_to_disk`. The split is by person (no person's face in two splits) when person labels are given (`people`: one id
per face, an array or a .npy file) and for the Olivetti layout, which holds 10 photos per person in consecutive blocks;
otherwise it is by image, and a log line says so. A folder of faces with 68 landmarks (iBUG `.pts` files, HELEN's
`trainset/` + `testset/`, or the PyTorch tutorial's `face_landmarks.csv`) is read through dlhub.data.landmarks instead:
each face is cropped by the landmark model's rule (a square 1.5× the landmark box, nudged up for the forehead), and its
split is that loader's (validation = 10% of the training photos, test = `testset/` where there is one).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from dlhub.errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm", ".tif", ".tiff", ".webp", ".gif"}
OLIVETTI_SHAPE = (400, 64, 64)
SPLIT_SEED = 0
log = logging.getLogger("dlhub")


def square_grayscale(image: Image.Image, size: int) -> np.ndarray:
    """Centre square crop, grayscale, resized to size × size: uint8 array."""
    image = image.convert("L")
    w, h = image.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    image = image.crop((left, top, left + side, top + side))
    return np.asarray(image.resize((size, size), Image.Resampling.LANCZOS), dtype=np.uint8)


def read_face_folder(folder, size: int = 64) -> np.ndarray:
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    faces = []
    for path in files:
        try:
            with Image.open(path) as image:
                faces.append(square_grayscale(image, size))
        except (UnidentifiedImageError, OSError) as err:
            raise DataError(f"{path} is not a readable image ({err})") from None
    return np.stack(faces)


def has_landmarks(folder: Path) -> bool:
    """A folder of faces annotated with 68 landmarks, in a layout dlhub.data.landmarks reads."""
    return folder.is_dir() and ((folder / "face_landmarks.csv").is_file() or (folder / "trainset").is_dir()
                                or any(folder.glob("*.pts")))


def landmark_crop(image: Image.Image, points: np.ndarray, size: int) -> np.ndarray:
    """The landmark model's face crop (dlhub.landmarks.crop_from_landmarks: a square 1.5× the landmark box, nudged up
    for the forehead; outside the photo: black), grayscale, resized to size × size: uint8 array."""
    from dlhub.landmarks import crop_box

    face = image.convert("L").crop(crop_box(points))
    return np.asarray(face.resize((size, size), Image.Resampling.LANCZOS), dtype=np.uint8)


def load_landmark_faces(folder, size: int = 64):
    """A landmark-annotated folder as face crops: DatasetDict with the splits of dlhub.data.landmarks.load_landmarks
    (train/validation, and test where the folder has one), columns image (grayscale PIL) and person (-1: unknown)."""
    from datasets import Dataset, DatasetDict, Features, Value
    from datasets import Image as ImageFeature

    from dlhub.data.landmarks import load_landmarks

    annotated = load_landmarks(folder)
    features = Features({"image": ImageFeature(), "person": Value("int32")})
    out = {}
    for split in annotated:
        crops = [Image.fromarray(landmark_crop(row["image"], row["landmarks"], size)) for row in annotated[split]]
        out[split] = Dataset.from_dict({"image": crops, "person": [-1] * len(crops)}, features=features)
    return DatasetDict(out)


def read_face_npy(path) -> np.ndarray:
    path = Path(path)
    try:
        faces = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DataError(f"{path} is not a readable .npy file ({err})") from None
    if faces.ndim != 3 or faces.shape[0] == 0 or min(faces.shape[1:]) < 8:
        raise DataError(f"{path.name}: expected an array of shape (N, H, W) of grayscale faces, got {faces.shape}")
    if faces.dtype != np.uint8:
        if not np.all(np.isfinite(faces)):
            raise DataError(f"{path.name}: holds NaN or infinite values")
        top = 1.0 if faces.max() <= 1.0 else 255.0  # floats in [0, 1] or in [0, 255]
        faces = np.clip(np.round(faces / top * 255.0), 0, 255).astype(np.uint8)
    return faces


def split_indices(n: int, person_block: int = 0, seed: int = SPLIT_SEED) -> dict[str, np.ndarray]:
    """60/20/20 train/validation/test indices. With person_block = k, images come in blocks of k per person and
    whole blocks are assigned to one split."""
    if person_block:
        return split_by_person(block_people(n, person_block), seed)
    rng = np.random.default_rng(seed)
    return dict(zip(("train", "validation", "test"), [np.sort(part) for part in _cut(rng.permutation(n))]))


def split_by_person(people: np.ndarray, seed: int = SPLIT_SEED) -> dict[str, np.ndarray]:
    """60/20/20 of the people (one id per image, any order), each person's images all in the one split."""
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(np.isin(people, part)) for part in _cut(rng.permutation(np.unique(people)))]
    return dict(zip(("train", "validation", "test"), groups))


def block_people(n: int, person_block: int) -> np.ndarray:
    """Person ids of n images that come in consecutive blocks of person_block per person."""
    if n % person_block:
        raise DataError(f"{n} images do not split into people of {person_block} images each")
    return np.arange(n) // person_block


def read_people(people, n_faces: int) -> np.ndarray:
    """One person id per face, from an array or a .npy file: int32 ids (labels that are not whole numbers, such as
    names, are numbered in sorted order)."""
    name = "the people array"
    if isinstance(people, (str, Path)):
        path = Path(people)
        name = path.name
        if not path.is_file():
            raise DataError(f"{path} not found: pass a .npy holding one person id per face")
        try:
            people = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            raise DataError(f"{path} is not a readable .npy file ({err})") from None
    people = np.asarray(people)
    if people.ndim == 2 and people.shape[1] == 1:
        people = people[:, 0]
    if people.ndim != 1 or len(people) != n_faces:
        raise DataError(f"{name} has shape {people.shape} for {n_faces} faces: give one person id per face, "
                        f"shape ({n_faces},)")
    if people.dtype.kind in "iu" or (people.dtype.kind == "f" and np.all(np.isfinite(people))
                                     and np.all(people == np.round(people))):
        return people.astype(np.int64).astype(np.int32)
    return np.unique(people.astype(str), return_inverse=True)[1].astype(np.int32)


def _cut(order: np.ndarray) -> list[np.ndarray]:
    n = len(order)
    a, b = int(round(0.6 * n)), int(round(0.8 * n))
    if a == 0 or b == a or b == n:
        raise DataError(f"{n} images (or people) are too few for a 60/20/20 split")
    return [order[:a], order[a:b], order[b:]]


def load_faces(source, *, size: int = 64, person_block: int | None = None, people=None):
    """A DatasetDict (train/validation/test) with columns image (grayscale PIL) and person (-1 when unknown); a
    landmark-annotated folder gives face crops (see load_landmark_faces), with a test split only where it has one.

    people: one person id per face (an array, or a .npy file; for a folder, in the order of the sorted file names):
    the split is then by person. person_block: images per person in consecutive blocks; None = 10 for the Olivetti
    layout (400 × 64 × 64), else 0 (split by image, said in a log line)."""
    from datasets import Dataset, DatasetDict, Features, Value, load_from_disk
    from datasets import Image as ImageFeature

    source = Path(source)
    if not source.exists():
        raise DataError(f"{source} not found: pass a .npy of faces (N, H, W), a folder of images, or a saved dataset")
    if people is not None and person_block is not None:
        raise DataError("give the people either as person labels or as a person block size, not both")
    if source.is_dir() and (source / "dataset_dict.json").is_file():
        if people is not None:
            raise DataError(f"{source} is a saved dataset, already split: person labels apply to a .npy or a folder")
        return load_from_disk(str(source))
    if has_landmarks(source):
        if people is not None or person_block:
            raise DataError(f"{source} holds landmark-annotated faces, split by photo: person labels do not apply")
        return load_landmark_faces(source, size)
    faces = read_face_npy(source) if source.suffix == ".npy" else read_face_folder(source, size)
    if people is None and person_block is None:
        person_block = 10 if faces.shape == OLIVETTI_SHAPE else 0
    if people is not None:
        person = read_people(people, len(faces))
    elif person_block:
        person = block_people(len(faces), person_block)
    else:
        person = None
        log.warning("dlhub: %s: %d faces split by image, not by person: no person labels were given (people=, "
                    "--people: a .npy of one person id per face), so one person's photos may be in training and test",
                    source.name, len(faces))
    splits = split_indices(len(faces)) if person is None else split_by_person(person)
    features = Features({"image": ImageFeature(), "person": Value("int32")})
    out = {}
    for split, idx in splits.items():
        ids = person[idx] if person is not None else np.full(len(idx), -1)
        out[split] = Dataset.from_dict(
            {"image": [Image.fromarray(faces[i]) for i in idx], "person": ids.astype(np.int32)}, features=features)
    return DatasetDict(out)


def held_out_faces(source, size: int = 64) -> np.ndarray:
    """(N, H, W) float32 in [0, 1] (H = W = size for a folder): the faces of a source held out of training, as a test of another source. Its
    test split where the source defines one (the people never seen, for a split by person; a `testset/` folder; a
    saved dataset's test split), else all its faces (a plain folder of images, a .npy without person labels)."""
    faces = load_faces(source, size=size)
    path = Path(source)
    own_test = "test" in faces and (has_landmarks(path) or (path / "dataset_dict.json").is_file()
                                    or any(person != -1 for person in faces["test"]["person"]))
    return np.concatenate([faces_array(faces[split]) for split in (["test"] if own_test else list(faces))])


def faces_array(dataset) -> np.ndarray:
    """(N, H, W) float32 in [0, 1] from a split's image column."""
    return np.stack([np.asarray(img.convert("L"), dtype=np.float32) / 255.0 for img in dataset["image"]])
