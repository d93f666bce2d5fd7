"""Loaders that turn the public raw formats into HF datasets, and back into arrays for training."""

from __future__ import annotations

import numpy as np


def to_numpy(dataset) -> dict[str, np.ndarray]:
    """Columns of an HF Dataset as numpy arrays in their stored dtypes (the "numpy" format casts float64 to float32)."""
    table = dataset.with_format("arrow")[:]
    return {name: column.to_numpy() for name, column in zip(table.column_names, table.columns)}
