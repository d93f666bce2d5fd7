"""Test set-up: a local Hub-compatible server, an isolated HF cache, and tiny data in the course's formats.

The Hub server starts here, at import, because huggingface_hub reads HF_ENDPOINT once when it is first imported.
"""

from __future__ import annotations

import importlib.util
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from hub_server import serve  # noqa: E402

_HUB, _HUB_STATE = serve()
HUB_URL = f"http://127.0.0.1:{_HUB.server_address[1]}"
_HF_HOME = tempfile.mkdtemp(prefix="dlhub-test-hf-")
os.environ.update({
    "HF_ENDPOINT": HUB_URL,
    "HF_TOKEN": "hf_test_token",
    "HF_HOME": _HF_HOME,
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_HUB_DISABLE_XET": "1",  # the test Hub speaks the basic LFS protocol, not Xet
    "DLHUB_HUB_TIMEOUT": "3",
    "GRADIO_ANALYTICS_ENABLED": "False",
})
os.environ.pop("HF_HUB_OFFLINE", None)
for var in [v for v in os.environ if v.startswith("DLHUB_REPO_")]:
    os.environ.pop(var)


@pytest.fixture(scope="session")
def hub():
    """The running test Hub: .url, and .state.repos / .state.requests to inspect."""

    class Hub:
        url = HUB_URL
        state = _HUB_STATE

    return Hub


@pytest.fixture
def task1_dir(tmp_path) -> Path:
    """A folder with Task1_1.npz and Task1_2.npz in the course's layout (generated, small)."""
    from dlhub.regression import make_task1_example

    regression, classification = make_task1_example(seed=1)
    np.savez(tmp_path / "Task1_1.npz", **regression)
    np.savez(tmp_path / "Task1_2.npz", **classification)
    return tmp_path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_script(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run a command from the repository root with the test environment (Hub server, cache) inherited."""
    return subprocess.run(list(args), cwd=ROOT, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)


ACCELERATE_CPU = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "1",
                  "--mixed_precision", "no", "--dynamo_backend", "no", "--num_machines", "1"]


def synthetic_faces(n: int, size: int = 64, seed: int = 0) -> np.ndarray:
    """(n, size, size) uint8 "faces": a bright ellipse, two dark eyes and a mouth, jittered, on a smooth background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    faces = []
    for _ in range(n):
        cx, cy = 0.5 + rng.normal(0, 0.03, 2)
        img = 0.3 + 0.2 * xx * rng.uniform(-1, 1) + 0.1 * yy
        img += 0.4 * (((xx - cx) / 0.3) ** 2 + ((yy - cy) / 0.4) ** 2 < 1)
        for ex in (-0.12, 0.12):
            img -= 0.3 * (((xx - cx - ex) / 0.05) ** 2 + ((yy - cy + 0.08) / 0.03) ** 2 < 1)
        img -= 0.25 * (((xx - cx) / 0.12) ** 2 + ((yy - cy - 0.18) / 0.02) ** 2 < 1)
        faces.append(np.clip(img, 0, 1))
    return np.round(np.stack(faces) * 255).astype(np.uint8)


def landmark_faces(root: Path, layout: str, n: int = 12, size: int = 96, seed: int = 0) -> Path:
    """Synthetic faces with 68 landmarks each (a ring around the face's centre), written in `layout`: "pts" (HELEN's
    trainset/ with n faces + testset/ with n // 3, each face an image and an iBUG .pts file) or "csv" (n images and
    the PyTorch tutorial's face_landmarks.csv). Returns root."""
    from PIL import Image

    faces = synthetic_faces(n + n // 3, size, seed)
    angles = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    points = np.stack([size / 2 + 0.25 * size * np.cos(angles), size / 2 + 0.3 * size * np.sin(angles)], 1)
    rows = []
    for i, face in enumerate(faces):
        folder = root / ("trainset" if i < n else "testset") if layout == "pts" else root
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{1000 + i}_1"
        Image.fromarray(face).save(folder / f"{name}.jpg")
        if layout == "pts":
            lines = "\n".join(f"{x:.2f} {y:.2f}" for x, y in points)
            (folder / f"{name}.pts").write_text(f"version: 1\nn_points: 68\n{{\n{lines}\n}}\n")
        elif i < n:
            rows.append(",".join([f"{name}.jpg", *(f"{v:.2f}" for v in points.ravel())]))
    if layout == "csv":
        header = ",".join(["image_name"] + [f"part_{k}_{axis}" for k in range(68) for axis in "xy"])
        (root / "face_landmarks.csv").write_text("\n".join([header, *rows]) + "\n")
    return root


@pytest.fixture
def faces_npy(tmp_path) -> Path:
    path = tmp_path / "face_data.npy"
    np.save(path, synthetic_faces(40))
    return path


def accelerate_ddp(processes: int = 2) -> list[str]:
    """`accelerate launch` for `processes` CPU processes (gloo; run with ACCELERATE_USE_CPU=true) on a free port,
    so one test's rendezvous port still in TIME_WAIT never fails the next."""
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            "--main_process_port", str(free_port())]


def start_space(log: Path, env: dict | None = None, folder: Path = ROOT) -> tuple[subprocess.Popen, str, float]:
    """Start `python app.py` in `folder` (the repository, or a Space's folder) on a free port; (process, URL, seconds
    until it served its page)."""
    port = free_port()
    env = {**os.environ, **(env or {}), "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1"}
    start = time.time()
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return proc, url, time.time() - start
        except OSError:
            if proc.poll() is not None or time.time() > start + 90:
                proc.kill()
                pytest.fail(f"the Space did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)


def stop_space(proc: subprocess.Popen, log: Path) -> None:
    """Stop the Space; its log must hold no traceback."""
    proc.terminate()
    proc.wait(timeout=20)
    text = log.read_text()
    # a visitor's bad input is a message in the page (user_error, CheckedSlider), never a traceback here: one is a bug
    assert "Traceback (most recent call last)" not in text, text[-3000:]


# Hugging Face's `spaces` package, which Spaces pre-install and Gradio imports (and calls on a Space, SYSTEM=spaces)
HF_SPACES_VERSION = "0.51.3"
# Gradio 6.31 with spaces 0.51.3 and SYSTEM=spaces prints this for the event loops Gradio makes while building any app
# (seen with a three-line app of a Textbox and a Button): noise of theirs, not a failure of a request
UPSTREAM_NOISE = re.compile(r"Exception ignored in: <function BaseEventLoop\.__del__.*?ValueError: Invalid file "
                            r"descriptor: -1\n", re.S)


@pytest.fixture(scope="session")
def hf_spaces_package() -> Path:
    """Hugging Face's `spaces` package, installed from PyPI once into .venv (without its requirements: the Space's
    requirements.txt brings those, as on a Space); put it on PYTHONPATH to start a Space as Hugging Face does."""
    target = ROOT / ".venv" / f"hf-spaces-{HF_SPACES_VERSION}"
    if not (target / "spaces" / "__init__.py").is_file():
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                               f"spaces=={HF_SPACES_VERSION}"], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"pip could not install spaces=={HF_SPACES_VERSION}:\n{done.stderr[-2000:]}"
    return target


def space_tracebacks(log: Path) -> str:
    """The log of a Space started with SYSTEM=spaces when it holds a traceback (less UPSTREAM_NOISE), else ""."""
    text = UPSTREAM_NOISE.sub("", log.read_text(errors="replace"))
    return text if "Traceback (most recent call last)" in text else ""


@pytest.fixture(scope="module")
def space_url(tmp_path_factory):
    """The Space running for one test module."""
    log = tmp_path_factory.mktemp("space") / "app.log"
    proc, url, _ = start_space(log)
    yield url
    stop_space(proc, log)


def load_script(folder: str, name: str):
    """A script of train/ or scripts/ (folders that are not packages) imported as a module, for its functions."""
    spec = importlib.util.spec_from_file_location(f"{folder}_{name}", ROOT / folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
