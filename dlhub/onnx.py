"""CPU inference in ONNX Runtime: a frozen network is exported once into `DLHUB_CACHE/onnx/` and run by onnxruntime,
which computes the same outputs (to float precision) in less time than PyTorch for the one-item batches a Space
serves. Where onnxruntime is missing, `DLHUB_ONNX=0` is set, or an export fails, callers get None and run PyTorch:
the speed changes, never the answer.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import warnings
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from dlhub.cache import CACHE_DIR

log = logging.getLogger("dlhub")
_LOCK = threading.Lock()
_SESSIONS: OrderedDict[str, object] = OrderedDict()
MAX_SESSIONS = 16  # the least recently used are dropped: a Space that loads many models does not keep them all


def enabled() -> bool:
    return os.environ.get("DLHUB_ONNX", "1") != "0"


def export(module: nn.Module, example: torch.Tensor, path: Path) -> None:
    """`module(example)` → one output, as an ONNX graph with a free batch dimension (first axis in and out), written
    under a temporary name and renamed when whole (no half file is ever read)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        torch.onnx.export(module.eval(), (example,), str(tmp), input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, opset_version=17,
                          dynamo=False)
    tmp.replace(path)


def session(name: str, module: nn.Module, example: torch.Tensor):
    """The ONNX Runtime session of `module` cached as `DLHUB_CACHE/onnx/<name>.onnx` (exported on first use; `name`
    must identify the weights and input shape), shared by every caller in the process; None where it cannot run."""
    if not enabled():
        return None
    with _LOCK:  # one export per process, however many requests arrive at once
        if name not in _SESSIONS:
            _SESSIONS[name] = _new_session(CACHE_DIR / "onnx" / f"{name}.onnx", module, example)
            while len(_SESSIONS) > MAX_SESSIONS:
                _SESSIONS.popitem(last=False)
        _SESSIONS.move_to_end(name)
        return _SESSIONS[name]


def forward(model: nn.Module, x: torch.Tensor, prefix: str) -> torch.Tensor:
    """`model(x)` of a model in eval mode, through ONNX Runtime on the CPU where it can run. The graph is named by a
    digest of the weights and the input shape, so a changed model is exported again, never run stale."""
    if model.training or x.device.type != "cpu" or not enabled():
        return model(x)
    graph = session(f"{prefix}-{weights_digest(model)}-{'x'.join(map(str, x.shape[1:]))}", model, x[:1])
    return model(x) if graph is None else run(graph, x)


def weights_digest(model: nn.Module) -> str:
    """A digest of every parameter and buffer, recomputed only when one has changed in place (a tensor's version)."""
    tensors = [*model.parameters(), *model.buffers()]
    versions = tuple((t.data_ptr(), t._version) for t in tensors)
    cached = model.__dict__.get("_dlhub_digest")
    if cached is None or cached[0] != versions:
        sha = hashlib.sha256()
        for t in tensors:
            sha.update(t.detach().cpu().contiguous().numpy().tobytes())
        cached = (versions, sha.hexdigest()[:16])
        model.__dict__["_dlhub_digest"] = cached
    return cached[1]


def _new_session(path: Path, module: nn.Module, example: torch.Tensor):
    try:
        import onnxruntime
    except ImportError:
        log.info("dlhub: onnxruntime is not installed; inference runs in PyTorch")
        return None
    try:
        if not path.is_file():
            export(module, example, path)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        if os.environ.get("SPIN") == "0":
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # noqa: BLE001 - an export or runtime that fails costs speed, never the answer
        log.warning("dlhub: ONNX Runtime cannot run %s (%s: %s); inference runs in PyTorch", path.name,
                    type(err).__name__, err)
        return None


def run(session, x: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(session.run(None, {"input": x.numpy()})[0])
