"""dlhub.load and the Hub: local folders, strict safetensors-only loading, fallbacks, and a real push + pull."""

import json
import os
import sys

import numpy as np
import pytest
import safetensors.torch
import torch
from conftest import ACCELERATE_CPU, ROOT, free_port, run_script
from huggingface_hub import HfApi, ModelCard

import dlhub
from dlhub.errors import CheckpointError, ModelNotFoundError, UnknownTaskError
from dlhub.regression import RegressionModel, make_task1_example, select_sigma, train_logistic


@pytest.fixture(scope="module")
def model() -> RegressionModel:
    reg, clf = make_task1_example(seed=2)
    r = {k: v.reshape(-1) for k, v in reg.items()}
    fit = select_sigma(r["X_trn"], r["Y_trn"], r["X_val"], r["Y_val"], sigmas=[10.0, 50.0])
    logistic = train_logistic(clf["arr_0"], clf["arr_2"], epochs=100)
    return RegressionModel.from_fits(fit, logistic, logistic, x_range=(-5, 5))


def test_local_folder_round_trip(model, tmp_path):
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["labels"] == ["0", "1"] and config["regression_features"] == ["1", "x", "x^2", "1/x"]
    assert config["sigma"] == model.sigma
    loaded = dlhub.load("regression", tmp_path)
    assert loaded.source == f"local folder {tmp_path}"
    for name, w in model.weights().items():
        assert np.array_equal(loaded.weights()[name], w)
    assert loaded.sigma == model.sigma and not loaded.training


def test_unknown_task_names_the_choices():
    with pytest.raises(UnknownTaskError, match="unknown task 'nope': choose one of .*regression"):
        dlhub.load("nope")


def test_folder_without_weights(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelNotFoundError, match=f"no model.safetensors in {tmp_path}"):
        dlhub.load("regression", tmp_path)


def test_pickle_weights_are_never_loaded(model, tmp_path):
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelNotFoundError, match="no model.safetensors"):
        dlhub.load("regression", tmp_path)


def test_neither_folder_nor_repo_id():
    with pytest.raises(ModelNotFoundError, match="neither an existing folder nor a Hub repo id"):
        dlhub.load("regression", "/no/such/folder/at/all")


@pytest.mark.parametrize("change, message", [
    (lambda s: s.pop("robust.weight"), r"missing keys \['robust.weight'\]"),
    (lambda s: s.update({"extra.weight": torch.zeros(1)}), r"unexpected keys \['extra.weight'\]"),
    (lambda s: s.update({"robust.weight": torch.zeros(1, 5, dtype=torch.float64)}), r"robust.weight has shape"),
])
def test_loading_is_strict(model, tmp_path, change, message):
    model.save_pretrained(tmp_path)
    state = safetensors.torch.load_file(tmp_path / "model.safetensors")
    change(state)
    safetensors.torch.save_file(state, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match=message):
        dlhub.load("regression", tmp_path)


def test_corrupt_weights_name_the_file(model, tmp_path):
    model.save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:50])
    with pytest.raises(CheckpointError, match=f"{weights} is corrupt or truncated"):
        dlhub.load("regression", tmp_path)


def test_mixin_strict_false_is_refused(model, tmp_path):
    model.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="always load strictly"):
        RegressionModel.from_pretrained(tmp_path, strict=False)


def test_missing_hub_repo_is_a_clear_error(hub):
    with pytest.raises(ModelNotFoundError, match=f"Hub repo test-org/absent not found at {hub.url}"):
        dlhub.load("regression", "test-org/absent")


def test_default_falls_back_to_the_bundled_checkpoint(hub):
    model = dlhub.load("regression")  # the configured repo does not exist on the test Hub
    assert model.source.startswith(f"bundled checkpoint {ROOT / 'checkpoints' / 'regression'}")
    assert "not found" in model.source
    assert np.isfinite(model.predict([1.0, 2.0])).all()


@pytest.mark.parametrize("hub_kind", ["closed port", "hanging server"])
def test_unreachable_hub_falls_back_quickly(hub_kind):
    code = ("import time, dlhub; t = time.time(); m = dlhub.load('regression'); "
            "print(round(time.time() - t, 1)); print(m.source)")
    env = {"DLHUB_HUB_TIMEOUT": "2"}
    if hub_kind == "closed port":
        env["HF_ENDPOINT"] = f"http://127.0.0.1:{free_port()}"
        out = run_script(sys.executable, "-c", code, env=env, timeout=120)
    else:
        server = run_hanging_server()
        try:
            env["HF_ENDPOINT"] = server.url
            out = run_script(sys.executable, "-c", code, env=env, timeout=120)
        finally:
            server.stop()
    assert out.returncode == 0, out.stderr
    seconds, source = out.stdout.strip().splitlines()[-2:]
    assert source.startswith("bundled checkpoint") and "could not reach the Hub" in source
    assert float(seconds) < 15


def run_hanging_server():
    import hub_server

    srv, _ = hub_server.serve(hang_s=60)

    class Server:
        url = f"http://127.0.0.1:{srv.server_address[1]}"

        @staticmethod
        def stop():
            srv.server_close()

    return Server


@pytest.mark.slow
def test_push_with_the_train_script_then_pull(hub, task1_dir, tmp_path):
    out_dir = tmp_path / "out"
    result = run_script(*ACCELERATE_CPU, "train/regression.py", "--data-dir", str(task1_dir), "--output-dir",
                        str(out_dir), "--epochs", "300", "--push_to_hub", "--hub_model_id", "test-org/task1")
    assert result.returncode == 0, result.stderr[-3000:]
    files = set(HfApi().list_repo_files("test-org/task1"))
    assert {"model.safetensors", "config.json", "README.md", "metrics.json", "regression_fit.png",
            "training_curves.png"} <= files

    pulled = dlhub.load("regression", "test-org/task1")
    local = dlhub.load("regression", out_dir)
    assert pulled.source.startswith("Hub repo test-org/task1")
    assert (pulled.folder / "training_curves.png").is_file()  # the Space shows the model's plots
    for name, w in local.weights().items():
        assert np.array_equal(pulled.weights()[name], w)
    xs, points = np.linspace(0.5, 4, 9), np.random.default_rng(0).normal(size=(20, 2))
    assert np.array_equal(pulled.predict(xs), local.predict(xs))
    assert np.array_equal(pulled.predict_proba(points), local.predict_proba(points))

    card = ModelCard.load("test-org/task1")
    metrics = json.loads((out_dir / "metrics.json").read_text())
    results = {r.metric_name: r.metric_value for r in card.data.eval_results}
    assert results["validation MSE, reweighted"] == pytest.approx(metrics["irls_val_mse"], abs=1e-6)
    assert results["test accuracy, lr decay"] == pytest.approx(metrics["logistic_decay_test_accuracy"], abs=1e-6)
    assert card.data.license == "mit" and "train/regression.py" in card.text

    os.environ["DLHUB_REPO_REGRESSION"] = "test-org/task1"  # the configured repo now exists: None uses the Hub
    try:
        assert dlhub.load("regression").source.startswith("Hub repo test-org/task1")
    finally:
        del os.environ["DLHUB_REPO_REGRESSION"]
