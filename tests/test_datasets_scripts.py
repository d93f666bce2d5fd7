"""datasets_scripts/task1.py: the course's files to HF datasets on disk and on the (test) Hub."""

import sys

import numpy as np
import pytest
from conftest import run_script
from datasets import load_dataset, load_from_disk


@pytest.mark.slow
def test_task1_to_disk_and_hub(task1_dir, tmp_path):
    out = tmp_path / "task1"
    result = run_script(sys.executable, "datasets_scripts/task1.py", "--data-dir", str(task1_dir), "--output-dir",
                        str(out), "--push_to_hub", "--hub_dataset_id", "test-org/task1-data", "--private")
    assert result.returncode == 0, result.stderr[-3000:]
    raw = np.load(task1_dir / "Task1_2.npz")
    on_disk = load_from_disk(str(out / "classification"))
    on_hub = load_dataset("test-org/task1-data", "classification")
    for ds in (on_disk, on_hub):
        assert ds["test"].num_rows == 400
        assert np.array_equal(np.array(ds["train"]["x1"]), raw["arr_0"][:, 0])
        assert np.array_equal(np.array(ds["test"]["label"]), raw["arr_3"].reshape(-1))
    regression = load_dataset("test-org/task1-data", "regression")
    assert regression["validation"].num_rows == 10


def test_push_without_a_repo_id_is_one_line(task1_dir):
    result = run_script(sys.executable, "datasets_scripts/task1.py", "--data-dir", str(task1_dir), "--push_to_hub")
    assert result.returncode == 2
    assert result.stderr.strip() == "task1.py: error: --push_to_hub needs --hub_dataset_id ORG/NAME"
