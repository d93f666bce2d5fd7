"""train/regression.py from the command line: real output on generated data, one-line errors on bad input."""

import json
import re
import sys

import numpy as np
import pytest
from conftest import run_script

SCRIPT = [sys.executable, "train/regression.py"]


@pytest.mark.slow
def test_writes_a_complete_model_folder(task1_dir, tmp_path):
    out = tmp_path / "model"
    result = run_script(*SCRIPT, "--data-dir", str(task1_dir), "--output-dir", str(out), "--epochs", "500")
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("ols_val_mse", "irls_val_mse", "irls_sigma", "logistic_train_accuracy", "logistic_test_accuracy",
                "logistic_decay_test_accuracy"):
        assert np.isfinite(metrics[key])
    assert metrics["irls_val_mse"] < metrics["ols_val_mse"]
    assert metrics["logistic_test_accuracy"] > 0.8
    for png in ("regression_fit.png", "irls_diagnostics.png", "decision_boundary.png", "training_curves.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    assert not list(tmp_path.glob(".model.*")), "temporary folders left behind"


def _bad_npz(folder, **replace):
    from dlhub.regression import make_task1_example

    reg, clf = make_task1_example(0)
    reg.update(replace)
    np.savez(folder / "Task1_1.npz", **{k: v for k, v in reg.items() if v is not None})
    np.savez(folder / "Task1_2.npz", **clf)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("case, message", [
    ("missing folder", "is not a folder"),
    ("empty folder", "has no Task1_1.npz or Task1_2.npz"),
    ("wrong keys", r"Task1_1.npz: missing keys \['Y_val'\]"),
    ("wrong shape", r"X_val \(validation x\) must have shape \(n, 1\), got \(10, 3\)"),
    ("NaN", r"Y_trn \(training y\) holds NaN"),
    ("sigma", "--sigma must be a positive number, got -1.0"),
])
def test_bad_input_is_one_line(tmp_path, case, message):
    data = tmp_path / "data"
    data.mkdir()
    extra = []
    if case == "missing folder":
        data = tmp_path / "absent"
    elif case == "wrong keys":
        _bad_npz(data, Y_val=None)
    elif case == "wrong shape":
        _bad_npz(data, X_val=np.ones((10, 3)))
    elif case == "NaN":
        _bad_npz(data, Y_trn=np.full((30, 1), np.nan))
    elif case == "sigma":
        _bad_npz(data)
        extra = ["--sigma", "-1"]
    result = run_script(*SCRIPT, "--data-dir", str(data), "--output-dir", str(tmp_path / "out"), *extra)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("regression.py: error: ")
    assert re.search(message, lines[0]), lines[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_two_cpu_processes_give_the_single_process_model(task1_dir, tmp_path):
    from conftest import ACCELERATE_CPU, accelerate_ddp

    import dlhub

    args = ["train/regression.py", "--data-dir", str(task1_dir), "--epochs", "200", "--irls_iterations", "10"]
    single = run_script(*ACCELERATE_CPU, *args, "--output-dir", str(tmp_path / "one"))
    assert single.returncode == 0, single.stderr[-2000:]
    double = run_script(*accelerate_ddp(), *args, "--output-dir", str(tmp_path / "two"),
                        env={"ACCELERATE_USE_CPU": "true"})
    assert double.returncode == 0, double.stderr[-2000:]
    one, two = dlhub.load("regression", tmp_path / "one"), dlhub.load("regression", tmp_path / "two")
    for name, w in one.weights().items():
        assert np.allclose(two.weights()[name], w, rtol=0, atol=1e-12), name
