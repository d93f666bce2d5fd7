"""Each Space in spaces/ starts the way Hugging Face starts it, beside Hugging Face's own `spaces` package.

Spaces set SYSTEM=spaces and SPACE_ID and pre-install the `spaces` package, which Gradio imports and, on a Space,
calls for every event handler (`spaces.gradio_auto_wrap`). A folder of ours named `spaces` with an `__init__.py` once
shadowed it, and the Space died before its first tab was built. Here the real package (PyPI, 0.51.x) is installed
beside the project, each Space is started from its folder in spaces/ as `python app.py`, each of its tabs answers one
API call, and the log holds no traceback.
"""

from __future__ import annotations

import re
import sys

import pytest
import yaml

from conftest import ROOT, space_tracebacks, start_space

sys.path.insert(0, str(ROOT / "benchmarks"))
import load  # noqa: E402  (benchmarks/load.py: an input for every endpoint)

pytestmark = pytest.mark.slow
# Each Space's endpoints: one call per tab (the Models tab's too)
TAB_ENDPOINTS = {"regression": ["/regression_refit"], "denoiser": ["/denoise"], "signs": ["/classify_sign"],
                 "landmarks": ["/face_landmarks"], "commands": ["/recognise_command"]}
def space_names() -> list[str]:
    return sorted(p.name for p in (ROOT / "spaces").iterdir() if (p / "app.py").is_file())


def endpoints_of(name: str) -> list[str]:
    from dlhub.cards import SPACES

    tasks = SPACES[name].tasks or tuple(TAB_ENDPOINTS)
    extra = ["/mlp_exercise"] if SPACES[name].tasks is None else []
    return [e for t in tasks for e in TAB_ENDPOINTS[t]] + extra + ["/list_models"]


def test_no_package_named_spaces_in_the_repository():
    """spaces/ holds deployable folders, not Python: nothing in it may make `spaces` a regular package."""
    assert not list((ROOT / "spaces").rglob("__init__.py"))
    assert not (ROOT / "spaces.py").exists()


def test_each_space_folder_is_what_the_card_renderer_gives():
    """Front matter Hugging Face can read: sdk gradio at the installed Gradio's version, app.py, and the models."""
    import gradio

    from dlhub.cards import SPACES, render_space_card, space_app

    assert space_names() == sorted(SPACES)
    for name in SPACES:
        folder = ROOT / "spaces" / name
        assert (folder / "README.md").read_text() == render_space_card(name), f"spaces/{name}/README.md is stale"
        assert (folder / "app.py").read_text() == space_app(name)
        assert len((folder / "app.py").read_text().splitlines()) == 3
        front = yaml.safe_load((folder / "README.md").read_text().split("---")[1])
        assert front["sdk"] == "gradio" and front["sdk_version"] == gradio.__version__
        assert front["app_file"] == "app.py" and len(front["short_description"]) <= 60  # the Hub's limit
    root = yaml.safe_load((ROOT / "README.md").read_text().split("---")[1])
    assert root["sdk_version"] == gradio.__version__ and len(root["short_description"]) <= 60


def test_requirements_install_on_a_cpu_only_space():
    """requirements.txt pins every package (the Space builds what was tested), needs no GPU-only package, and
    packages.txt brings the Debian packages torchcodec and Gradio decode audio with."""
    lines = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    pins = [line for line in lines if line]
    assert pins and all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[\w.]+", p) for p in pins), pins
    names = {p.split("==")[0].lower() for p in pins}
    assert not names & {"flash-attn", "bitsandbytes", "xformers", "deepspeed", "spaces"}
    import gradio

    assert f"gradio=={gradio.__version__}" in pins
    assert "ffmpeg" in (ROOT / "packages.txt").read_text().split()
    # everything in it is installed here, on a machine without a GPU, at the pinned version
    from importlib.metadata import version

    for pin in pins:
        name, pinned = pin.split("==")
        assert version(name.split("[")[0]) == pinned, pin


def test_each_space_starts_as_hugging_face_starts_it(hf_spaces_package, tmp_path):
    """Every Space at once (SYSTEM=spaces, SPACE_ID, the real `spaces` package importable): one API call per tab,
    then no traceback in any log."""
    from gradio_client import Client

    from dlhub.cards import SPACES

    files = load.example_files(tmp_path)
    inputs = load.endpoint_inputs(files)
    started = []
    try:
        for name in space_names():
            log = tmp_path / f"{name}.log"
            env = {"SYSTEM": "spaces", "SPACE_ID": f"testorg/{name}", "PYTHONPATH": str(hf_spaces_package),
                   "HF_HUB_OFFLINE": "1"}
            proc, url, _ = start_space(log, env, folder=ROOT / "spaces" / name)
            started.append((name, proc, url, log))
        for name, proc, url, log in started:
            client = Client(url, verbose=False)
            tasks = SPACES[name].tasks or ("signs",)
            inputs["/list_models"] = [(tasks[0], "main metric")]
            documented = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
            for endpoint in endpoints_of(name):
                assert endpoint in documented, (name, endpoint, sorted(documented))
                answer = client.predict(*inputs[endpoint][0], api_name=endpoint)
                assert answer is not None, (name, endpoint)
            assert "spaces.gradio_auto_wrap" not in log.read_text()
    finally:
        for _, proc, _, _ in started:
            proc.terminate()
            proc.wait(timeout=20)
    for name, _, _, log in started:
        assert not space_tracebacks(log), f"{name}:\n{space_tracebacks(log)[-3000:]}"
