"""dlhub.onnx: a model in eval mode on the CPU runs through ONNX Runtime with PyTorch's outputs; a changed model gets a
new graph (never a stale one); training mode, DLHUB_ONNX=0 and a failed export run PyTorch; few sessions are kept."""

from collections import OrderedDict

import numpy as np
import pytest
import torch
from PIL import Image

import dlhub
import dlhub.onnx as onnx


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch, tmp_path):
    monkeypatch.setattr(onnx, "CACHE_DIR", tmp_path)
    monkeypatch.setattr(onnx, "_SESSIONS", OrderedDict())
    return tmp_path / "onnx"


def small_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                               torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 4)).eval()


def forward(net, x: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(onnx.forward_numpy(net, x.numpy(), "net"))


def reference(net, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return net(x)


def test_onnx_forward_equals_pytorch_and_follows_the_weights(fresh_cache, monkeypatch):
    net, x = small_net(), torch.rand(5, 3, 16, 16)
    out = forward(net, x)
    assert torch.allclose(out, reference(net, x), atol=1e-5) and len(list(fresh_cache.iterdir())) == 1
    assert torch.allclose(forward(net, x[:1]), reference(net, x[:1]), atol=1e-5)  # any batch, the same graph
    assert len(list(fresh_cache.iterdir())) == 1

    with torch.no_grad():
        net[-1].bias += torch.tensor([1.0, 0, 0, 0])  # trained further in place: a new graph
    assert torch.allclose(forward(net, x), reference(net, x), atol=1e-5) and len(list(fresh_cache.iterdir())) == 2

    net.train()  # training mode is never exported (dropout, BatchNorm statistics)
    forward(net, x)
    assert len(list(fresh_cache.iterdir())) == 2
    net.eval()
    monkeypatch.setenv("DLHUB_ONNX", "0")
    with torch.no_grad():
        net[-1].bias -= 1.0
    assert torch.equal(forward(net, x), reference(net, x)) and len(list(fresh_cache.iterdir())) == 2


def test_a_failed_export_runs_pytorch_and_sessions_are_bounded(monkeypatch, caplog):
    monkeypatch.setattr(onnx, "MAX_SESSIONS", 2)
    nets = [small_net() for _ in range(3)]
    for i, net in enumerate(nets):
        with torch.no_grad():
            net[-1].bias.fill_(i)
        forward(net, torch.rand(1, 3, 8, 8))
    assert len(onnx._SESSIONS) == 2  # the least recently used was dropped

    monkeypatch.setattr(torch.onnx, "export", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("no exporter")))
    net, x = small_net(), torch.rand(2, 3, 8, 8)
    with torch.no_grad():
        net[-1].bias.fill_(9)
    assert torch.equal(forward(net, x), reference(net, x))
    assert "no exporter" in caplog.text and "runs in PyTorch" in caplog.text


def test_the_bundled_landmark_model_answers_the_same_in_onnx_runtime(monkeypatch):
    model = dlhub.load("landmarks")
    face = Image.fromarray((np.random.default_rng(0).random((224, 224, 3)) * 255).astype(np.uint8))
    fast = model.predict([face])[0]
    assert list(onnx._SESSIONS.values()) and all(s is not None for s in onnx._SESSIONS.values())  # ORT did run
    monkeypatch.setenv("DLHUB_ONNX", "0")
    assert np.abs(fast - model.predict([face])[0]).max() < 1e-3  # pixels of the 224 crop


def test_a_model_made_in_inference_mode_still_answers(fresh_cache):
    """Inference tensors have no version counter: their digest is computed each call, not cached."""
    with torch.inference_mode():
        net, x = small_net(), torch.rand(2, 3, 8, 8)
        assert torch.allclose(forward(net, x), net(x), atol=1e-5)
    assert len(list(fresh_cache.iterdir())) == 1


def test_the_graphs_folder_stays_under_its_cap_least_recently_used_first(fresh_cache, monkeypatch):
    """Every distinct model leaves a graph: the folder is pruned to MAX_CACHE_BYTES after each export, the least
    recently used first; a pruned graph is exported again when its model comes back, with the same answer."""
    nets = [small_net() for _ in range(6)]
    for i, net in enumerate(nets):
        with torch.no_grad():
            net[-1].bias.fill_(i)
    x = torch.rand(1, 3, 8, 8)
    forward(nets[0], x)
    graph_bytes = max(p.stat().st_size for p in fresh_cache.iterdir())
    monkeypatch.setattr(onnx, "MAX_CACHE_BYTES", int(2.5 * graph_bytes))
    monkeypatch.setattr(onnx, "MAX_SESSIONS", 1)  # sessions dropped too: a model coming back needs its file
    for net in nets[1:]:
        forward(net, x)
    kept = sorted(fresh_cache.iterdir(), key=lambda p: p.stat().st_mtime)
    assert len(kept) == 2 and sum(p.stat().st_size for p in kept) <= onnx.MAX_CACHE_BYTES
    newest = {onnx._versioned(f"net-{onnx.weights_digest(n)}-3x8x8") + ".onnx" for n in nets[-2:]}
    assert {p.name for p in kept} == newest
    assert torch.allclose(forward(nets[0], x), reference(nets[0], x), atol=1e-5)  # exported again
    assert len(list(fresh_cache.iterdir())) == 2
