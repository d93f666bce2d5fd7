"""What the code is allowed to load: safetensors only, no remote code, uploads capped."""

import re

from conftest import ROOT

SOURCES = [p for folder in ("dlhub", "spaces", "train", "datasets_scripts", "benchmarks") for p in
           (ROOT / folder).rglob("*.py")] + [ROOT / "app.py"]


def test_pickle_is_read_in_one_place_only_and_without_code():
    """torch.load appears once: converting the pip-shipped EfficientNet weights, with weights_only=True."""
    calls = [(p.relative_to(ROOT).as_posix(), line.strip()) for p in SOURCES for line in p.read_text().splitlines()
             if re.search(r"\btorch\.load\(|\bpickle\.loads?\(|\bjoblib\.load\(", line)]
    assert len(calls) == 1 and calls[0][0] == "dlhub/backbones.py" and "weights_only=True" in calls[0][1], calls
    assert not [p for p in SOURCES if re.search(r"^\s*import pickle|^\s*from pickle", p.read_text(), re.M)]


def test_no_remote_code_and_uploads_are_capped():
    assert not [p for p in SOURCES if "trust_remote_code=True" in p.read_text()]
    app = (ROOT / "app.py").read_text()
    assert re.search(r'max_file_size="\d+mb"', app)


def test_bundled_models_are_safetensors_only():
    from dlhub.tasks import TASKS

    for task in TASKS.values():
        files = {p.name for p in task.bundled_dir.iterdir()}
        assert "model.safetensors" in files and not {f for f in files if f.endswith((".bin", ".pt", ".pth", ".pkl"))}


def test_a_pickled_checkpoint_is_refused_and_never_opened(tmp_path, monkeypatch):
    """A folder with only pytorch_model.bin: one clear error naming model.safetensors; torch.load is never called."""
    import shutil

    import pytest
    import torch

    import dlhub
    from dlhub.errors import DLHubError

    shutil.copy(ROOT / "checkpoints" / "regression" / "config.json", tmp_path / "config.json")
    (tmp_path / "pytorch_model.bin").write_bytes(b"pickled weights that must never be unpickled")
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load was called"))
    with pytest.raises(DLHubError, match="model.safetensors"):
        dlhub.load("regression", tmp_path)
