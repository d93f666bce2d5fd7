"""Where dlhub keeps what it derives once (converted pretrained weights, decoded images, encoder features; DLHUB_CACHE
to move it), and the one way it is kept: safetensors written atomically."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

CACHE_DIR = Path(os.environ.get("DLHUB_CACHE", Path.home() / ".cache" / "dlhub"))


def cached_tensors(path: str | os.PathLike | None, compute: Callable[[], dict]) -> dict:
    """The tensors saved at `path`, else `compute()` saved there first (`path` None: computed, not kept).

    The file is written under a temporary name of this process and renamed: a crash never leaves half a file, and
    data-parallel processes computing the same file at once (they share a seed, so no random names) never collide."""
    import safetensors.torch

    if path is not None and Path(path).is_file():
        return safetensors.torch.load_file(str(path))
    tensors = compute()
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        safetensors.torch.save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp))
        tmp.replace(path)
    return tensors
