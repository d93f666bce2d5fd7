"""Hub I/O: the one loading entry (`load`), atomic saving of a model folder, and publishing it.

A model's source is a Hub repo id (`ORG/NAME`, or `ORG/NAME@revision`), a local folder in Hub layout, or None: the
task's configured Hub repo when it can be reached, else the checkpoint bundled in `checkpoints/<task>/`. Which one was
used is logged and kept on the model as `model.source`. A model of another task, or a config.json the task's model class
cannot build, is refused before any weights are read (`WrongTaskError`).

`find_models(task)` lists the task's models on the Hub (tagged `dlhub` and the task, as the train scripts tag them);
`bundled_models(task)` the checkpoints bundled for it.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import os
import re
import shutil
import struct
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from huggingface_hub import HfApi, constants, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HFValidationError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from dlhub.errors import (CheckpointError, DLHubError, HubRepoNotFoundError, HubUnreachableError, ModelNotFoundError,
                          WrongTaskError)
from dlhub.modeling import WEIGHTS_NAME, HubModel
from dlhub.tasks import BUNDLED_DIR, TASKS, Task, get_task

log = logging.getLogger("dlhub")

# A hanging Hub must not hold up the Space's start: give up on it after this many seconds and use the bundled model.
HUB_TIMEOUT_S = float(os.environ.get("DLHUB_HUB_TIMEOUT", "5"))
# Once the Hub has not answered, the default source skips it for this long: five tabs must not wait 5 × the timeout
HUB_RETRY_S = 60.0
_hub_down: dict[str, float] = {}  # endpoint → time.monotonic() until which it is skipped
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
REVISION = re.compile(r"^[\w.-]+(?:/[\w.-]+)*$")  # a branch, tag or commit sha after ORG/NAME@
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


def load(task: str, source: str | os.PathLike | None = None, *, revision: str | None = None,
         progress=None) -> HubModel:
    """Load the model of `task` from a Hub repo id (`ORG/NAME`, `ORG/NAME@revision`), a local folder, or (None) the
    configured repo / bundled copy. `progress(fraction, description)`, when given, hears each step of the load."""
    spec = get_task(task)
    report = progress or (lambda fraction, description: None)
    folder, where, origin = _resolve(spec, source, revision, report)
    report(0.9, f"building the {spec.name} model")
    try:
        model = spec.model_class.from_pretrained(folder)
    except DLHubError:
        raise
    except (TypeError, ValueError, KeyError, RuntimeError) as err:  # settings the model class refuses
        raise CheckpointError(f"{where}: config.json cannot build a {spec.name} model ({type(err).__name__}: "
                              f"{err})") from None
    report(1.0, f"{spec.name} model loaded")
    model.source, model.origin = where, origin
    model.folder = Path(folder)
    if Path(folder) != spec.bundled_dir:  # the bundled fallback was already announced with its reason
        log.info("dlhub: %s model loaded from %s", task, where)
    return model


def read_metrics(model: HubModel) -> dict:
    """The metrics.json saved beside a loaded model's weights ({} when the folder has none)."""
    path = Path(getattr(model, "folder", "")) / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def split_revision(source: str, revision: str | None = None) -> tuple[str, str | None]:
    """"ORG/NAME@revision" → ("ORG/NAME", "revision"); a revision given both ways must agree."""
    repo_id, at, rev = str(source).partition("@")
    if not at:
        return repo_id, revision
    if not REVISION.match(rev) or ".." in rev:
        raise ModelNotFoundError(f"{source}: {rev!r} is not a branch, tag or commit of a Hub repo")
    if revision is not None and revision != rev:
        raise ModelNotFoundError(f"{source} names revision {rev!r}, but revision={revision!r} was passed too")
    return repo_id, rev


def _resolve(spec: Task, source, revision, report) -> tuple[Path, str, ModelOrigin]:
    if source is None:
        return _configured_or_bundled(spec, revision, report)
    path = Path(source).expanduser()
    if path.exists():
        if not (path / WEIGHTS_NAME).is_file():
            raise ModelNotFoundError(f"no {WEIGHTS_NAME} in {path}: pass a folder written by save_pretrained")
        check_folder(spec, path)
        return path, f"local folder {path}", ModelOrigin("local", folder_name=path.resolve().name)
    repo_id, revision = split_revision(str(source), revision)
    if not REPO_ID.match(repo_id):
        raise ModelNotFoundError(f"{source} is neither an existing folder nor a Hub repo id of the form ORG/NAME")
    folder = download(repo_id, revision, task=spec, progress=report)
    return folder, f"Hub repo {repo_id} ({constants.ENDPOINT})", ModelOrigin("hub", repo_id, folder.name)


def _configured_or_bundled(spec: Task, revision, report) -> tuple[Path, str, ModelOrigin]:
    bundled = spec.bundled_dir
    if constants.HF_HUB_OFFLINE:
        reason, kind = "HF_HUB_OFFLINE is set", "offline"
    elif hub_down():
        reason, kind = f"the Hub at {constants.ENDPOINT} did not answer a moment ago", "unreachable"
    else:
        try:
            folder = download(spec.repo_id, revision, task=spec, progress=report)
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


def hub_down() -> bool:
    """True while the Hub at the current endpoint is skipped, having not answered less than HUB_RETRY_S ago."""
    return time.monotonic() < _hub_down.get(constants.ENDPOINT, 0.0)


def download(repo_id: str, revision: str | None = None, *, task: Task | None = None, progress=None) -> Path:
    """Fetch a model repo's weights, config and card into the HF cache; every failure becomes one clear line. With
    `task`, the card's tags and config.json are checked first: another task's model is refused before its weights
    are downloaded."""
    endpoint = constants.ENDPOINT
    report = progress or (lambda fraction, description: None)
    try:
        report(0.05, f"asking the Hub about {repo_id}")
        info = HfApi().model_info(repo_id, revision=revision, timeout=HUB_TIMEOUT_S)
        siblings = {s.rfilename for s in info.siblings or []}
        if WEIGHTS_NAME not in siblings:
            raise ModelNotFoundError(f"Hub repo {repo_id} has no {WEIGHTS_NAME} (it has: {sorted(siblings)})")
        if task is not None:
            config = None
            if "config.json" in siblings:
                report(0.15, f"reading {repo_id}'s config.json")
                config = _read_json(Path(hf_hub_download(repo_id, "config.json", revision=info.sha,
                                                         etag_timeout=HUB_TIMEOUT_S)), f"Hub repo {repo_id}", task)
            card_tags = getattr(info.card_data, "tags", None) or []
            check_task(task, f"Hub repo {repo_id}", config, [*(info.tags or []), *card_tags])
        report(0.3, f"downloading {repo_id} at commit {info.sha[:7]}" if info.sha else f"downloading {repo_id}")
        folder = snapshot_download(
            repo_id, revision=info.sha, allow_patterns=MODEL_FILES, etag_timeout=HUB_TIMEOUT_S
        )
    except DLHubError:
        raise
    except GatedRepoError:
        raise HubRepoNotFoundError(f"Hub repo {repo_id} at {endpoint} is gated: accept its conditions on the Hub "
                                   "with an account whose token this process has") from None
    except (RepositoryNotFoundError, HFValidationError):
        raise HubRepoNotFoundError(f"Hub repo {repo_id} not found at {endpoint} (or it is private and this "
                                   "process has no token that can see it)") from None
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
    """Create `repo_id` if needed and upload the folder (weights, card, plots); returns the repo URL. The card is
    checked first: a card the Hub would misread (a broken model-index, no tags) is refused before anything is sent."""
    from dlhub.cards import check_card
    from dlhub.errors import ModelCardError

    card = Path(folder) / "README.md"
    if not card.is_file():
        raise ModelCardError(f"{folder} has no README.md: the model card is what the Hub and the Space read")
    check_card(card.read_text())
    api = HfApi(token=token)
    url = api.create_repo(repo_id, private=private, exist_ok=True)
    api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message=commit_message)
    return str(url)


# -- which task a model belongs to: read from its card and config.json, before any weights ----------------------------
def _init_parameters(model_class) -> set[str]:
    return {name for name, p in inspect.signature(model_class.__init__).parameters.items()
            if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def _commands_config(config: dict) -> str | None:
    from dlhub.commands import ENCODERS

    encoder = config.get("encoder")
    if encoder is not None and encoder not in ENCODERS:  # the encoder is rebuilt from its name: only known ones
        return f"its encoder {encoder!r} is not one dlhub rebuilds ({', '.join(ENCODERS)})"
    return None


def _landmarks_config(config: dict) -> str | None:
    import timm

    architecture = config.get("architecture")
    if architecture is not None and not (isinstance(architecture, str) and timm.is_model(architecture)):
        return f"its architecture {architecture!r} is not a timm model"
    from dlhub.landmarks import HEADS

    if config.get("head", "pool") not in HEADS:
        return f"its head {config.get('head')!r} is not one dlhub builds ({', '.join(HEADS)})"
    return None


# Settings a model class would only refuse while being built (or worse, fetch from elsewhere): checked up front
CONFIG_CHECKS = {"commands": _commands_config, "landmarks": _landmarks_config}


def check_task(spec: Task, where: str, config, tags) -> None:
    """Refuse a model of another task (its card is tagged `dlhub` and that task) or a config.json that `spec`'s model
    class cannot build (settings it does not take, or values it cannot use), with one WrongTaskError."""
    tags = set(tags or [])
    if "dlhub" in tags and spec.name not in tags:
        others = [name for name in TASKS if name in tags]
        if others:
            raise WrongTaskError(f"{where} is a {others[0]} model, not a {spec.name} model (its card is tagged "
                                 f"{others[0]!r})", task=others[0])
    if config is None:
        raise WrongTaskError(f"{where} has no config.json: a {spec.name} model cannot be built without its settings")
    if not isinstance(config, dict):
        raise WrongTaskError(f"{where}'s config.json is not an object of settings: a {spec.name} model cannot be "
                             "built from it")
    unknown = sorted(set(config) - _init_parameters(spec.model_class))
    if unknown:
        fits = [t.name for t in TASKS.values() if t.name != spec.name and set(config) <= _init_parameters(t.model_class)]
        hint = f": it is a {fits[0]} model's config" if fits else ""
        raise WrongTaskError(f"{where}'s config.json does not describe a {spec.name} model (settings {unknown} are "
                             f"not {spec.model_class.__name__}'s){hint}", task=fits[0] if fits else None)
    problem = CONFIG_CHECKS.get(spec.name, lambda c: None)(config)
    if problem:
        raise WrongTaskError(f"{where}'s config.json cannot build a {spec.name} model: {problem}")


def _read_json(path: Path, where: str, spec: Task):
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise WrongTaskError(f"{where}'s config.json cannot be read ({type(err).__name__}): a {spec.name} model "
                             "cannot be built from it") from None


def card_metadata(folder: Path) -> dict:
    """The YAML header of a folder's model card (README.md); {} when there is none or it does not parse."""
    from huggingface_hub.repocard import metadata_load

    try:
        return metadata_load(Path(folder) / "README.md") or {}
    except Exception:  # a card that does not parse says nothing about the task; config.json is still checked
        return {}


def check_folder(spec: Task, folder: Path) -> None:
    """check_task for a local folder in Hub layout (its README.md's tags and its config.json)."""
    where = f"the folder {folder}"
    config = _read_json(folder / "config.json", where, spec) if (folder / "config.json").is_file() else None
    check_task(spec, where, config, card_metadata(folder).get("tags"))


# -- the models of a task: bundled with the project, and on the Hub ----------------------------------------------------
@dataclass(frozen=True)
class EvalRow:
    """One result of a card's model-index."""

    metric: str
    dataset: str
    split: str | None
    value: float


@dataclass(frozen=True)
class ListedModel:
    """A model of a task as a listing shows it: `repo_id` (Hub) or `folder` (bundled), the card's model-index results,
    the parameter count (every tensor in model.safetensors, as the Hub counts it), and what the Hub says of it."""

    task: str
    repo_id: str | None = None
    folder: Path | None = None
    results: tuple[EvalRow, ...] = ()
    parameters: int | None = None
    last_modified: datetime | None = None
    downloads: int | None = None
    likes: int | None = None
    url: str | None = None


# What the listing asks of the Hub for each model (list_models' `expand`: only these fields come back)
LIST_FIELDS = ["cardData", "safetensors", "lastModified", "downloads", "likes", "tags"]


def _eval_rows(card_data) -> tuple[EvalRow, ...]:
    rows = []
    for r in getattr(card_data, "eval_results", None) or []:
        try:
            value = float(r.metric_value)
        except (TypeError, ValueError):
            continue
        rows.append(EvalRow(r.metric_name or r.metric_type, r.dataset_name, r.dataset_split, value))
    return tuple(rows)


def count_parameters(weights_file: Path) -> int | None:
    """The number of values in a safetensors file, read from its header alone (no tensor is loaded)."""
    try:
        with open(weights_file, "rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(size))
        return sum(math.prod(v["shape"]) for k, v in header.items() if k != "__metadata__")
    except (OSError, struct.error, ValueError, KeyError, TypeError):
        return None


def bundled_folders(task: str) -> list[Path]:
    """The checkpoints bundled for `task`: `checkpoints/<task>/`, then any other bundled folder whose card is tagged
    `dlhub` and the task (a course baseline, e.g. `checkpoints/denoiser-mlp/`)."""
    spec = get_task(task)
    found = [spec.bundled_dir] if (spec.bundled_dir / WEIGHTS_NAME).is_file() else []
    if BUNDLED_DIR.is_dir():
        for folder in sorted(BUNDLED_DIR.iterdir()):
            if folder == spec.bundled_dir or not (folder / WEIGHTS_NAME).is_file():
                continue
            tags = set(card_metadata(folder).get("tags") or [])
            if {"dlhub", spec.name} <= tags:
                found.append(folder)
    return found


def bundled_models(task: str) -> list[ListedModel]:
    """The bundled checkpoints of `task` as listed models: their cards' results, parameters, when they were written,
    and a link to the Hub repo their card names."""
    from huggingface_hub import ModelCardData

    listed = []
    for folder in bundled_folders(task):
        meta = card_metadata(folder)
        try:
            data = ModelCardData(**meta, ignore_metadata_errors=True)
        except Exception:  # a card the Hub could not read either: the row still shows the model
            data = None
        name = meta.get("model_name") or (meta.get("model-index") or [{}])[0].get("name")
        weights = folder / WEIGHTS_NAME
        listed.append(ListedModel(
            task=task, folder=folder, results=_eval_rows(data), parameters=count_parameters(weights),
            last_modified=datetime.fromtimestamp(weights.stat().st_mtime, timezone.utc),
            url=f"https://huggingface.co/{name}" if isinstance(name, str) and REPO_ID.match(name) else None))
    return listed


def find_models(task: str, *, search: str | None = None, author: str | None = None, limit: int = 100,
                timeout: float | None = None) -> list[ListedModel]:
    """The task's models on the Hub: those tagged `dlhub` and the task (what the train scripts write), with their
    cards' results, parameters, last change, downloads and likes. The Hub gets `timeout` seconds (HUB_TIMEOUT_S) in
    all; one that does not answer in time raises HubUnreachableError and is skipped for HUB_RETRY_S, as by `load`."""
    spec = get_task(task)
    endpoint = constants.ENDPOINT
    timeout = HUB_TIMEOUT_S if timeout is None else timeout
    if constants.HF_HUB_OFFLINE:
        raise HubUnreachableError("HF_HUB_OFFLINE is set")
    if hub_down():
        raise HubUnreachableError(f"the Hub at {endpoint} did not answer a moment ago")
    outcome: dict = {}

    def fetch() -> None:  # list_models has no timeout of its own, and retries: it runs apart, given `timeout`
        try:
            outcome["models"] = list(HfApi(endpoint=endpoint).list_models(
                filter=["dlhub", spec.name], search=search, author=author, expand=LIST_FIELDS, limit=limit))
        except Exception as err:  # noqa: BLE001  (reported below, in the caller's thread)
            outcome["error"] = err

    worker = threading.Thread(target=fetch, name=f"dlhub-list-{spec.name}", daemon=True)
    worker.start()
    worker.join(timeout)
    if "models" not in outcome:
        err = outcome.get("error")
        _hub_down[endpoint] = time.monotonic() + HUB_RETRY_S
        why = f"{type(err).__name__}" if err is not None else f"no answer in {timeout:g} s"
        raise HubUnreachableError(f"could not list the {spec.name} models on the Hub at {endpoint} ({why})")
    listed = []
    for m in outcome["models"]:
        total = getattr(m.safetensors, "total", None) if m.safetensors is not None else None
        listed.append(ListedModel(task=spec.name, repo_id=m.id, results=_eval_rows(m.card_data), parameters=total,
                                  last_modified=m.last_modified, downloads=m.downloads, likes=m.likes,
                                  url=f"{endpoint.rstrip('/')}/{m.id}"))
    return listed
