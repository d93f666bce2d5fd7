"""Choosing a model in the tabs, and the Models tab, against the test Hub: two traffic-sign models pushed by the train
script on tiny data, a landmarks repo, a missing repo, and a Hub that does not answer.

The Space's API (gradio_client): /list_models lists both signs models with their cards' metrics; /classify_sign with
`model=` answers with each and names it (repo and commit); another task's repo or a missing one is one message. In a
browser: a row of the Models tab opens its model in the Traffic signs tab, which then answers with it.
"""

import json
import re
import shutil
import sys
import threading
import time

import gradio as gr
import numpy as np
import pytest
from conftest import ACCELERATE_CPU, ROOT, run_script, start_space, stop_space
from huggingface_hub import HfApi
from make_gtsrb import make_kaggle

import dlhub
import dlhub.tasks
from dlhub.hub import count_parameters, push_folder
from dlhub.sign_drawings import draw_sign
from dlhub.space import models

SIGNS = {"test-org/signs-a": ["--epochs", "1"], "test-org/signs-b": ["--epochs", "2", "--label_smoothing", "0"]}
LANDMARKS = "test-org/face-landmarks-copy"


# -- without the Space: the choice, the cache, the listing with the Hub down --------------------------------------------
def test_a_choice_names_a_model_or_is_one_message(tmp_path, monkeypatch):
    assert models.parse_choice("signs", None).key == models.DEFAULT
    assert models.parse_choice("signs", " bundled ").source == ROOT / "checkpoints" / "signs"
    assert models.parse_choice("denoiser", "bundled:denoiser-mlp").source == ROOT / "checkpoints" / "denoiser-mlp"
    hub = models.parse_choice("signs", "org/name@v1.0")
    assert hub.hub and hub.source == "org/name@v1.0" and hub.token is False  # a visitor's repo: no Space token
    own = models.parse_choice("signs", f"{dlhub.tasks.hub_org()}/gtsrb-signs")
    assert own.hub and own.token is None  # the Space's own repo (it may be private): read with its token
    offered = tmp_path / "runs" / "signs-run"
    shutil.copytree(ROOT / "checkpoints" / "signs", offered)
    with pytest.raises(gr.Error, match="Folders on the server cannot be chosen") as refused:
        models.parse_choice("signs", str(offered))  # not offered yet: refused, and the path is not repeated
    assert str(tmp_path) not in refused.value.message
    monkeypatch.setenv("DLHUB_SPACE_MODEL_DIRS", str(offered.parent))  # offered: by its key or by its path
    by_key = models.parse_choice("signs", "folder:signs-run")
    assert by_key.source == offered and by_key.cache_key == "folder:signs-run" and not by_key.hub
    assert models.parse_choice("signs", str(offered)) == by_key
    assert ("folder: signs-run", "folder:signs-run") in models.known_choices("signs")
    assert "folder:signs-run" not in [v for _, v in models.known_choices("regression")]  # a signs model only
    with pytest.raises(gr.Error, match="There is no bundled model 'bundled:denoiser-mlp' for this tab: the bundled "
                                       "ones are bundled."):
        models.parse_choice("signs", "bundled:denoiser-mlp")
    with pytest.raises(gr.Error, match="'not a model' names no model"):
        models.parse_choice("signs", "not a model")


def test_the_cache_keeps_the_three_last_used_and_loads_each_once(tmp_path, monkeypatch):
    folders = []
    for i in range(4):
        folders.append(tmp_path / f"m{i}")
        shutil.copytree(ROOT / "checkpoints" / "regression", folders[-1])
    monkeypatch.setenv("DLHUB_SPACE_MODEL_DIRS", str(tmp_path))
    loads = []
    real_load = dlhub.load

    def counted(task, source=None, **kwargs):
        loads.append(source)
        time.sleep(0.2)  # requests arriving together find the load under way
        return real_load(task, source, **kwargs)

    monkeypatch.setattr(dlhub, "load", counted)
    cache = models.ModelCache("regression", size=3)
    choices = [models.parse_choice("regression", str(f)) for f in folders]
    got = []
    threads = [threading.Thread(target=lambda: got.append(cache.get(choices[0]))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loads) == 1 and len({id(m) for m in got}) == 1
    for c in (choices[1], choices[2], choices[0], choices[3]):  # the first is used again: the second goes
        cache.get(c)
    assert cache.keys() == [choices[2].cache_key, choices[0].cache_key, choices[3].cache_key]
    assert len(loads) == 4


def test_hub_down_lists_the_bundled_models_only_within_the_hub_budget(monkeypatch):
    from huggingface_hub import constants
    from test_hub import run_hanging_server

    import dlhub.hub

    server = run_hanging_server()
    try:
        monkeypatch.setattr(constants, "ENDPOINT", server.url)
        monkeypatch.setattr(models, "_LISTINGS", {})
        start = time.time()
        table, note = models.list_models("signs")
        seconds = time.time() - start
        assert seconds < 5, seconds  # the Space's Hub budget (HUB_TIMEOUT_S; 3 s in the tests)
        assert [row[0] for row in table["data"]] == ["bundled"]
        assert "The Hub could not be reached: only the bundled models are listed." in note
        start = time.time()
        table, note = models.list_models("denoiser")  # the Hub is skipped for a minute now: no wait
        assert time.time() - start < 1
        assert [row[0] for row in table["data"]] == ["bundled", "bundled:denoiser-mlp"]
    finally:
        dlhub.hub._hub_down.pop(server.url, None)
        server.stop()


# -- the Space, with two signs models and a landmarks model on the test Hub -------------------------------------------
@pytest.fixture(scope="module")
def pushed(hub, tmp_path_factory):
    """The two signs models, trained by train/gtsrb.py on tiny GTSRB and pushed to the test Hub, and a landmarks repo;
    {repo: (local output folder, commit)}."""
    folder = tmp_path_factory.mktemp("choice")
    kaggle = make_kaggle(folder / "kaggle")
    made = {}
    for repo, extra in SIGNS.items():
        out = folder / repo.split("/")[1]
        result = run_script(*ACCELERATE_CPU, "train/gtsrb.py", "--dataset", str(kaggle), "--blocks", "8", "16",
                            "--input_size", "32", "--batch_size", "16", "--output-dir", str(out), *extra,
                            "--push_to_hub", "--hub_model_id", repo)
        assert result.returncode == 0, result.stderr[-3000:]
        made[repo] = (out, HfApi().model_info(repo).sha)
    push_folder(ROOT / "checkpoints" / "landmarks", LANDMARKS)
    return made


@pytest.fixture(scope="module")
def space(pushed, tmp_path_factory):
    log = tmp_path_factory.mktemp("space") / "app.log"
    proc, url, _ = start_space(log)
    yield url
    stop_space(proc, log)


@pytest.fixture(scope="module")
def client(space):
    from gradio_client import Client

    return Client(space, verbose=False)


@pytest.fixture(scope="module")
def sign(tmp_path_factory):
    path = tmp_path_factory.mktemp("sign") / "stop.png"
    draw_sign(14, 64, seed=3).save(path)
    return path


def test_the_regression_tab_says_which_model_it_compares_with(task1_dir):
    from dlhub.space import regression

    data = regression.load_regression_file(str(task1_dir / "Task1_1.npz"))
    fig, _, summary = regression.refit(data, 40.0, "bundled")
    assert "*Model: the bundled checkpoint `checkpoints/regression` (σ = " in summary
    assert "its fit is drawn beside this one" in summary
    assert any("bundled model" in line.get_label() for line in fig.axes[0].get_lines())


@pytest.mark.slow
def test_every_model_endpoint_takes_an_optional_model_parameter(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    for name in ("/regression_refit", "/denoise", "/classify_sign", "/face_landmarks", "/recognise_command",
                 "/listen"):
        last = endpoints[name]["parameters"][-1]
        assert last["parameter_name"] == "model" and last["parameter_has_default"], (name, last)
        assert last["parameter_default"] == models.DEFAULT


@pytest.mark.slow
def test_models_tab_lists_both_pushed_models_with_their_metrics(client, pushed):
    table, note = client.predict("signs", "main metric", api_name="/list_models")
    rows = {row[0]: row for row in table["data"]}
    assert {"bundled", *SIGNS} <= set(rows), rows.keys()  # and any other signs model the session's tests pushed
    assert table["headers"][2] == "test accuracy ↑" and re.search(r"\d+ found on the Hub", note)
    for repo, (out, _) in pushed.items():
        metrics = json.loads((out / "metrics.json").read_text())
        _, where, main, parameters, *_, by, _, results = rows[repo]
        assert where == "Hub" and main == pytest.approx(metrics["test_accuracy"], abs=1e-6)
        assert "test accuracy — " in results and ", test: " in results
        assert parameters == count_parameters(out / "model.safetensors")
        assert by == models.REPORTED  # test-org is not the project's organisation: the uploader's word
    assert rows["bundled"][-3] == models.MEASURED
    ranked = [(row[2] is None, row[-3] == models.REPORTED, -(row[2] or 0)) for row in table["data"]]
    assert ranked == sorted(ranked)  # measured first, then reported, then none; each best first by the main metric


@pytest.mark.slow
def test_each_pushed_model_answers_in_the_signs_tab_and_is_named(client, pushed, sign, hub):
    from gradio_client import handle_file
    from PIL import Image

    answers = {}
    for repo, (out, sha) in pushed.items():
        label, _, _, note = client.predict(handle_file(str(sign)), repo, api_name="/classify_sign")
        expected = dlhub.load("signs", out).predict([Image.open(sign)], top_k=5)[0]
        got = {c["label"]: c["confidence"] for c in label["confidences"]}
        assert list(got) == list(expected) and np.allclose(list(got.values()), list(expected.values()), atol=1e-5)
        assert f"Answered by `{repo}` at commit `{sha[:7]}`." in note
        answers[repo] = got
    assert answers["test-org/signs-a"] != answers["test-org/signs-b"]
    *_, note = client.predict(handle_file(str(sign)), api_name="/classify_sign")  # no model: the tab's default
    assert "Answered by the bundled checkpoint `checkpoints/signs`." in note


@pytest.mark.slow
def test_another_tasks_repo_is_one_message_before_its_weights(client, sign, hub):
    from gradio_client import handle_file

    with pytest.raises(Exception) as refused:
        client.predict(handle_file(str(sign)), LANDMARKS, api_name="/classify_sign")
    assert (f"Hub repo {LANDMARKS} is a landmarks model, not a signs model (its card is tagged 'landmarks'): choose it "
            "in the Face landmarks tab.") in str(refused.value)
    asked = [r for r in hub.state.requests if LANDMARKS in r and r.startswith("GET")]
    assert asked and not [r for r in asked if r.endswith("model.safetensors")]  # its config was read, no weights


@pytest.mark.slow
def test_a_missing_repo_is_one_message(client, sign):
    from gradio_client import handle_file

    with pytest.raises(Exception) as refused:
        client.predict(handle_file(str(sign)), "test-org/absent", api_name="/classify_sign")
    assert ("test-org/absent is not on the Hub, or it is private or gated and this Space has no access to it."
            in str(refused.value))
    label, *_ = client.predict(handle_file(str(sign)), api_name="/classify_sign")  # the Space answers as before
    assert label["label"] == "Stop"


@pytest.mark.slow
@pytest.mark.browser
def test_a_row_of_the_models_tab_opens_its_model_in_its_tab(space, pushed, sign):
    from test_browser import CHROMIUM, CHROMIUM_ARGS

    sync_api = pytest.importorskip("playwright.sync_api")
    repo = "test-org/signs-b"
    sha = pushed[repo][1]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 1000})
            page.goto(space)
            page.get_by_role("tab", name="Models").click()
            cell = page.locator("#models-table [data-testid^='cell-']", has_text=repo).first
            cell.wait_for(timeout=60_000)
            cell.click()
            note = page.locator("#signs-model-note")
            note.get_by_text(repo).first.wait_for(timeout=60_000)  # the Traffic signs tab, on that model
            assert page.get_by_role("tab", name="Traffic signs").get_attribute("aria-selected") == "true"
            page.locator("#signs-input input[type=file]").set_input_files(str(sign))
            page.locator("#signs-note").get_by_text(f"Answered by {repo} at commit {sha[:7]}").wait_for(
                timeout=60_000)
            assert page.locator(".toast-body.error").count() == 0
            other = page.locator("#signs-model-other textarea, #signs-model-other input").first
            other.fill("test-org/absent")  # a missing repo: one message, and the tab keeps its model
            other.press("Enter")
            page.locator(".toast-body.error").first.wait_for(timeout=30_000)
            page.wait_for_timeout(2000)  # a second toast for the same error would have arrived by now
            errors = page.locator(".toast-body.error").all_inner_texts()
            assert len(errors) == 1 and "test-org/absent is not on the Hub" in errors[0], errors
            assert "The tab keeps its model." in errors[0] and repo in note.inner_text()
            assert page.locator("#signs-model input").first.input_value().startswith(f"{repo} (Hub)")
        finally:
            browser.close()


@pytest.mark.slow
def test_results_pushed_by_dlhub_evaluate_appear_in_the_models_tab(pushed, tmp_path):
    """train → push → `python -m dlhub.evaluate … --push` (the owner: a commit on main) → the Models tab's listing
    shows the new result beside the training run's own."""
    repo = "test-user/signs-evaluated"
    out, _ = pushed["test-org/signs-a"]
    push_folder(out, repo)
    kaggle = make_kaggle(tmp_path / "gtsrb-eval")
    result = run_script(sys.executable, "-m", "dlhub.evaluate", "signs", repo, "--dataset", str(kaggle),
                        "--json", str(tmp_path / "signs.json"), "--push")
    assert result.returncode == 0, result.stderr[-3000:]
    measured = json.loads((tmp_path / "signs.json").read_text())["results"]
    models._LISTINGS.clear()  # the listing is kept for minutes: ask the Hub again
    table, _ = models.list_models("signs")
    row = next(r for r in table["data"] if r[0] == repo)
    for r in measured:
        shown = f"{models.as_text(r['name'])} — {models.as_text(r['dataset_name'])}, {r['split']}: {r['value']:.4g}"
        assert shown in row[-1], row[-1]
