"""Where dlhub keeps what it derives once (converted pretrained weights, decoded images, encoder features; DLHUB_CACHE
to move it), the one way it is kept (safetensors written atomically), and the one way a cache is kept small:
`prune_lru`, least recently used first, in bytes."""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path

CACHE_DIR = Path(os.environ.get("DLHUB_CACHE", Path.home() / ".cache" / "dlhub"))
MB = 1024 * 1024
log = logging.getLogger("dlhub")


def megabytes_setting(name: str, default: float) -> int:
    """A size setting given in MB (an environment variable; fractions allowed), in bytes."""
    try:
        return max(0, int(float(os.environ.get(name) or default) * MB))
    except ValueError:
        log.warning("dlhub: %s=%r is not a number of MB; using %g", name, os.environ[name], default)
        return int(default * MB)


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


def touch(path: str | os.PathLike) -> None:
    """Mark a cache entry as just used (its modification time is what `prune_lru` orders by)."""
    try:
        os.utime(path)
    except OSError:
        pass


def disk_bytes(path: Path) -> int:
    """Bytes a file or folder holds (links counted as links: a Hub snapshot's links to its blobs count once)."""
    try:
        if not path.is_dir() or path.is_symlink():
            return path.lstat().st_size
        total = 0
        for root, _, files in os.walk(path):
            for name in files:
                try:
                    total += os.lstat(os.path.join(root, name)).st_size
                except OSError:
                    pass
        return total
    except OSError:
        return 0


def _holds(entry: Path, other: Path) -> bool:
    return entry == other or entry in other.parents or other in entry.parents


def prune_lru(entries: Iterable[Path], max_bytes: int, in_use: Iterable[Path] = ()) -> list[Path]:
    """Delete the least recently used of `entries` (files or folders; last use = modification time, see `touch`)
    until they hold at most `max_bytes` in all. An entry in use (equal to, inside, or holding a path of `in_use`) is
    never deleted, even when that leaves the entries over the cap. Returns what was deleted."""
    busy = [Path(os.path.abspath(p)) for p in in_use]
    sized = []
    for entry in entries:
        entry = Path(os.path.abspath(entry))
        try:
            used = entry.lstat().st_mtime
        except OSError:  # deleted meanwhile (another process pruning)
            continue
        sized.append((used, entry, disk_bytes(entry)))
    total = sum(size for _, _, size in sized)
    deleted = []
    for _, entry, size in sorted(sized, key=lambda t: t[0]):
        if total <= max_bytes:
            break
        if any(_holds(entry, b) for b in busy):
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except FileNotFoundError:
            pass
        except OSError as err:  # kept, and said: the cap is then not met
            log.warning("dlhub: could not remove %s from the cache (%s)", entry, err)
            continue
        total -= size
        deleted.append(entry)
    if deleted:
        log.info("dlhub: removed %d least recently used cache entries (%s) to stay under %.0f MB",
                 len(deleted), ", ".join(e.name for e in deleted[:5]) + (" …" if len(deleted) > 5 else ""),
                 max_bytes / MB)
    return deleted


def remove_stale(folder: Path, pattern: str, max_age_s: float) -> None:
    """Delete files matching `pattern` in `folder` last changed more than `max_age_s` ago (left by a crash)."""
    now = time.time()
    for path in folder.glob(pattern):
        try:
            if now - path.lstat().st_mtime > max_age_s:
                path.unlink()
        except OSError:
            pass
