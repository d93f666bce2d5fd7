"""Hub I/O: the one loading entry (`load`), atomic saving of a model folder, and publishing it.

A model's source is a Hub repo id, a local folder in Hub layout, or None: the task's configured Hub repo when it can
be reached, else the checkpoint bundled in `checkpoints/<task>/`. Which one was used is logged and kept on the model
as `model.source`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import HfApi, constants, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HFValidationError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from dlhub.errors import DLHubError, HubRepoNotFoundError, HubUnreachableError, ModelNotFoundError
from dlhub.modeling import WEIGHTS_NAME, HubModel
from dlhub.tasks import Task, get_task

log = logging.getLogger("dlhub")

# A hanging Hub must not hold up the Space's start: give up on it after this many seconds and use the bundled model.
HUB_TIMEOUT_S = float(os.environ.get("DLHUB_HUB_TIMEOUT", "5"))
# Once the Hub has not answered, the default source skips it for this long: five tabs must not wait 5 × the timeout
HUB_RETRY_S = 60.0
_hub_down: dict[str, float] = {}  # endpoint → time.monotonic() until which it is skipped
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
MODEL_FILES = ["*.safetensors", "*.json", "README.md", "*.png"]  # the plots are small; the Space shows them


@dataclass(frozen=True)
class ModelOrigin:
    """Where a loaded model came from, for people: kind "hub" (repo_id, commit), "local" (folder_name) or "bundled"
    (reason the Hub was not used: "offline", "unreachable", "missing" or "unusable")."""

    kind: str
    repo_id: str | None = None
    commit: str | None = None
    folder_name: str | None = None
    reason: str | None = None


def load(task: str, source: str | os.PathLike | None = None, *, revision: str | None = None) -> HubModel:
    """Load the model of `task` from a Hub repo id, a local folder, or (None) the configured repo / bundled copy."""
    spec = get_task(task)
    folder, where, origin = _resolve(spec, source, revision)
    model = spec.model_class.from_pretrained(folder)
    model.source, model.origin = where, origin
    model.folder = Path(folder)
    if Path(folder) != spec.bundled_dir:  # the bundled fallback was already announced with its reason
        log.info("dlhub: %s model loaded from %s", task, where)
    return model


def read_metrics(model: HubModel) -> dict:
    """The metrics.json saved beside a loaded model's weights ({} when the folder has none)."""
    path = Path(getattr(model, "folder", "")) / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _resolve(spec: Task, source, revision) -> tuple[Path, str, ModelOrigin]:
    if source is None:
        return _configured_or_bundled(spec, revision)
    path = Path(source).expanduser()
    if path.exists():
        if not (path / WEIGHTS_NAME).is_file():
            raise ModelNotFoundError(f"no {WEIGHTS_NAME} in {path}: pass a folder written by save_pretrained")
        return path, f"local folder {path}", ModelOrigin("local", folder_name=path.resolve().name)
    if not REPO_ID.match(str(source)):
        raise ModelNotFoundError(f"{source} is neither an existing folder nor a Hub repo id of the form ORG/NAME")
    folder = download(str(source), revision)
    return folder, f"Hub repo {source} ({constants.ENDPOINT})", ModelOrigin("hub", str(source), folder.name)


def _configured_or_bundled(spec: Task, revision) -> tuple[Path, str, ModelOrigin]:
    bundled = spec.bundled_dir
    if constants.HF_HUB_OFFLINE:
        reason, kind = "HF_HUB_OFFLINE is set", "offline"
    elif time.monotonic() < _hub_down.get(constants.ENDPOINT, 0.0):
        reason, kind = f"the Hub at {constants.ENDPOINT} did not answer a moment ago", "unreachable"
    else:
        try:
            folder = download(spec.repo_id, revision)
            return (folder, f"Hub repo {spec.repo_id} ({constants.ENDPOINT})",
                    ModelOrigin("hub", spec.repo_id, folder.name))
        except HubUnreachableError as err:
            reason, kind = str(err), "unreachable"
        except HubRepoNotFoundError as err:
            reason, kind = str(err), "missing"
        except DLHubError as err:
            reason, kind = str(err), "unusable"
    if not (bundled / WEIGHTS_NAME).is_file():
        raise ModelNotFoundError(
            f"no {spec.name} model: the Hub repo {spec.repo_id} could not be used ({reason}) and there is no "
            f"bundled {bundled / WEIGHTS_NAME}"
        )
    log.warning("dlhub: %s: using the bundled checkpoint %s (Hub repo %s: %s)",
                spec.name, bundled, spec.repo_id, reason)
    return (bundled, f"bundled checkpoint {bundled} (Hub repo {spec.repo_id}: {reason})",
            ModelOrigin("bundled", spec.repo_id, reason=kind))


def download(repo_id: str, revision: str | None = None) -> Path:
    """Fetch a model repo's weights, config and card into the HF cache; every failure becomes one clear line."""
    endpoint = constants.ENDPOINT
    try:
        info = HfApi().model_info(repo_id, revision=revision, timeout=HUB_TIMEOUT_S)
        siblings = {s.rfilename for s in info.siblings or []}
        if WEIGHTS_NAME not in siblings:
            raise ModelNotFoundError(f"Hub repo {repo_id} has no {WEIGHTS_NAME} (it has: {sorted(siblings)})")
        folder = snapshot_download(
            repo_id, revision=info.sha, allow_patterns=MODEL_FILES, etag_timeout=HUB_TIMEOUT_S
        )
    except DLHubError:
        raise
    except (RepositoryNotFoundError, HFValidationError):
        raise HubRepoNotFoundError(f"Hub repo {repo_id} not found at {endpoint}") from None
    except RevisionNotFoundError:
        raise ModelNotFoundError(f"Hub repo {repo_id} has no revision {revision!r}") from None
    except EntryNotFoundError as err:
        raise ModelNotFoundError(f"Hub repo {repo_id} is missing a file: {err}") from None
    except Exception as err:  # connection refused, timeouts, DNS, HTTP 5xx: the Hub cannot be used now
        _hub_down[endpoint] = time.monotonic() + HUB_RETRY_S
        raise HubUnreachableError(
            f"could not reach the Hub at {endpoint} for {repo_id} ({type(err).__name__}); "
            "pass a local folder, or set HF_ENDPOINT / HF_HUB_OFFLINE=1"
        ) from None
    return Path(folder)


def write_folder_atomically(folder: str | os.PathLike, write) -> Path:
    """Call `write(tmp_dir)`, then swap tmp_dir into place, so a crash never leaves a half-written model folder."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        write(tmp)
        for path in [tmp, *tmp.rglob("*")]:  # mkdtemp makes 0700: publish with ordinary permissions
            path.chmod(0o755 if path.is_dir() else 0o644)
        old = folder.with_name(f".{folder.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if folder.exists():
            folder.rename(old)
        tmp.rename(folder)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def save_model_folder(model: HubModel, folder, *, card, metrics: dict, figures: dict | None = None) -> Path:
    """Write weights, config.json, README.md (the card), metrics.json and PNG figures, atomically."""

    def write(tmp: Path) -> None:
        card.save(tmp / "README.md")  # written first: save_pretrained keeps an existing README.md
        model.save_pretrained(tmp)
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
        for name, fig in (figures or {}).items():
            fig.savefig(tmp / name, dpi=110, bbox_inches="tight")

    return write_folder_atomically(folder, write)


def push_folder(folder, repo_id: str, *, private: bool = False, token: str | None = None,
                commit_message: str = "Upload model trained with dlhub") -> str:
    """Create `repo_id` if needed and upload the folder (weights, card, plots); returns the repo URL."""
    api = HfApi(token=token)
    url = api.create_repo(repo_id, private=private, exist_ok=True)
    api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message=commit_message)
    return str(url)
