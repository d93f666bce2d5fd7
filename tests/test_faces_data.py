"""Faces for the denoiser: the .npy and image-folder layouts, the 60/20/20 split (by person with person labels, and
for Olivetti)."""

import logging

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


def test_other_npy_splits_by_image_with_a_fixed_seed_and_says_so(faces_npy, caplog):
    with caplog.at_level(logging.INFO, logger="dlhub"):
        a, b = load_faces(faces_npy), load_faces(faces_npy)
    assert {k: v.num_rows for k, v in a.items()} == {"train": 24, "validation": 8, "test": 8}
    assert np.array_equal(faces_array(a["test"]), faces_array(b["test"]))
    assert set(a["train"]["person"]) == {-1}
    said = [r for r in caplog.records if r.name == "dlhub"]
    assert len(said) == 2 and all(r.levelno == logging.WARNING for r in said)  # one line per load
    assert "face_data.npy: 40 faces split by image, not by person: no person labels" in said[0].getMessage()
    assert "\n" not in said[0].getMessage()


def numbered_faces(n: int, size: int) -> np.ndarray:
    """Faces whose two top-left pixels hold their index, so a split's images can be traced back to the array."""
    faces = synthetic_faces(n, size=size)
    faces[:, 0, 0], faces[:, 0, 1] = np.arange(n) % 256, np.arange(n) // 256
    return faces


def original_index(split) -> np.ndarray:
    pixels = np.round(faces_array(split)[:, 0, :2] * 255).astype(int)
    return pixels[:, 0] + 256 * pixels[:, 1]


@pytest.mark.parametrize("as_file", [False, True])
def test_people_split_by_person_for_any_shape(tmp_path, caplog, as_file):
    """12 people × 5 photos, interleaved, 48 × 48 (not the Olivetti layout): each person lies in one split only."""
    path = tmp_path / "faces.npy"
    np.save(path, numbered_faces(60, 48))
    people = np.random.default_rng(1).permutation(np.repeat(np.arange(100, 112), 5))
    if as_file:
        np.save(tmp_path / "people.npy", people)
    with caplog.at_level(logging.INFO, logger="dlhub"):
        faces = load_faces(path, people=tmp_path / "people.npy" if as_file else people)
    assert not [r for r in caplog.records if "split by image" in r.getMessage()]
    assert {k: v.num_rows for k, v in faces.items()} == {"train": 35, "validation": 15, "test": 10}
    split_people = {k: set(v["person"]) for k, v in faces.items()}
    assert [len(p) for p in split_people.values()] == [7, 3, 2]
    assert not (split_people["train"] & split_people["validation"] or split_people["train"] & split_people["test"]
                or split_people["validation"] & split_people["test"])
    for split in faces.values():  # every image keeps its own person's id
        assert list(people[original_index(split)]) == list(split["person"])


def test_people_as_names_and_for_an_olivetti_shaped_array(tmp_path):
    path = tmp_path / "faces.npy"
    np.save(path, numbered_faces(400, 64))
    names = np.array([f"person {i % 40:02d}" for i in range(400)])  # not in blocks: Olivetti's block rule is wrong
    faces = load_faces(path, people=names)
    for split in faces.values():
        assert {names[i] for i in original_index(split)} == {f"person {p:02d}" for p in set(split["person"])}
        assert len({names[i] for i in original_index(split)}) == len(split["person"]) / 10


@pytest.mark.parametrize("people, message", [
    (np.arange(39), r"has shape \(39,\) for 40 faces: give one person id per face, shape \(40,\)"),
    (np.zeros((40, 2)), r"has shape \(40, 2\)"),
    (np.zeros(40), "too few for a 60/20/20 split"),
    ("absent.npy", "absent.npy not found: pass a .npy holding one person id per face"),
])
def test_bad_people(faces_npy, people, message):
    with pytest.raises(DataError, match=message):
        load_faces(faces_npy, people=people)


def test_people_and_person_block_exclude_each_other(faces_npy):
    with pytest.raises(DataError, match="not both"):
        load_faces(faces_npy, people=np.arange(40) // 4, person_block=4)


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


def test_landmark_folders_are_cropped_by_the_landmark_rule(tmp_path):
    from conftest import landmark_faces

    from dlhub.data.faces import landmark_crop
    from dlhub.landmarks import crop_from_landmarks

    helen = load_faces(landmark_faces(tmp_path / "helen", "pts", n=20))
    assert {k: v.num_rows for k, v in helen.items()} == {"train": 18, "validation": 2, "test": 6}  # 10% by photo
    assert helen["test"][0]["image"].size == (64, 64) and set(helen["test"]["person"]) == {-1}
    tutorial = load_faces(landmark_faces(tmp_path / "tutorial", "csv", n=10))
    assert set(tutorial) == {"train", "validation"} and sum(v.num_rows for v in tutorial.values()) == 10
    # the crop: a square 1.5× the landmark box, nudged up, black outside the photo
    points = np.array([[40.0, 50.0], [80.0, 110.0]])  # box side 60 → crop side 90, centre (60, 80 - 0.098 · 60)
    photo = np.zeros((200, 120), np.uint8)
    cx, cy, side = crop_from_landmarks(points)
    assert side == pytest.approx(90) and cy == pytest.approx(80 - 0.098 * 60)
    top, left = round(cy - side / 2), round(cx - side / 2)
    photo[top:top + round(side), left:left + round(side)] = 200
    assert np.all(landmark_crop(Image.fromarray(photo), points, 32) == 200)
    shifted = np.array([[0.0, 50.0], [40.0, 110.0]])  # its crop reaches 25 px past the left edge: black there
    crop = landmark_crop(Image.fromarray(np.full((200, 120), 200, np.uint8)), shifted, 90)
    assert crop[:, :20].max() == 0 and crop[:, 30:].min() == 200


def test_landmark_folders_take_no_person_labels(tmp_path):
    from conftest import landmark_faces

    with pytest.raises(DataError, match="split by photo"):
        load_faces(landmark_faces(tmp_path / "helen", "pts", n=6), person_block=2)


def test_a_held_out_source_is_its_own_test_split_or_all_of_it(tmp_path):
    from conftest import landmark_faces

    from dlhub.data.faces import held_out_faces

    olivetti = tmp_path / "olivetti_faces.npy"
    np.save(olivetti, synthetic_faces(400))
    assert held_out_faces(olivetti).shape == (80, 64, 64)  # the 8 test people
    assert len(held_out_faces(landmark_faces(tmp_path / "helen", "pts", n=9))) == 3  # testset/
    assert len(held_out_faces(landmark_faces(tmp_path / "tutorial", "csv", n=10))) == 10  # no test set: all
    folder = tmp_path / "photos"
    folder.mkdir()
    for i, face in enumerate(synthetic_faces(5, size=90)):
        Image.fromarray(face).save(folder / f"{i}.png")
    assert held_out_faces(folder).shape == (5, 64, 64)  # a plain folder, split by image: all of it
