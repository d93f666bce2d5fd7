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


# -- what a model from elsewhere may cost: checked before it is downloaded or built -----------------------------------
def push_repo(repo_id: str, files: dict, tags: list[str] | None = None, endpoint: str | None = None,
              private: bool = False) -> str:
    """Upload `files` ({name: bytes, str or a dict written as JSON}) as a model repo with a card tagged `tags`; the
    commit sha."""
    import tempfile
    from pathlib import Path

    api = HfApi(endpoint=endpoint)
    api.create_repo(repo_id, exist_ok=True, private=private)
    with tempfile.TemporaryDirectory() as folder:
        card = "---\ntags:\n" + "".join(f"- {t}\n" for t in tags or ["dlhub"]) + "---\n\n# a test model\n"
        for name, content in {"README.md": card, **files}.items():
            data = json.dumps(content) if isinstance(content, dict) else content
            (Path(folder) / name).write_bytes(data if isinstance(data, bytes) else data.encode())
        api.upload_folder(repo_id=repo_id, folder_path=folder)
    return api.model_info(repo_id).sha


def regression_files(model) -> dict:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder)
        return {name: (Path(folder) / name).read_bytes() for name in ("config.json", WEIGHTS_NAME)}


WEIGHTS_NAME = "model.safetensors"


def safetensors_bytes(values: int) -> bytes:
    """A valid safetensors file of one float32 tensor of `values` random values (the test Hub reads its header)."""
    return safetensors.torch.save({"values": torch.rand(values)})


def fetched(hub, repo_id: str) -> list[str]:
    return [r for r in hub.state.requests if f"/{repo_id}/resolve/" in r]


def test_a_repo_over_the_size_cap_is_refused_from_its_file_list(hub, model, tmp_path):
    from dlhub.hub import ModelTooLargeError

    push_repo("visitor-org/heavy-regression", {**regression_files(model), "extra.safetensors": safetensors_bytes(2**19)},
              ["dlhub", "regression"])
    with pytest.raises(ModelTooLargeError, match=r"Hub repo visitor-org/heavy-regression holds 2\.0 MB of model files, "
                                                 r"over the 1\.0 MB dlhub downloads") as refused:
        dlhub.load("regression", "visitor-org/heavy-regression", max_bytes=2**20, cache_dir=tmp_path)
    assert refused.value.short == "2.0 MB of files; the cap is 1.0 MB"
    assert not fetched(hub, "visitor-org/heavy-regression")  # not even its config.json
    loaded = dlhub.load("regression", "visitor-org/heavy-regression", cache_dir=tmp_path)  # under the default 300 MB
    assert loaded.origin.repo_id == "visitor-org/heavy-regression" and tmp_path in loaded.folder.parents


@pytest.mark.parametrize("task, config, error", [
    ("signs", {"hidden": 2_000_000}, r"config\.json holds the number 2e\+06 \(settings are at most 1,000,000\)"),
    ("signs", {"hidden": 900_000}, r"builds a signs model of 2,9\d\d,\d{3},\d{3} parameters, over the 100,000,000"),
    ("signs", {"input_size": 60_000}, r"its input_size 60000 is not from 8 to 512 px"),
    ("signs", {"labels": ["x"] * 5000}, r"holds a list of 5,000 items"),
    ("landmarks", {"architecture": "tf_efficientnet_l2"}, r"builds a landmarks model of 4\d\d,\d{3},\d{3} parameters"),
    ("denoiser", {"widths": [2048, 4096]}, r"builds a denoiser model of [\d,]{13} parameters, over the 100,000,000"),
])
def test_a_huge_config_is_refused_before_any_weights_or_memory(hub, tmp_path, task, config, error):
    """A 1 KB repo whose config.json would build gigabytes: refused from config.json alone (bounded values, then the
    parameters counted on the meta device), its weights never downloaded, nothing allocated."""
    import resource

    from dlhub.errors import DLHubError

    repo = f"visitor-org/huge-{task}-{abs(hash(json.dumps(config))) % 10**6}"
    push_repo(repo, {"config.json": config, WEIGHTS_NAME: safetensors_bytes(200)}, ["dlhub", task])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(DLHubError, match=error):
        dlhub.load(task, repo, cache_dir=tmp_path)
    assert not [r for r in fetched(hub, repo) if r.endswith(WEIGHTS_NAME)]
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 200_000  # kB: no model was built for real
    folder = tmp_path / "folder"  # the same settings in a local folder: refused the same way
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    (folder / WEIGHTS_NAME).write_bytes(safetensors_bytes(200))
    with pytest.raises(DLHubError, match=error):
        dlhub.load(task, folder)


def test_a_visitors_repo_is_read_without_this_machines_token(model, tmp_path, monkeypatch):
    """token=False: no Authorization header on any request (the Space reads visitors' repos so); the default sends
    this machine's token (HF_TOKEN), as for the Space's own, possibly private, repos."""
    import threading
    from http.server import ThreadingHTTPServer

    from huggingface_hub import constants
    from hub_server import Handler, HubState

    seen = []

    class Recording(Handler):
        state = HubState()

        def _route(self):
            seen.append((self.command, self.path, self.headers.get("Authorization")))
            return super()._route()

        do_GET = do_POST = do_HEAD = do_PUT = _route

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recording)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        push_repo("visitor/regression", regression_files(model), ["dlhub", "regression"], endpoint=url)
        monkeypatch.setattr(constants, "ENDPOINT", url)  # the API's, and the files' (made from it at import)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")
        seen.clear()
        dlhub.load("regression", "visitor/regression", token=False, cache_dir=tmp_path / "a")
        assert seen and all(auth is None for _, _, auth in seen), seen
        seen.clear()
        dlhub.load("regression", "visitor/regression", cache_dir=tmp_path / "b")
        assert seen and all(auth == "Bearer hf_test_token" for _, _, auth in seen), seen
    finally:
        server.shutdown()


def test_a_download_past_its_time_is_given_up_without_skipping_the_hub(hub, model, tmp_path):
    from dlhub.hub import DownloadTimeoutError, hub_down

    push_repo("visitor-org/slow-regression", regression_files(model), ["dlhub", "regression"])
    with pytest.raises(DownloadTimeoutError, match=r"Hub repo visitor-org/slow-regression did not download in 0 s"):
        dlhub.load("regression", "visitor-org/slow-regression", timeout_s=0, cache_dir=tmp_path)
    assert not hub_down()  # the Hub answered: it is not skipped
    assert dlhub.load("regression", "visitor-org/slow-regression", cache_dir=tmp_path).sigma == model.sigma


def test_local_folders_false_never_reads_the_disk(hub, monkeypatch):
    monkeypatch.chdir(ROOT)  # "checkpoints/regression" is a folder here, and looks like ORG/NAME
    assert dlhub.load("regression", "checkpoints/regression").origin.kind == "local"
    with pytest.raises(ModelNotFoundError, match="Hub repo checkpoints/regression not found"):
        dlhub.load("regression", "checkpoints/regression", local_folders=False)
    with pytest.raises(ModelNotFoundError, match="is neither a Hub repo id of the form ORG/NAME"):
        dlhub.load("regression", "/etc", local_folders=False)
