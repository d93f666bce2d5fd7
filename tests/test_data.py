"""Reading the course's Task 1 files: the layout is checked and every problem is named in one line."""

import numpy as np
import pytest

from dlhub.data import to_numpy
from dlhub.data.task1 import load_task1, read_classification_npz, read_regression_npz, read_task1_dir
from dlhub.errors import DataError


def test_reads_the_course_layout(task1_dir):
    reg, clf = read_task1_dir(task1_dir)
    assert reg["X_trn"].shape == (30,) and reg["Y_val"].shape == (10,)
    assert clf["X_train"].shape == (600, 2) and clf["y_test"].dtype == np.int64


def test_hf_datasets_keep_float64(task1_dir):
    regression, classification = load_task1(task1_dir)
    assert set(regression) == {"train", "validation"} and set(classification) == {"train", "test"}
    raw = np.load(task1_dir / "Task1_1.npz")["X_trn"].reshape(-1)
    assert np.array_equal(to_numpy(regression["train"])["x"], raw)
    assert classification["train"].features["label"].names == ["0", "1"]


def _save(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("arrays, message", [
    ({"X_trn": np.ones((3, 1)), "Y_trn": np.ones((3, 1)), "X_val": np.ones((2, 1))}, r"missing keys \['Y_val'\]"),
    ({"X_trn": np.ones((3, 2)), "Y_trn": np.ones((3, 1)), "X_val": np.ones((2, 1)), "Y_val": np.ones((2, 1))},
     r"X_trn \(training x\) must have shape \(n, 1\), got \(3, 2\)"),
    ({"X_trn": np.array([[1.0], [np.nan]]), "Y_trn": np.ones((2, 1)), "X_val": np.ones((2, 1)),
      "Y_val": np.ones((2, 1))}, "X_trn .* NaN"),
    ({"X_trn": np.ones((3, 1)), "Y_trn": np.ones((4, 1)), "X_val": np.ones((2, 1)), "Y_val": np.ones((2, 1))},
     "X_trn has 3 rows but Y_trn has 4"),
    ({"X_trn": np.zeros((3, 1)), "Y_trn": np.ones((3, 1)), "X_val": np.ones((2, 1)), "Y_val": np.ones((2, 1))},
     "x = 0"),
    ({"X_trn": np.array([["a"]]), "Y_trn": np.ones((1, 1)), "X_val": np.ones((1, 1)), "Y_val": np.ones((1, 1))},
     "must be numeric"),
])
def test_bad_regression_files(tmp_path, arrays, message):
    with pytest.raises(DataError, match=message):
        read_regression_npz(_save(tmp_path / "Task1_1.npz", **arrays))


def test_bad_classification_labels(tmp_path):
    path = _save(tmp_path / "Task1_2.npz", arr_0=np.ones((3, 2)), arr_1=np.ones((2, 2)),
                 arr_2=np.array([[0], [1], [2]]), arr_3=np.zeros((2, 1)))
    with pytest.raises(DataError, match="arr_2 .* only 0 and 1"):
        read_classification_npz(path)


def test_not_an_npz_and_missing_files(tmp_path):
    bogus = tmp_path / "Task1_1.npz"
    bogus.write_text("not a zip")
    with pytest.raises(DataError, match="not a readable .npz"):
        read_regression_npz(bogus)
    with pytest.raises(DataError, match="has no Task1_2.npz"):
        read_task1_dir(tmp_path)
    with pytest.raises(DataError, match="is not a folder"):
        read_task1_dir(tmp_path / "nope")
