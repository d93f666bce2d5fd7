"""CPU inference in ONNX Runtime: a frozen network is exported once into `DLHUB_CACHE/onnx/` and run by onnxruntime,
which computes the same outputs (to float precision) in less time than PyTorch for the one-item batches a Space
serves. Where onnxruntime is missing, `DLHUB_ONNX=0` is set, or an export fails, callers get None and run PyTorch:
the speed changes, never the answer.

Every distinct model leaves a graph (a Whisper-based command model's is about 85 MB), so the folder is kept under
`DLHUB_ONNX_CACHE_MB` (default 1024), the least recently used graphs removed first. A graph open in ONNX Runtime does
not need its file any more; only graphs being written are never removed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import warnings
import weakref
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dlhub.cache import CACHE_DIR, megabytes_setting, prune_lru, remove_stale, touch

log = logging.getLogger("dlhub")
GRAPH_VERSION = 1  # in every graph's file name: raise it when the exported computation changes
_LOCK = threading.Lock()  # guards the two dicts below, never held while a graph is built
_SESSIONS: OrderedDict[str, object] = OrderedDict()
_BUILDING: dict[str, threading.Lock] = {}
MAX_SESSIONS = 12  # the least recently used are dropped: the Space's 3 models per task of the three tasks using it
MAX_CACHE_BYTES = megabytes_setting("DLHUB_ONNX_CACHE_MB", 1024)  # the graphs kept on disk, in all


def enabled() -> bool:
    return os.environ.get("DLHUB_ONNX", "1") != "0"


def export(module: nn.Module, example: torch.Tensor, path: Path) -> None:
    """`module(example)` → one output, as an ONNX graph with a free batch dimension (first axis in and out), written
    under a temporary name of its own and renamed when whole (no half file is ever read, by any process)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
            torch.onnx.export(module.eval(), (example,), tmp, input_names=["input"], output_names=["output"],
                              dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, opset_version=17,
                              dynamo=False)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def session(name: str, module: nn.Module, example: torch.Tensor):
    """The ONNX Runtime session of `module` cached as `DLHUB_CACHE/onnx/<name>.onnx` (exported on first use; `name`
    must identify the weights and input shape), shared by every caller in the process; None where it cannot run.
    A graph being built makes only the callers of that graph wait."""
    if not enabled():
        return None
    name = _versioned(name)
    with _LOCK:
        if name in _SESSIONS:
            _SESSIONS.move_to_end(name)
            return _SESSIONS[name]
        building = _BUILDING.setdefault(name, threading.Lock())
    with building:  # one export per graph, however many requests arrive at once
        with _LOCK:
            if name in _SESSIONS:
                return _SESSIONS[name]
        path = CACHE_DIR / "onnx" / f"{name}.onnx"
        made = _new_session(path, module, example)
        with _LOCK:
            _SESSIONS[name] = made
            while len(_SESSIONS) > MAX_SESSIONS:
                _SESSIONS.popitem(last=False)
            _BUILDING.pop(name, None)
            building_now = [CACHE_DIR / "onnx" / f"{n}.onnx" for n in _BUILDING]
        touch(path)  # used now: the last the pruning below removes
        prune_graphs(building_now)
        return made


def prune_graphs(in_use=()) -> None:
    """Keep the graphs folder under MAX_CACHE_BYTES, least recently used first; `in_use`: graphs being written."""
    folder = CACHE_DIR / "onnx"
    if not folder.is_dir():
        return
    remove_stale(folder, ".*.tmp", 3600)  # an export interrupted by a crash
    prune_lru(folder.glob("*.onnx"), MAX_CACHE_BYTES, in_use)


def is_loaded(name: str) -> bool:
    """Whether the graph `name` (as given to `session`) is loaded in ONNX Runtime in this process (it was exported and
    opened; a call that then failed in it fell back to PyTorch with a logged warning): a benchmark's way to tell
    which runtime its timed calls went to."""
    with _LOCK:
        return _SESSIONS.get(_versioned(name)) is not None


def _versioned(name: str) -> str:
    """A graph's name in the session cache and on disk: what `session` was given, with the graph version."""
    return f"{name}-g{GRAPH_VERSION}"


def forward_numpy(model: nn.Module, x: np.ndarray, prefix: str) -> np.ndarray:
    """`model(x)` of a model in eval mode for a float32 NumPy batch, as NumPy: through ONNX Runtime on the CPU where it
    can run, else PyTorch. The graph is named by a digest of the weights and the input shape, so a changed model is
    exported again, never run stale."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    device = next(model.parameters()).device
    if not model.training and device.type == "cpu" and enabled():
        y = run_numpy(f"{prefix}-{weights_digest(model)}-{'x'.join(map(str, x.shape[1:]))}", model, x)
        if y is not None:
            return y
    with torch.no_grad():
        return model(torch.from_numpy(x).to(device)).cpu().numpy()


def run_numpy(name: str, module: nn.Module, x: np.ndarray) -> np.ndarray | None:
    """`module(x)` for a float32 NumPy batch through the graph `session(name, …)` (name: as `session` asks), as NumPy;
    None where ONNX Runtime cannot run it, and the caller runs PyTorch. Only NumPy runs around the graph: a PyTorch op
    beside ONNX Runtime wakes a second thread pool, which on 2 cores costs more than the op."""
    try:
        graph = session(name, module, torch.from_numpy(np.ascontiguousarray(x[:1], dtype=np.float32)))
        return None if graph is None else graph.run(None, {"input": x})[0]
    except Exception as err:  # noqa: BLE001 - ONNX Runtime costs speed when it fails, never the answer
        log.warning("dlhub: ONNX Runtime failed (%s: %s); this call runs in PyTorch", type(err).__name__, err)
        return None


def weights_digest(model: nn.Module) -> str:
    """A digest of every parameter and buffer, recomputed only when one has changed (another tensor, or one changed in
    place: its version; inference tensors, which have no version, are hashed every time)."""
    tensors = [*model.parameters(), *model.buffers()]
    if any(t.is_inference() for t in tensors):
        return _digest(tensors)
    versions = tuple((id(t), t.data_ptr(), t._version) for t in tensors)
    cached = model.__dict__.get("_dlhub_digest")
    if cached is None or cached[0] != versions or any(ref() is not t for ref, t in zip(cached[2], tensors)):
        cached = (versions, _digest(tensors), [weakref.ref(t) for t in tensors])
        model.__dict__["_dlhub_digest"] = cached
    return cached[1]


def _digest(tensors: list[torch.Tensor]) -> str:
    sha = hashlib.sha256()
    for t in tensors:
        sha.update(str(t.dtype).encode())
        sha.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return sha.hexdigest()[:16]


def _new_session(path: Path, module: nn.Module, example: torch.Tensor):
    try:
        import onnxruntime
    except ImportError:
        log.info("dlhub: onnxruntime is not installed; inference runs in PyTorch")
        return None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    for attempt in range(2):  # a file that will not load (left by a crash, another version) is exported again once
        try:
            if attempt or not path.is_file():
                export(module, example, path)
            return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # noqa: BLE001 - an export or runtime that fails costs speed, never the answer
            failure = err
    log.warning("dlhub: ONNX Runtime cannot run %s (%s: %s); inference runs in PyTorch", path.name,
                type(failure).__name__, failure)
    return None


def run(session, x: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(session.run(None, {"input": x.numpy()})[0])
