"""The course's Task 1 files, checked and turned into HF datasets.

Task1_1.npz: X_trn (n,1), Y_trn (n,1) noisy training samples; X_val (m,1), Y_val (m,1) clean validation samples.
Task1_2.npz: arr_0 X_train (n,2), arr_1 X_test (m,2), arr_2 y_train (n,1), arr_3 y_test (m,1), labels 0/1.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np

from dlhub.cache import MB, megabytes_setting
from dlhub.errors import DataError

REGRESSION_FILE, CLASSIFICATION_FILE = "Task1_1.npz", "Task1_2.npz"
# key: (width of each row, what it is)
REGRESSION_KEYS = {"X_trn": (1, "training x"), "Y_trn": (1, "training y"), "X_val": (1, "validation x"),
                   "Y_val": (1, "validation y")}
CLASSIFICATION_KEYS = {"arr_0": (2, "training points"), "arr_1": (2, "test points"),
                       "arr_2": (1, "training labels"), "arr_3": (1, "test labels")}


# What an .npz may unpack to (DLHUB_MAX_NPZ_MB): the course's files are a few kB; a zip of zeros can be a thousand
# times its own size
MAX_NPZ_BYTES = megabytes_setting("DLHUB_MAX_NPZ_MB", 50)
MAX_NPZ_MEMBERS = 64


def check_npz(path, max_bytes: int | None = None) -> None:
    """Refuse an .npz before it is unpacked when its arrays would take more than `max_bytes` (MAX_NPZ_BYTES): the
    zip's directory gives each member's unpacked size (zipfile never reads past it), and each array's header its
    shape, which must fit in that size (NumPy allocates the shape before it reads)."""
    path, limit = Path(path), MAX_NPZ_BYTES if max_bytes is None else max_bytes
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if len(members) > MAX_NPZ_MEMBERS:
                raise DataError(f"{path.name} holds {len(members):,} arrays: the course's files hold four")
            unpacked = sum(m.file_size for m in members)
            if unpacked > limit:
                raise DataError(f"{path.name} unpacks to {unpacked / MB:,.0f} MB, more than the {limit / MB:g} MB "
                                "this accepts: the course's files take a few kB")
            for member in members:
                if not member.filename.endswith(".npy"):
                    continue
                with archive.open(member) as f:
                    version = np.lib.format.read_magic(f)
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0) else
                                   np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read_header(f, max_header_size=10_000)
                if math.prod(shape) * dtype.itemsize > member.file_size:
                    raise DataError(f"{path.name}: {member.filename[:-4][:50]} declares more data than it holds")
    except DataError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError, TypeError) as err:
        raise DataError(f"{path.name} is not a readable .npz file ({type(err).__name__})") from None


def _read_npz(path, keys: dict) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} not found")
    check_npz(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise DataError(f"{path.name} is not a readable .npz file ({str(err)[:200]})") from None
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise DataError(f"{path.name}: missing keys {missing} (expected {list(keys)}, found {sorted(arrays)})")
    out = {}
    for key, (width, what) in keys.items():
        a = arrays[key]
        if a.dtype.kind not in "biuf":
            raise DataError(f"{path.name}: {key} ({what}) must be numeric, got dtype {a.dtype}")
        if a.ndim == 1 and width == 1:
            a = a[:, None]
        if a.ndim != 2 or a.shape[1] != width or a.shape[0] == 0:
            raise DataError(f"{path.name}: {key} ({what}) must have shape (n, {width}), got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise DataError(f"{path.name}: {key} ({what}) holds NaN or infinite values")
        out[key] = a.astype(np.float64)
    return out


def _same_length(name: str, arrays: dict, a: str, b: str) -> None:
    if len(arrays[a]) != len(arrays[b]):
        raise DataError(f"{name}: {a} has {len(arrays[a])} rows but {b} has {len(arrays[b])}")


def read_regression_npz(path) -> dict[str, np.ndarray]:
    """Checked arrays of Task1_1.npz, flattened to 1-D: X_trn, Y_trn, X_val, Y_val."""
    arrays = _read_npz(path, REGRESSION_KEYS)
    name = Path(path).name
    _same_length(name, arrays, "X_trn", "Y_trn")
    _same_length(name, arrays, "X_val", "Y_val")
    if np.any(arrays["X_trn"] == 0) or np.any(arrays["X_val"] == 0):
        raise DataError(f"{name}: x = 0 has no 1/x feature: remove those samples")
    return {k: v.reshape(-1) for k, v in arrays.items()}


def read_classification_npz(path) -> dict[str, np.ndarray]:
    """Checked arrays of Task1_2.npz: X_train (n,2), X_test (m,2), y_train (n,), y_test (m,) as 0/1 ints."""
    arrays = _read_npz(path, CLASSIFICATION_KEYS)
    name = Path(path).name
    _same_length(name, arrays, "arr_0", "arr_2")
    _same_length(name, arrays, "arr_1", "arr_3")
    for key in ("arr_2", "arr_3"):
        if not np.all(np.isin(arrays[key], (0, 1))):
            raise DataError(f"{name}: {key} ({CLASSIFICATION_KEYS[key][1]}) must hold only 0 and 1")
    return {"X_train": arrays["arr_0"], "X_test": arrays["arr_1"],
            "y_train": arrays["arr_2"].reshape(-1).astype(np.int64),
            "y_test": arrays["arr_3"].reshape(-1).astype(np.int64)}


def read_task1_dir(data_dir) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"--dataset {data_dir} is not a folder: point it at the folder holding "
                        f"{REGRESSION_FILE} and {CLASSIFICATION_FILE}")
    missing = [f for f in (REGRESSION_FILE, CLASSIFICATION_FILE) if not (data_dir / f).is_file()]
    if missing:
        raise DataError(f"{data_dir} has no {' or '.join(missing)}: point --dataset at the course's Task 1 folder")
    return read_regression_npz(data_dir / REGRESSION_FILE), read_classification_npz(data_dir / CLASSIFICATION_FILE)


def load_task1(data_dir):
    """The two Task 1 problems as HF DatasetDicts: regression (train/validation: x, y) and classification
    (train/test: x1, x2, label)."""
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

    reg, clf = read_task1_dir(data_dir)
    regression = DatasetDict({
        "train": Dataset.from_dict({"x": reg["X_trn"], "y": reg["Y_trn"]}),
        "validation": Dataset.from_dict({"x": reg["X_val"], "y": reg["Y_val"]}),
    })
    features = Features({"x1": Value("float64"), "x2": Value("float64"), "label": ClassLabel(names=["0", "1"])})
    classification = DatasetDict({
        split: Dataset.from_dict({"x1": clf[f"X_{split}"][:, 0], "x2": clf[f"X_{split}"][:, 1],
                                  "label": clf[f"y_{split}"]}, features=features)
        for split in ("train", "test")
    })
    return regression, classification
