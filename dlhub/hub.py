"""Hub I/O: the one loading entry (`load`), atomic saving of a model folder, and publishing it.

A model's source is a Hub repo id (`ORG/NAME`, or `ORG/NAME@revision`), a local folder in Hub layout, or None: the
task's configured Hub repo when it can be reached, else the checkpoint bundled in `checkpoints/<task>/`. Which one was
used is logged and kept on the model as `model.source`. A model of another task, or a config.json the task's model class
cannot build, is refused before any weights are read (`WrongTaskError`).

`find_models(task)` lists the task's models on the Hub (tagged `dlhub` and the task, as the train scripts tag them);
`bundled_models(task)` the checkpoints bundled for it.

What a model from elsewhere may cost is checked before it costs it: a Hub repo's files are added up from its file list
before any download (DLHUB_MAX_MODEL_MB, default 300), config.json's values are bounded, and the model is built on
PyTorch's meta device (no memory) to count its parameters before it is built for real (DLHUB_MAX_PARAMETERS, default
100 million). A download that takes longer than DLHUB_DOWNLOAD_TIMEOUT seconds (default 300) is given up.
"""

from __future__ import annotations

import fnmatch
import inspect
import itertools
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

from huggingface_hub import HfApi, constants, hf_hub_download
from huggingface_hub.utils import tqdm as hf_tqdm
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HFValidationError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from dlhub.cache import MB, megabytes_setting
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
MAX_MODEL_BYTES = megabytes_setting("DLHUB_MAX_MODEL_MB", 300)  # a Hub repo's model files, in all
MAX_PARAMETERS = int(float(os.environ.get("DLHUB_MAX_PARAMETERS") or 100e6))  # parameters and buffers of one model
DOWNLOAD_TIMEOUT_S = float(os.environ.get("DLHUB_DOWNLOAD_TIMEOUT") or 300)  # one repo's download, in all
MAX_CONFIG_BYTES = 64 * 1024  # config.json holds settings and label names: a few kB


class ModelTooLargeError(CheckpointError):
    """A model over a size cap (its files, or its parameters counted before it is built). `short` says what and the
    cap in a few words ("2.1 MB of files; the cap is 1 MB")."""

    def __init__(self, message: str, short: str):
        super().__init__(message)
        self.short = short


class DownloadTimeoutError(ModelNotFoundError):
    """A download that did not finish in DOWNLOAD_TIMEOUT_S (the Hub answers, slowly): given up, the Hub not skipped."""


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
         progress=None, token: str | bool | None = None, cache_dir: str | os.PathLike | None = None,
         max_bytes: int | None = None, max_parameters: int | None = None, local_folders: bool = True,
         timeout_s: float | None = None) -> HubModel:
    """Load the model of `task` from a Hub repo id (`ORG/NAME`, `ORG/NAME@revision`), a local folder, or (None) the
    configured repo / bundled copy. `progress(fraction, description)`, when given, hears each step of the load.

    `token` is the Hub token for the repo (False: none, not even this machine's); `cache_dir` where downloads go (the
    HF cache by default); `max_bytes` caps a Hub repo's model files (MAX_MODEL_BYTES), `max_parameters` the model's
    parameters, counted before it is built (MAX_PARAMETERS), `timeout_s` a download (DOWNLOAD_TIMEOUT_S). With
    `local_folders=False` a string is only ever a Hub repo id, never looked up on this machine's disk."""
    spec = get_task(task)
    report = progress or (lambda fraction, description: None)
    fetch = dict(token=token, cache_dir=cache_dir, max_bytes=max_bytes, max_parameters=max_parameters,
                 timeout_s=timeout_s)
    folder, where, origin = _resolve(spec, source, revision, report, fetch, local_folders)
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


def _resolve(spec: Task, source, revision, report, fetch: dict, local_folders: bool) -> tuple[Path, str, ModelOrigin]:
    if source is None:
        return _configured_or_bundled(spec, revision, report, fetch)
    path = Path(source).expanduser()
    if (local_folders or isinstance(source, os.PathLike)) and path.exists():
        if not (path / WEIGHTS_NAME).is_file():
            raise ModelNotFoundError(f"no {WEIGHTS_NAME} in {path}: pass a folder written by save_pretrained")
        config = check_folder(spec, path)
        check_parameters(spec, f"the folder {path}", config, fetch["max_parameters"])
        return path, f"local folder {path}", ModelOrigin("local", folder_name=path.resolve().name)
    repo_id, revision = split_revision(str(source), revision)
    if not REPO_ID.match(repo_id):
        what = "an existing folder nor a Hub repo id" if local_folders else "a Hub repo id"
        raise ModelNotFoundError(f"{str(source)[:200]} is neither {what} of the form ORG/NAME")
    folder = download(repo_id, revision, task=spec, progress=report, **fetch)
    return folder, f"Hub repo {repo_id} ({constants.ENDPOINT})", ModelOrigin("hub", repo_id, folder.name)


def _configured_or_bundled(spec: Task, revision, report, fetch: dict) -> tuple[Path, str, ModelOrigin]:
    bundled = spec.bundled_dir
    if constants.HF_HUB_OFFLINE:
        reason, kind = "HF_HUB_OFFLINE is set", "offline"
    elif hub_down():
        reason, kind = f"the Hub at {constants.ENDPOINT} did not answer a moment ago", "unreachable"
    else:
        try:
            folder = download(spec.repo_id, revision, task=spec, progress=report, **fetch)
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


def megabytes(size: int) -> str:
    return f"{size / MB:.1f} MB" if size < 10 * MB else f"{size / MB:.0f} MB"


class _DeadlineBar(hf_tqdm):
    """huggingface_hub's progress bar for one file, which gives the download up once past `deadline` (a monotonic
    time): the one hook in the byte loop of a download (its own timeout is per read, so a slow drip never ends)."""

    deadline = math.inf

    def update(self, n=1):
        if time.monotonic() > self.deadline:
            raise DownloadTimeoutError("the download took too long")
        return super().update(n)


def download(repo_id: str, revision: str | None = None, *, task: Task | None = None, progress=None,
             token: str | bool | None = None, cache_dir: str | os.PathLike | None = None,
             max_bytes: int | None = None, max_parameters: int | None = None,
             timeout_s: float | None = None) -> Path:
    """Fetch a model repo's weights, config and card into the HF cache (or `cache_dir`); every failure becomes one
    clear line. The repo's file list comes first: model files over `max_bytes` in all are refused before any
    download. With `task`, the card's tags and config.json are checked next, and the model's parameters counted on
    the meta device: another task's model, or one over `max_parameters`, is refused before its weights are
    downloaded. Downloads stop after `timeout_s` seconds in all."""
    endpoint = constants.ENDPOINT
    report = progress or (lambda fraction, description: None)
    max_bytes = MAX_MODEL_BYTES if max_bytes is None else max_bytes
    timeout_s = DOWNLOAD_TIMEOUT_S if timeout_s is None else timeout_s
    bar = type("DeadlineBar", (_DeadlineBar,), {"deadline": time.monotonic() + timeout_s})
    hub = dict(token=token, cache_dir=cache_dir, etag_timeout=HUB_TIMEOUT_S, tqdm_class=bar)
    try:
        report(0.05, f"asking the Hub about {repo_id}")
        info = HfApi().model_info(repo_id, revision=revision, timeout=HUB_TIMEOUT_S, files_metadata=True, token=token)
        sizes = {s.rfilename: s.size for s in info.siblings or []}
        if WEIGHTS_NAME not in sizes:
            shown = sorted(sizes)[:10] + (["…"] if len(sizes) > 10 else [])
            raise ModelNotFoundError(f"Hub repo {repo_id} has no {WEIGHTS_NAME} (it has: {shown})")
        wanted = sorted(f for f in sizes if any(fnmatch.fnmatch(f, p) for p in MODEL_FILES))
        if any(sizes[f] is None for f in wanted):
            raise ModelTooLargeError(f"the Hub did not say how large Hub repo {repo_id}'s files are: it is not "
                                     "downloaded", "its size is unknown")
        total = sum(sizes[f] for f in wanted)
        if total > max_bytes:
            raise ModelTooLargeError(
                f"Hub repo {repo_id} holds {megabytes(total)} of model files, over the {megabytes(max_bytes)} "
                "dlhub downloads (DLHUB_MAX_MODEL_MB): nothing was downloaded",
                f"{megabytes(total)} of files; the cap is {megabytes(max_bytes)}")
        if task is not None:
            config = None
            if "config.json" in sizes:
                if sizes["config.json"] > MAX_CONFIG_BYTES:
                    raise WrongTaskError(f"Hub repo {repo_id}'s config.json is {megabytes(sizes['config.json'])}: "
                                         f"settings take a few kB, not a {task.name} model's config")
                report(0.15, f"reading {repo_id}'s config.json")
                config = _read_json(Path(hf_hub_download(repo_id, "config.json", revision=info.sha, **hub)),
                                    f"Hub repo {repo_id}", task)
            card_tags = getattr(info.card_data, "tags", None) or []
            check_task(task, f"Hub repo {repo_id}", config, [*(info.tags or []), *card_tags])
            check_parameters(task, f"Hub repo {repo_id}", config, max_parameters)
        report(0.3, f"downloading {repo_id} at commit {info.sha[:7]}" if info.sha else f"downloading {repo_id}")
        folder = None
        for name in [WEIGHTS_NAME, *(f for f in wanted if f != WEIGHTS_NAME)]:
            path = Path(hf_hub_download(repo_id, name, revision=info.sha, **hub))
            folder = folder or path.parent  # the weights sit at the snapshot's root
    except DownloadTimeoutError:
        raise DownloadTimeoutError(f"Hub repo {repo_id} did not download in {timeout_s:g} s "
                                   "(DLHUB_DOWNLOAD_TIMEOUT)") from None
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
    return folder


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


def _within(value, low: float, high: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high


def _signs_size(config: dict) -> str | None:
    if not _within(config.get("input_size", 40), 8, 512):
        return f"its input_size {config.get('input_size')!r} is not from 8 to 512 px"
    return None


def _denoiser_size(config: dict) -> str | None:
    if not _within(config.get("image_size", 64), 8, 512):
        return f"its image_size {config.get('image_size')!r} is not from 8 to 512 px"
    return None


def _landmarks_size(config: dict) -> str | None:
    cfg = config.get("pretrained_cfg") or {}
    size = cfg.get("input_size", [3, 224, 224]) if isinstance(cfg, dict) else None
    if not (isinstance(size, list) and size and _within(size[-1], 32, 1024)):
        return f"its input_size {size!r} is not from 32 to 1024 px"
    return None


def _commands_size(config: dict) -> str | None:
    clip_s, pad_s = config.get("clip_s", 1.0), config.get("pad_s", 0.4)
    if not (_within(clip_s, 0.1, 30) and _within(pad_s, 0, 30) and clip_s + pad_s <= 30):
        return f"its clip_s {clip_s!r} and pad_s {pad_s!r} are not a window of at most 30 s (Whisper's)"
    layers = config.get("layers", [])
    if not (isinstance(layers, list) and all(_within(i, 0, 64) and int(i) == i for i in layers)):
        return f"its layers {layers!r} are not layer numbers of the encoder"
    return None


# Settings a model class would only refuse while being built (or worse, fetch from elsewhere), and sizes that would
# cost memory or time at every answer rather than once when built: checked up front
CONFIG_CHECKS = {"commands": [_commands_config, _commands_size], "landmarks": [_landmarks_config, _landmarks_size],
                 "signs": [_signs_size], "denoiser": [_denoiser_size]}
# config.json holds settings, label names and short lists: anything larger is refused before the model is built
MAX_CONFIG_NUMBER, MAX_CONFIG_ITEMS, MAX_CONFIG_TEXT, MAX_CONFIG_DEPTH = 1_000_000, 256, 256, 4


def config_problem(value, depth: int = 0) -> str | None:
    """What in a config.json value is out of bounds (None when all is): numbers up to MAX_CONFIG_NUMBER in size,
    lists and objects of up to MAX_CONFIG_ITEMS, texts of up to MAX_CONFIG_TEXT characters, nested MAX_CONFIG_DEPTH
    deep."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        ok = math.isfinite(value) and abs(value) <= MAX_CONFIG_NUMBER
        return None if ok else f"the number {value:.6g} (settings are at most {MAX_CONFIG_NUMBER:,})"
    if isinstance(value, str):
        return None if len(value) <= MAX_CONFIG_TEXT else f"a text of {len(value):,} characters"
    if depth >= MAX_CONFIG_DEPTH:
        return f"values nested over {MAX_CONFIG_DEPTH} deep"
    items = list(value.values()) if isinstance(value, dict) else value if isinstance(value, list) else None
    if items is None:
        return f"a value of type {type(value).__name__}"
    if len(items) > MAX_CONFIG_ITEMS:
        return f"a list of {len(items):,} items (at most {MAX_CONFIG_ITEMS})"
    return next((p for p in (config_problem(v, depth + 1) for v in items) if p), None)


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
    bounds = config_problem(config)
    if bounds:
        raise WrongTaskError(f"{where}'s config.json holds {bounds}: not the settings of a {spec.name} model")
    unknown = sorted(set(config) - _init_parameters(spec.model_class))
    if unknown:
        fits = [t.name for t in TASKS.values() if t.name != spec.name and set(config) <= _init_parameters(t.model_class)]
        hint = f": it is a {fits[0]} model's config" if fits else ""
        raise WrongTaskError(f"{where}'s config.json does not describe a {spec.name} model (settings {unknown} are "
                             f"not {spec.model_class.__name__}'s){hint}", task=fits[0] if fits else None)
    for check in CONFIG_CHECKS.get(spec.name, []):
        problem = check(config)
        if problem:
            raise WrongTaskError(f"{where}'s config.json cannot build a {spec.name} model: {problem}")


def check_parameters(spec: Task, where: str, config: dict, max_parameters: int | None = None) -> int:
    """The parameters and buffers of the model `config` builds, counted on PyTorch's meta device (shapes, no memory)
    before it is built for real; over `max_parameters` (MAX_PARAMETERS) is one ModelTooLargeError."""
    import torch

    limit = MAX_PARAMETERS if max_parameters is None else max_parameters
    try:
        with torch.device("meta"):  # thread-local: other threads' tensors are real meanwhile
            model = spec.model_class(**config)
    except DLHubError:
        raise
    except Exception as err:  # noqa: BLE001 - whatever a model class raises on settings it cannot use
        raise CheckpointError(f"{where}: config.json cannot build a {spec.name} model ({type(err).__name__}: "
                              f"{str(err)[:200]})") from None
    count = sum(t.numel() for t in itertools.chain(model.parameters(), model.buffers()))
    if count > limit:
        raise ModelTooLargeError(f"{where}'s config.json builds a {spec.name} model of {count:,} parameters, over "
                                 f"the {limit:,} dlhub builds (DLHUB_MAX_PARAMETERS): it was not built",
                                 f"{count:,} parameters; the cap is {limit:,}")
    return count


def _read_json(path: Path, where: str, spec: Task):
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise WrongTaskError(f"{where}'s config.json is {megabytes(path.stat().st_size)}: settings take a few kB, "
                                 f"not a {spec.name} model's config")
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


def check_folder(spec: Task, folder: Path) -> dict:
    """check_task for a local folder in Hub layout (its README.md's tags and its config.json); the config."""
    where = f"the folder {folder}"
    config = _read_json(folder / "config.json", where, spec) if (folder / "config.json").is_file() else None
    check_task(spec, where, config, card_metadata(folder).get("tags"))
    return config


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
                timeout: float | None = None, token: str | bool | None = None) -> list[ListedModel]:
    """The task's models on the Hub: those tagged `dlhub` and the task (what the train scripts write), with their
    cards' results, parameters, last change, downloads and likes. The Hub gets `timeout` seconds (HUB_TIMEOUT_S) in
    all; one that does not answer in time raises HubUnreachableError and is skipped for HUB_RETRY_S, as by `load`.
    `token` as for `load` (False: the public models only)."""
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
            outcome["models"] = list(HfApi(endpoint=endpoint, token=token).list_models(
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
