"""Loaders that turn the public raw formats into HF datasets, and back into arrays for training."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlhub.errors import DataError


def to_numpy(dataset) -> dict[str, np.ndarray]:
    """Columns of an HF Dataset as numpy arrays in their stored dtypes (the "numpy" format casts float64 to float32)."""
    table = dataset.with_format("arrow")[:]
    return {name: column.to_numpy() for name, column in zip(table.column_names, table.columns)}


def is_hub_id(source) -> bool:
    """ORG/NAME that is not a local path: read through `datasets.load_dataset` (Parquet, no loading scripts)."""
    text = str(source)
    return not Path(text).exists() and "/" in text and not text.startswith((".", "/"))


def load_saved_or_hub(source):
    """A DatasetDict from a `save_to_disk` folder or a Hub dataset id; None when `source` is neither."""
    from datasets import load_dataset, load_from_disk

    path = Path(str(source))
    if path.is_dir() and (path / "dataset_dict.json").is_file():
        return load_from_disk(str(path))
    if is_hub_id(source):
        try:
            return load_dataset(str(source))
        except Exception as err:  # not found, offline, a script-only repo: one line
            raise DataError(f"could not load the Hub dataset {source} ({type(err).__name__}: {err})") from None
    return None
