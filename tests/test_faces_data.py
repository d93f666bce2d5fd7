"""Faces for the denoiser: the .npy and image-folder layouts, the 60/20/20 split (by person for Olivetti)."""

import numpy as np
import pytest
from conftest import synthetic_faces
from PIL import Image

from dlhub.data.faces import faces_array, load_faces, split_indices
from dlhub.errors import DataError


def test_olivetti_layout_splits_by_person(tmp_path):
    path = tmp_path / "olivetti_faces.npy"
    np.save(path, synthetic_faces(400))
    faces = load_faces(path)
    assert {k: v.num_rows for k, v in faces.items()} == {"train": 240, "validation": 80, "test": 80}
    people = {k: set(v["person"]) for k, v in faces.items()}
    assert len(people["train"]) == 24 and len(people["test"]) == 8
    assert not (people["train"] & people["validation"] or people["train"] & people["test"]
                or people["validation"] & people["test"])
    raw = np.load(path)
    first_test_person = min(people["test"])
    assert np.array_equal(faces_array(faces["test"])[0] * 255, raw[first_test_person * 10].astype(np.float32))


def test_other_npy_splits_by_image_with_a_fixed_seed(faces_npy):
    a, b = load_faces(faces_npy), load_faces(faces_npy)
    assert {k: v.num_rows for k, v in a.items()} == {"train": 24, "validation": 8, "test": 8}
    assert np.array_equal(faces_array(a["test"]), faces_array(b["test"]))
    assert set(a["train"]["person"]) == {-1}


def test_split_indices_cover_everything_once():
    idx = split_indices(50)
    assert sorted(np.concatenate(list(idx.values()))) == list(range(50))
    with pytest.raises(DataError, match="do not split into people of 10"):
        split_indices(45, person_block=10)


def test_image_folder_any_size_and_mode(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (80, 100, 3), dtype=np.uint8)).save(tmp_path / "a.jpg")
    Image.fromarray(rng.integers(0, 255, (50, 50, 4), dtype=np.uint8)).save(tmp_path / "b.png")
    Image.fromarray(rng.integers(0, 255, (70, 30), dtype=np.uint8)).convert("P").save(tmp_path / "c.png")
    for i in range(7):
        Image.fromarray(rng.integers(0, 255, (64, 64), dtype=np.uint8)).save(tmp_path / f"d{i}.bmp")
    (tmp_path / "notes.txt").write_text("ignored: not an image suffix")
    faces = load_faces(tmp_path, size=48)
    images = [im for split in faces.values() for im in split["image"]]
    assert len(images) == 10 and all(im.size == (48, 48) and im.mode == "L" for im in images)


def test_float_npy_is_rescaled(tmp_path):
    path = tmp_path / "f.npy"
    np.save(path, synthetic_faces(10).astype(np.float64) / 255.0)
    assert faces_array(load_faces(path)["train"]).max() > 0.5


@pytest.mark.parametrize("make, message", [
    (lambda p: np.save(p / "x.npy", np.zeros((10, 64))), r"expected an array of shape \(N, H, W\)"),
    (lambda p: np.save(p / "x.npy", np.full((10, 64, 64), np.nan)), "NaN"),
    (lambda p: (p / "x.npy").write_text("garbage"), "not a readable .npy"),
])
def test_bad_npy(tmp_path, make, message):
    make(tmp_path)
    with pytest.raises(DataError, match=message):
        load_faces(tmp_path / "x.npy")


def test_bad_folders(tmp_path):
    with pytest.raises(DataError, match="holds no images"):
        load_faces(tmp_path)
    (tmp_path / "broken.png").write_text("this is not a png")
    with pytest.raises(DataError, match="broken.png is not a readable image"):
        load_faces(tmp_path)
    with pytest.raises(DataError, match="not found"):
        load_faces(tmp_path / "absent")
