"""Each endpoint that takes user input, alone, under several clients at once (a class using the Space together).

For every endpoint: 4 clients × 3 calls on different inputs at the same time; every answer equals the serial answer
for the same input, the server log holds no traceback, and the server still answers afterwards. The same code drives
the per-endpoint phase of `benchmarks/load.py` (8 clients × 32 calls).
"""

import sys

import pytest

from conftest import ROOT, start_space, stop_space

sys.path.insert(0, str(ROOT / "benchmarks"))
import load  # noqa: E402  (benchmarks/load.py: the endpoints' inputs and the phase itself)

pytestmark = pytest.mark.slow
CLIENTS, CALLS = 4, 3


@pytest.fixture(scope="module")
def space(tmp_path_factory):
    folder = tmp_path_factory.mktemp("concurrency")
    log = folder / "app.log"
    proc, url, _ = start_space(log)
    yield url, log, load.example_files(folder)
    stop_space(proc, log)


ENDPOINTS = ["/regression_refit", "/choose_sigma", "/denoise", "/classify_sign", "/face_landmarks",
             "/recognise_command", "/mlp_exercise", "/z_composed", "/list_models"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_endpoint_alone_under_concurrent_clients(space, endpoint):
    url, log, files = space
    variants = load.endpoint_inputs(files)[endpoint]
    before = load.count_tracebacks(log)
    result = load.endpoint_phase(url, endpoint, variants, CLIENTS, CALLS)
    assert result["failed"] == [], result["failed"][:3]
    assert result["wrong"] == [], result["wrong"][:3]
    assert load.count_tracebacks(log) == before, log.read_text()[-3000:]
    assert load.server_up(url)


def test_every_documented_endpoint_is_covered(space):
    """A new API endpoint must join the list (/listen is a microphone stream: its state is per session)."""
    from gradio_client import Client

    url, _, files = space
    documented = Client(url, verbose=False).view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert sorted(documented) == sorted(ENDPOINTS + ["/listen"])
    assert sorted(load.endpoint_inputs(files)) == sorted(ENDPOINTS)


def test_fingerprint_tells_images_apart(tmp_path):
    from PIL import Image

    a, b, c = (tmp_path / f"{n}.png" for n in "abc")
    Image.new("L", (8, 8), 10).save(a)
    Image.new("L", (8, 8), 10).save(b, optimize=True)  # other bytes, same pixels
    Image.new("L", (8, 8), 11).save(c)
    assert load.fingerprint(str(a)) == load.fingerprint(str(b)) != load.fingerprint(str(c))
    assert load.fingerprint({"path": str(a), "url": "x"}) != load.fingerprint({"path": str(c), "url": "y"})


def test_load_report_names_each_failed_call():
    tab = {"first_ms": 1.0, "p50_ms": 2.0, "p95_ms": 3.0}
    endpoint = {"calls": 4, "wrong": [], "tracebacks": 0, "calls_per_s": 1.0, "p50_ms": 2.0, "p95_ms": 3.0}
    summary = {"startup_s": None, "threads": 2, "server_up_after": True, "requests": 2, "clients": 2, "wall_s": 1.0,
               "requests_per_s": 2.0, "errors": 0, "mixed_tracebacks": 0, "calls_per_client": 2,
               "tabs": {"denoising": {**tab, "requests": 2, "errors": []}},
               "endpoints": {"/denoise": {**endpoint, "failed": ["CancelledError: "]},
                             "/classify_sign": {**endpoint, "failed": []}}}
    text = load.markdown(summary)
    assert "- `/denoise`: CancelledError: " in text and "/classify_sign`:" not in text
    summary["endpoints"]["/denoise"]["failed"] = []
    assert "Failed or differing calls" not in load.markdown(summary)


def test_each_limit_is_the_measured_one():
    """Each endpoint's concurrency_limit (the lowest in its concurrency group, as Gradio's queue applies it) is the
    one benchmarks/concurrency.py chose on this machine and wrote to benchmarks/CONCURRENCY.md."""
    import re

    import app

    chosen = dict(re.findall(r"^\| `(/\w+)` \|.*\| \*\*(\d+)\*\* \|$", (ROOT / "benchmarks" / "CONCURRENCY.md").read_text(),
                             re.M))
    assert sorted(chosen) == sorted(ENDPOINTS)
    default = app.demo._queue.default_concurrency_limit
    fns = list(app.demo.fns.values())
    limit = lambda fn: default if fn.concurrency_limit == "default" else fn.concurrency_limit  # noqa: E731
    for endpoint, measured in chosen.items():
        (fn,) = [f for f in fns if f.api_name == endpoint.lstrip("/")]
        group = [limit(f) for f in fns if f.concurrency_id == fn.concurrency_id]
        assert min(group) == int(measured), endpoint
