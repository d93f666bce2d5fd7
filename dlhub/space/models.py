"""Choosing the model in each model tab, the models kept loaded, and the "Models" tab.

Each model tab has a `ModelChoice`: a dropdown of the task's known models (the tab's default, the bundled checkpoints,
the folders this Space offers, the configured Hub repo, the task's models found on the Hub) and a field for any
`ORG/NAME` or `ORG/NAME@revision`. The tab's endpoints take the choice as their last, optional parameter `model`
("default" when left out), and their answers say which model and commit answered. Models are loaded by
`dlhub.load(task, source)` into a small least-recently-used cache per task; a model of another task, a missing repo or
a Hub that does not answer is one message, and the tab keeps its model.

What a visitor may choose is bounded. A folder on the server only when it is bundled or named in
DLHUB_SPACE_MODEL_DIRS (its name is shown, never its path). A Hub repo is read without this Space's token (unless it
is one of the Space's own repos), within dlhub's caps on its files and parameters, by a few background workers: a
request waits LOAD_WAIT_S for it and then says to try again while the download goes on. Downloads go to their own
folder, kept under DLHUB_HUB_CACHE_MB (the least recently used repos removed first, never a model in use).

The "Models" tab lists each task's models (the bundled ones and those the Hub has, tagged `dlhub` and the task) with
their cards' results, shown as text, never as the card's Markdown; results are marked as measured by the project (the
bundled models', and those in the project's own organisation) or reported by the uploader, and those reported never
rank above those measured. Choosing a row opens that model in its tab. The Hub's listing is kept a few minutes.
"""

from __future__ import annotations

import functools
import os
import re
import tempfile
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

import dlhub
from dlhub import audio, onnx
from dlhub.cache import MB, megabytes_setting, prune_lru, touch
from dlhub.data.task1 import MAX_NPZ_BYTES
from dlhub.errors import DLHubError, HubRepoNotFoundError, HubUnreachableError, WrongTaskError
from dlhub.hub import (DOWNLOAD_TIMEOUT_S, HUB_TIMEOUT_S, MAX_MODEL_BYTES, MAX_PARAMETERS, REPO_ID,
                       DownloadTimeoutError, ListedModel, ModelTooLargeError, bundled_folders, bundled_models,
                       check_folder, find_models, hub_down, read_metrics)
from dlhub.modeling import MAX_PIXELS, WEIGHTS_NAME
from dlhub.tasks import BUNDLED_DIR, TASKS, bundled_repo_names, get_task, hub_org
from dlhub.space.common import MAX_UPLOAD_MB, OUTPUT_MAX_BYTES, handler, log, model_line, user_error, without_paths

TITLE = "Models"
DEFAULT, BUNDLED, FOLDER = "default", "bundled", "folder"
# Models kept loaded per task (benchmarks/model_cache.py measures the memory of three per task: MODEL_CACHE.md)
CACHE_SIZE = int(os.environ.get("DLHUB_SPACE_MODELS_PER_TASK", "3"))
# Hub models: downloaded into their own folder, kept under a cap; fetched by a few workers, outside the request slots
HUB_CACHE_DIR = Path(os.environ.get("DLHUB_SPACE_HUB_CACHE") or Path(tempfile.gettempdir()) / "dlhub-space-hub")
HUB_CACHE_BYTES = megabytes_setting("DLHUB_HUB_CACHE_MB", 2048)
DOWNLOAD_WORKERS = 2
MAX_WAITING_LOADS = 8  # Hub models being fetched or waiting for a worker, all tasks together
LOAD_WAIT_S = float(os.environ.get("DLHUB_SPACE_LOAD_WAIT_S") or 20)  # a request waits this long for a Hub model
FAILED_KEPT_S = 120.0  # a failed load's message waits this long for the request that comes back for it
LISTING_TTL_S = 300.0  # the Hub's listing of a task's models is asked again after this long
# Each task's main metric in its cards' model-index (a prefix of the metric's name) and whether higher is better;
# COMPARABLE: other names of the same figure in older cards (a ten-word commands model's "test accuracy")
MAIN_METRIC = {"regression": ("validation MSE, reweighted", False), "denoiser": ("PSNR denoised, σ = 0.2", True),
               "signs": ("test accuracy", True), "landmarks": ("test NME", False),
               "commands": ("ten-word accuracy", True)}
COMPARABLE = {"commands": ("test accuracy",)}
SORTS = ["main metric", "last modified", "downloads", "likes"]
MEASURED, REPORTED = "measured by the project", "reported by the uploader"
COLUMNS = ["model", "from", "main metric", "parameters", "last modified", "downloads", "likes", "results",
           "card", "results (metric — dataset, split: value)"]
DATATYPES = ["str", "str", "number", "number", "str", "number", "number", "str", "markdown", "markdown"]
# wide enough for each header on one line (unset, the results column took the width and "likes" wrapped letter by letter)
COLUMN_WIDTHS = ["130px", "90px", "120px", "115px", "105px", "100px", "60px", "110px", "55px", "330px"]
MAX_RESULTS_SHOWN, MAX_CARD_TEXT = 12, 80  # of a card's model-index, in a row
TAB_TITLES: dict[str, str] = {}  # task → the title of the tab that answers with its models (filled by ModelChoice)


# -- which model a choice names ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Choice:
    """A model choice: `key` is what the dropdown and the API carry, `source` what dlhub.load takes (None: the task's
    default), `cache_key` the model's entry in the task's cache; `hub`: a Hub repo, read with this Space's token only
    when `token` is None (one of the Space's own repos), else with none (False)."""

    key: str
    source: str | Path | None
    cache_key: str
    hub: bool = False
    token: bool | None = None


def bundled_key(task: str, folder: Path) -> str:
    return BUNDLED if folder == get_task(task).bundled_dir else f"{BUNDLED}:{folder.name}"


def offered_folders() -> dict[str, Path]:
    """The model folders DLHUB_SPACE_MODEL_DIRS names (os.pathsep-separated), by key `folder:NAME`: each entry is a
    model folder, or a folder whose sub-folders are model folders. The first of two folders of one name is kept."""
    found: dict[str, Path] = {}
    for entry in filter(None, os.environ.get("DLHUB_SPACE_MODEL_DIRS", "").split(os.pathsep)):
        root = Path(entry).expanduser()
        try:
            folders = [root] if (root / WEIGHTS_NAME).is_file() else sorted(
                p for p in root.iterdir() if (p / WEIGHTS_NAME).is_file()) if root.is_dir() else []
        except OSError:
            folders = []
        for folder in folders:
            found.setdefault(f"{FOLDER}:{folder.name}", folder)
    return found


def task_folders(task: str) -> dict[str, Path]:
    """The offered folders that hold a model of `task` (their card and config.json say so)."""
    fits = {}
    for key, folder in offered_folders().items():
        try:
            check_folder(get_task(task), folder)
        except DLHubError:
            continue
        fits[key] = folder
    return fits


def own_repos() -> set[str]:
    """The Space's own Hub repos (its organisation's published models, which may be private): read with its token."""
    return {t.repo_id for t in TASKS.values()} | {f"{hub_org()}/{name}" for name in bundled_repo_names().values()}


def _looks_like_path(text: str) -> bool:
    return text.startswith(("/", "~", ".")) or "\\" in text or ".." in text.split("/") or text.startswith("file:")


def _same_path(text: str) -> str:
    """A typed path as an absolute, normalised one: compared with the offered folders, never looked up on disk."""
    return os.path.normpath(os.path.abspath(os.path.expanduser(text)))


def parse_choice(task: str, value, aliases: dict | None = None) -> Choice:
    """The model a dropdown value, a typed entry or an API argument names; anything else is one clear message that
    never repeats a path or says whether it exists on the server."""
    text = "" if value is None else str(value).strip()
    text = (aliases or {}).get(text, text)
    if text in ("", DEFAULT):
        return Choice(DEFAULT, None, DEFAULT)
    bundled = {bundled_key(task, f): f for f in bundled_folders(task)}
    if text in bundled:
        return Choice(text, bundled[text], text)
    if text == BUNDLED or text.startswith(f"{BUNDLED}:"):
        raise user_error(f"There is no bundled model {text[:100]!r} for this tab: the bundled ones are "
                         f"{', '.join(bundled) or 'none'}.")
    offered = offered_folders()
    if text in offered:
        return Choice(text, offered[text], text)
    if text.startswith(f"{FOLDER}:"):
        names = ", ".join(task_folders(task)) or "none"
        raise user_error(f"This Space offers no folder {text[:100]!r} for this tab: the ones it offers are {names}.")
    if _looks_like_path(text):
        by_path = {_same_path(str(f)): k for k, f in [*offered.items(), *bundled.items()]}
        key = by_path.get(_same_path(text))
        if key is not None:  # an offered folder typed as its path: named by its key from here on
            return parse_choice(task, key)
        raise user_error("Folders on the server cannot be chosen: choose a model from the list, or enter a Hub repo "
                         "as ORG/NAME or ORG/NAME@revision.")
    repo_id = text.partition("@")[0]
    if REPO_ID.match(repo_id) and len(text) <= 200:
        return Choice(text, text, text, hub=True, token=None if repo_id in own_repos() else False)
    raise user_error(f"{text[:100]!r} names no model: choose one from the list, or enter ORG/NAME or "
                     "ORG/NAME@revision (a Hub repo).")


class StillLoadingError(DLHubError):
    """A Hub model still downloading when the request stopped waiting for it: the download goes on."""


class BusyError(DLHubError):
    """Too many Hub models being downloaded at once: this one was not started."""


def explain(choice: Choice, err: DLHubError) -> str:
    """One sentence for the page on why a chosen model cannot answer (plain text: a message is shown as it is; no
    server path in it)."""
    name = "The tab's default model" if choice.key == DEFAULT else choice.key
    if isinstance(err, WrongTaskError):
        where = f": choose it in the {TAB_TITLES[err.task]} tab" if err.task in TAB_TITLES else ""
        return without_paths(f"{err}{where}.")
    if isinstance(err, StillLoadingError):
        return f"{name} is still downloading: try again in a minute."
    if isinstance(err, BusyError):
        return f"The Space is downloading other models right now: try {name} again in a minute."
    if isinstance(err, ModelTooLargeError):
        return f"{name} is too large for this Space ({err.short})."
    if isinstance(err, DownloadTimeoutError):
        return f"{name} took too long to download: try again later, or choose another model."
    if isinstance(err, HubUnreachableError):
        return f"The Hub did not answer for {name}: try again in a minute, or choose a bundled model."
    if isinstance(err, HubRepoNotFoundError):
        return f"{name} is not on the Hub, or it is private or gated and this Space has no access to it."
    return without_paths(f"{name} could not be loaded: {err}.")


# -- the models kept loaded --------------------------------------------------------------------------------------------
class Load:
    """One model being loaded: its progress as last reported, then the model or the error, and when it ended."""

    def __init__(self, choice: Choice, progress=None):
        self.choice = choice
        self.done = threading.Event()
        self.status: tuple[float, str] = (0.0, f"loading {choice.key}")
        self.progress = progress  # a load in the request's own thread reports there at once
        self.model = None
        self.error: BaseException | None = None
        self.ended = 0.0

    def report(self, fraction: float, description: str) -> None:
        self.status = (fraction, description)
        if self.progress is not None:
            self.progress(fraction, desc=description)


# Hub downloads run here, not in the request's slot: a slow repo holds a worker, never a tab
_DOWNLOADS = ThreadPoolExecutor(DOWNLOAD_WORKERS, thread_name_prefix="dlhub-download")
_HUB_LOCK = threading.Lock()  # guards _hub_loads and the Hub cache folder's clean-up
_hub_loads: set[Load] = set()  # Hub loads not yet ended, every task


class ModelCache:
    """The loaded models of one task, at most `size`, the least recently used dropped first. Requests that arrive
    together for a model not yet loaded wait for one load instead of each loading their own copy; a request keeps the
    model it got even when the cache drops it meanwhile. Hub models load in the background workers: a request waits
    LOAD_WAIT_S, then is told to come back while the load goes on."""

    def __init__(self, task: str, size: int = CACHE_SIZE):
        self.task, self.size = task, max(1, size)
        self.prepare = None  # called once on each newly loaded model (a warm-up), set by the tab
        self._models: OrderedDict[str, object] = OrderedDict()
        self._lock = threading.Lock()
        self._loads: dict[str, Load] = {}

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._models)

    def models(self) -> list:
        with self._lock:
            return list(self._models.values())

    def get(self, choice: Choice, progress=None, wait_s: float | None = None):
        in_background = choice.hub
        with self._lock:
            if choice.cache_key in self._models:
                self._models.move_to_end(choice.cache_key)
                return self._models[choice.cache_key]
            load = self._loads.get(choice.cache_key)
            if load is not None and load.done.is_set() and time.monotonic() - load.ended > FAILED_KEPT_S:
                load = None  # an old failure: try again
            started = load is None
            if started:
                load = Load(choice, None if in_background else progress)  # a worker thread reports to waiters
                if in_background:
                    with _HUB_LOCK:
                        if len(_hub_loads) >= MAX_WAITING_LOADS:
                            raise BusyError(f"{len(_hub_loads)} Hub models are being loaded")
                        _hub_loads.add(load)
                self._loads[choice.cache_key] = load
        if started:
            if in_background:
                _DOWNLOADS.submit(self._run, load)
            else:
                self._run(load)
        return self._wait(load, progress, (LOAD_WAIT_S if wait_s is None else wait_s) if in_background else None)

    def _run(self, load: Load) -> None:
        choice = load.choice
        try:
            if choice.hub and hub_down():
                raise HubUnreachableError(f"the Hub did not answer a moment ago ({choice.key})")
            kwargs = dict(cache_dir=HUB_CACHE_DIR)  # the default may come from the Hub too
            if choice.hub:
                kwargs.update(token=choice.token, local_folders=False)
            model = dlhub.load(self.task, choice.source, progress=load.report, **kwargs)
            if self.prepare is not None:
                self.prepare(model)
        except BaseException as err:  # noqa: BLE001 - handed to every request waiting for this load
            load.error = err
            if not isinstance(err, DLHubError):
                log.error("dlhub: %s: loading %s failed", self.task, choice.key, exc_info=err)
        else:
            load.model = model
            with self._lock:  # in one step: a request arriving now finds the model, not a second load to start
                self._loads.pop(choice.cache_key, None)
                self._models[choice.cache_key] = model
                dropped = []
                while len(self._models) > self.size:
                    key, _ = self._models.popitem(last=False)
                    dropped.append(key)
                    log.info("dlhub: %s: %s dropped from the loaded models", self.task, key)
            if dropped:
                release_memory()
        finally:
            load.ended = time.monotonic()
            with _HUB_LOCK:
                _hub_loads.discard(load)
            load.done.set()
        if load.model is not None and HUB_CACHE_DIR in Path(load.model.folder).parents:
            touch(Path(load.model.folder).parents[1])  # models--ORG--NAME: used now
            prune_hub_cache()

    def _wait(self, load: Load, progress, wait_s: float | None):
        deadline = None if wait_s is None else time.monotonic() + wait_s
        while not load.done.wait(0.25):
            if progress is not None:
                fraction, description = load.status
                progress(fraction, desc=description)
            if deadline is not None and time.monotonic() > deadline:
                raise StillLoadingError(f"{load.choice.key} is still loading")
        if load.error is not None:
            with self._lock:
                if self._loads.get(load.choice.cache_key) is load:  # told once: the next request tries again
                    self._loads.pop(load.choice.cache_key)
            raise load.error
        return load.model


def release_memory() -> None:
    """Hand the memory of dropped models back to the system: freed weights stay in the C allocator's free lists (the
    process's size never comes down) until it is asked to trim them (glibc; elsewhere nothing happens)."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


_CACHES: dict[str, ModelCache] = {}
_CACHES_LOCK = threading.Lock()


def cache(task: str) -> ModelCache:
    """The task's model cache (one per process)."""
    with _CACHES_LOCK:
        if task not in _CACHES:
            _CACHES[task] = ModelCache(get_task(task).name)
        return _CACHES[task]


def prune_hub_cache() -> None:
    """Keep the Hub download folder under HUB_CACHE_BYTES, least recently used repos first; never a repo a loaded
    model came from, nor one being downloaded."""
    from huggingface_hub.file_download import repo_folder_name

    with _CACHES_LOCK:
        caches = list(_CACHES.values())
    in_use = [Path(m.folder) for c in caches for m in c.models()]
    with _HUB_LOCK:
        for load in _hub_loads:
            repo_id = str(load.choice.source).partition("@")[0]
            in_use.append(HUB_CACHE_DIR / repo_folder_name(repo_id=repo_id, repo_type="model"))
        in_use += [HUB_CACHE_DIR / repo_folder_name(repo_id=r, repo_type="model") for r in own_repos()]
        prune_lru(HUB_CACHE_DIR.glob("models--*"), HUB_CACHE_BYTES, in_use)


def get_model(task: str, value=DEFAULT, progress=None, aliases: dict | None = None):
    """The model `value` names, loaded once and kept; a model that cannot answer is one gr.Error saying why."""
    choice = parse_choice(task, value, aliases)
    try:
        return cache(task).get(choice, progress)
    except DLHubError as err:
        log.info("dlhub: %s: %s cannot answer: %s", task, choice.key, err)
        raise user_error(explain(choice, err)) from None


def answered_by(model) -> str:
    """Which model answered, for the result text: the Hub repo and commit, or the bundled / local folder."""
    origin = model.origin
    if origin.kind == "hub":
        return f"`{origin.repo_id}` at commit `{(origin.commit or '?')[:7]}`"
    folder = Path(getattr(model, "folder", ""))
    if origin.kind == "bundled" or folder.resolve().parent == BUNDLED_DIR.resolve():
        return f"the bundled checkpoint `checkpoints/{folder.name}`"
    return f"the local folder `{origin.folder_name}`"


def answered_line(model) -> str:
    return f"*Answered by {answered_by(model)}.*"


def model_summary_line(task: str, model) -> str:
    """Where the model came from, with its card: dlhub.space.common.model_line for the default and Hub models."""
    folder = Path(getattr(model, "folder", ""))
    if model.origin.kind == "local" and folder.resolve().parent == BUNDLED_DIR.resolve():
        return f"Model: the bundled checkpoint `checkpoints/{folder.name}`, shipped with this Space."
    return model_line(task, lambda: model)


# -- the models of a task: bundled, and on the Hub (listed a few minutes at a time) ------------------------------------
_LISTINGS: dict[str, tuple[float, list[ListedModel]]] = {}
_LISTING_LOCKS: dict[str, threading.Lock] = {}
_LISTING_LOCK = threading.Lock()


def hub_models(task: str, ask: bool = True) -> tuple[list[ListedModel], str | None]:
    """The task's models on the Hub, and why there are none when the Hub could not be asked. The listing is kept
    LISTING_TTL_S; `ask=False` only reads what is kept (no Hub request: the page is being built)."""
    with _LISTING_LOCK:
        lock = _LISTING_LOCKS.setdefault(task, threading.Lock())
    with lock:  # requests arriving together wait for one listing
        kept = _LISTINGS.get(task)
        if kept is not None and (time.monotonic() - kept[0] < LISTING_TTL_S or not ask):
            return kept[1], None
        if not ask:
            return [], None
        try:
            found = find_models(task, timeout=HUB_TIMEOUT_S, token=False)  # public models only: a page lists them
        except HubUnreachableError as err:  # not kept: dlhub skips the Hub for a minute, then it is asked again
            log.info("dlhub: %s", err)
            return [], "The Hub could not be reached: only the bundled models are listed."
        _LISTINGS[task] = (time.monotonic(), found)
        return found, None


@functools.lru_cache(maxsize=None)
def bundled(task: str) -> tuple[ListedModel, ...]:
    """The task's bundled checkpoints (read once: they do not change while the Space runs)."""
    return tuple(bundled_models(task))


def main_metric(task: str, listed: ListedModel) -> float | None:
    for prefix in (MAIN_METRIC[task][0], *COMPARABLE.get(task, ())):
        value = next((r.value for r in listed.results if r.metric.startswith(prefix)), None)
        if value is not None:
            return value
    return None


def measured(listed: ListedModel) -> bool:
    """Whether a model's card results were measured by the project: a bundled model (its training run wrote them) or a
    repo of the project's own organisation (only the project writes there: its train scripts and `dlhub.evaluate`).
    Anyone can write any number in the card of a repo they tag `dlhub`: those are reported by the uploader."""
    return listed.repo_id is None or listed.repo_id.split("/")[0] == hub_org()


def known_choices(task: str, labels: dict | None = None, ask: bool = False) -> list[tuple[str, str]]:
    """(label, value) of the dropdown: the default, the bundled checkpoints, the folders this Space offers, the
    configured repo, the Hub's others."""
    spec, labels = get_task(task), labels or {}
    choices = [(labels.get(DEFAULT, f"default ({spec.repo_id}, else its bundled copy)"), DEFAULT)]
    for folder in bundled_folders(task):
        key = bundled_key(task, folder)
        choices.append((labels.get(key, f"bundled: checkpoints/{folder.name}"), key))
    choices += [(labels.get(key, f"folder: {key.partition(':')[2]}"), key) for key in task_folders(task)]
    choices.append((labels.get(spec.repo_id, f"{spec.repo_id} (Hub)"), spec.repo_id))
    found, _ = hub_models(task, ask=ask)
    for listed in found:
        if listed.repo_id != spec.repo_id:
            value = main_metric(task, listed)
            metric = (f" — {MAIN_METRIC[task][0]} {value:.4g}{'' if measured(listed) else f' ({REPORTED})'}"
                      if value is not None else "")
            choices.append((f"{listed.repo_id} (Hub){metric}", listed.repo_id))
    return choices


_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#!|~])")


def as_text(value, limit: int = MAX_CARD_TEXT) -> str:
    """Card text as plain text in a Markdown cell: one line, at most `limit` characters, HTML and Markdown escaped."""
    text = " ".join(str(value).split())
    text = text if len(text) <= limit else text[:limit - 1] + "…"
    text = _MARKDOWN.sub(r"\\\1", text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))
    return "\\" + text if text and text[0] in "-+=" else text  # no list or heading made of a leading sign


def _row(task: str, listed: ListedModel) -> list:
    lines = [f"{as_text(r.metric)} — {as_text(r.dataset)}{f', {as_text(r.split, 30)}' if r.split else ''}: "
             f"{r.value:.4g}" for r in listed.results[:MAX_RESULTS_SHOWN]]
    if len(listed.results) > MAX_RESULTS_SHOWN:
        lines.append(f"… and {len(listed.results) - MAX_RESULTS_SHOWN} more")
    key = listed.repo_id if listed.repo_id else bundled_key(task, listed.folder)
    where = "Hub" if listed.repo_id else "bundled"
    modified = listed.last_modified.strftime("%Y-%m-%d") if listed.last_modified else ""
    card = f"[card]({listed.url})" if listed.url else ""
    by = (MEASURED if measured(listed) else REPORTED) if listed.results else ""
    return [key, where, main_metric(task, listed), listed.parameters, modified, listed.downloads, listed.likes, by,
            card, "<br>".join(lines)]


def list_models(task: str = "signs", sort: str = "main metric"):
    """The task's models: the bundled ones and those on the Hub, with their cards' results; best first by the task's
    main metric, those measured by the project before those reported by their uploader (or latest, most downloaded,
    most liked). The line below says what was listed."""
    if task not in MAIN_METRIC:
        raise user_error(f"Unknown task {str(task)[:50]!r}: choose one of {', '.join(MAIN_METRIC)}.")
    if sort not in SORTS:
        raise user_error(f"Sort by one of {', '.join(SORTS)}; got {str(sort)[:50]!r}.")
    shipped = list(bundled(task))
    found, problem = hub_models(task)
    metric, higher = MAIN_METRIC[task]
    listed = shipped + found
    if sort == "main metric":
        def rank(m: ListedModel):
            value = main_metric(task, m)
            return value is None, not measured(m), -(value or 0) if higher else (value or 0)

        listed.sort(key=rank)
    elif sort == "last modified":
        listed.sort(key=lambda m: m.last_modified.timestamp() if m.last_modified else 0, reverse=True)
    else:
        listed.sort(key=lambda m: getattr(m, sort) or 0, reverse=True)
    headers = list(COLUMNS)
    headers[2] = f"{metric} {'↑' if higher else '↓'}"
    table = {"headers": headers, "data": [_row(task, m) for m in listed]}
    hub = problem or (f"{len(found)} found on the Hub (tagged `dlhub` and `{task}`)." if found else
                      f"None on the Hub yet (tagged `dlhub` and `{task}`).")
    ranking = (f" ({metric}, {'higher' if higher else 'lower'} is better; results {MEASURED} first, then those "
               f"{REPORTED})" if sort == "main metric" else "")
    note = (f"**{len(shipped)} bundled** with this Space. {hub} Sorted by {sort}{ranking}. "
            "Choose a row to open that model in its tab.")
    return table, note


def limits_note() -> str:
    """The Models tab's footer: what this Space takes from visitors and keeps on disk."""
    return (
        f"*Limits of this Space.* A Hub model may hold up to {MAX_MODEL_BYTES / MB:g} MB of files and "
        f"{MAX_PARAMETERS:,} parameters (counted before it is built); it is read without this Space's token, waited "
        f"for {LOAD_WAIT_S:g} s (then try again: the download goes on) and given up after {DOWNLOAD_TIMEOUT_S:g} s. "
        f"Folders on the server: only the bundled checkpoints and those the Space's owner offers. "
        f"Kept on disk, least recently used removed first: downloaded models up to {HUB_CACHE_BYTES / MB:g} MB, "
        f"ONNX Runtime graphs up to {onnx.MAX_CACHE_BYTES / MB:g} MB, output images up to "
        f"{OUTPUT_MAX_BYTES / MB:g} MB. Uploads: files up to {MAX_UPLOAD_MB} MB, .npz files "
        f"unpacking to at most {MAX_NPZ_BYTES / MB:g} MB, images up to {MAX_PIXELS // 1_000_000} megapixels, "
        f"recordings: the first {audio.MAX_UPLOAD_S:g} s.")


# -- the model choice of a tab -----------------------------------------------------------------------------------------
class ModelChoice:
    """The model choice of one tab: a dropdown of known models, a field for any other, the line describing the model
    that answers, and `value` (hidden): the model the tab's endpoints use, their optional `model` parameter. A choice
    that cannot answer is one message and the tab keeps its model."""

    def __init__(self, task: str, title: str, prefix: str, describe, *, labels: dict | None = None,
                 aliases: dict | None = None):
        self.task, self.title, self.describe = task, title, describe
        self.labels, self.aliases = labels or {}, aliases or {}
        TAB_TITLES[task] = title
        self._rerun = None
        with gr.Row():
            self.dropdown = gr.Dropdown(known_choices(task, self.labels), value=DEFAULT, allow_custom_value=True,
                                        label="model", elem_id=f"{prefix}-model", scale=3)
            self.other = gr.Textbox(label="or another model", placeholder="a Hub repo: ORG/NAME or ORG/NAME@revision",
                                    elem_id=f"{prefix}-model-other", scale=3)
            self.load_button = gr.Button("Load", elem_id=f"{prefix}-model-load", scale=0, min_width=100)
        self.value = gr.Textbox(DEFAULT, visible=False, label="model", elem_id=f"{prefix}-model-value")
        self.note = gr.Markdown(self.note_for(DEFAULT), elem_id=f"{prefix}-model-note")

    def model(self, value=DEFAULT, progress=None):
        return get_model(self.task, value, progress, self.aliases)

    def note_for(self, value) -> str:
        """What the tab says of its model: what it is (the tab's describe) and where it came from."""
        try:
            model = self.model(value)
        except gr.Error as err:
            return f"⚠️ No model could be loaded for this tab: {err.message}"
        return self._note(model)

    def _note(self, model) -> str:
        description, line = self.describe(model, read_metrics(model)), model_summary_line(self.task, model)
        return f"{line}\n\n{description}" if "\n" in description else f"{description} {line}"

    # the handlers: load with progress, then say what was chosen
    def _choose(self, value, progress=gr.Progress()):
        try:
            model = self.model(value, progress)
        except gr.Error as err:
            raise user_error(f"{err.message} The tab keeps its model.") from None
        return parse_choice(self.task, value, self.aliases).key, self._note(model)

    def _load_other(self, text, progress=gr.Progress()):
        if not (text or "").strip():
            raise user_error("Enter a model: a Hub repo as ORG/NAME or ORG/NAME@revision.")
        key, note = self._choose(text, progress)
        choices = known_choices(self.task, self.labels)
        if key not in [v for _, v in choices]:
            choices.append((key, key))
        return gr.Dropdown(choices=choices, value=key), key, note

    def _picked(self, picked, value, progress=gr.Progress()):
        return self._choose(value, progress) if picked == self.task else gr.skip()

    def refresh(self):
        """The dropdown with the Hub's models of the task as listed now (kept a few minutes)."""
        return gr.Dropdown(choices=known_choices(self.task, self.labels, ask=True))

    def on_change(self, fn, inputs: list, outputs: list, **kwargs) -> None:
        """After a model is chosen (the dropdown or the field; a row of the Models tab through `open_from`), call
        fn(*inputs, model) again: the tab answers with the model chosen. kwargs go to the event (concurrency)."""
        self._rerun = (fn, inputs, outputs, kwargs)
        chosen = self.dropdown.input(handler(self._choose), [self.dropdown], [self.value, self.note],
                                     api_visibility="undocumented", concurrency_id=f"model-{self.task}",
                                     show_progress_on=[self.note])
        self._then(chosen)
        typed = gr.on([self.other.submit, self.load_button.click], handler(self._load_other), [self.other],
                      [self.dropdown, self.value, self.note], api_visibility="undocumented",
                      concurrency_id=f"model-{self.task}", show_progress_on=[self.note])
        self._then(typed)

    def open_from(self, event, picked) -> None:
        """Follow `event` (a row chosen in the Models tab, whose task is in the State `picked`) with this tab's model
        choice and answer, when the row is of this tab's task."""
        chosen = event.success(handler(self._picked), [picked, self.dropdown], [self.value, self.note],
                               api_visibility="undocumented", concurrency_id=f"model-{self.task}")
        self._then(chosen, picked)

    def _then(self, chosen, picked=None) -> None:
        chosen.failure(lambda value: value, [self.value], [self.dropdown], queue=False, api_visibility="private")
        if self._rerun is None:
            return
        fn, inputs, outputs, kwargs = self._rerun
        if picked is None:
            chosen.success(handler(fn), [*inputs, self.value], outputs, api_visibility="undocumented", **kwargs)
        else:
            task = self.task
            gated = handler(lambda p, *args: fn(*args) if p == task else gr.skip())
            chosen.success(gated, [picked, *inputs, self.value], outputs, api_visibility="undocumented", **kwargs)


# -- the Models tab ----------------------------------------------------------------------------------------------------
TASK_LABELS = {"regression": "Regression", "denoiser": "Face denoising", "signs": "Traffic signs",
               "landmarks": "Face landmarks", "commands": "Voice commands"}
# listings computed at once, from benchmarks/concurrency.py (each waits on the Hub at most HUB_TIMEOUT_S, then is kept)
CONCURRENCY = 4


def build(demo: gr.Blocks, choices: dict[str, ModelChoice], tabs: gr.Tabs, tab_ids: dict[str, str]) -> None:
    gr.Markdown("### The course's models\nEach task's models: the checkpoints bundled with this Space and the models "
                "on the Hub tagged `dlhub` and the task (what the train scripts' `--push_to_hub` writes), with their "
                "cards' results. Choose a row to open that model in its tab.")
    with gr.Row():
        task = gr.Radio([(TASK_LABELS.get(t, t), t) for t in choices], value="signs" if "signs" in choices else
                        next(iter(choices)), label="task", elem_id="models-task")
        sort = gr.Radio(SORTS, value="main metric", label="sort by", elem_id="models-sort")
    note = gr.Markdown(elem_id="models-note")
    table = gr.Dataframe(headers=COLUMNS, datatype=DATATYPES, interactive=False, wrap=True, elem_id="models-table",
                         label="models", max_height=600, column_widths=COLUMN_WIDTHS)
    picked = gr.State(None)
    gr.Markdown(limits_note(), elem_id="models-limits")
    gr.on([demo.load, task.change, sort.change], handler(list_models), [task, sort], [table, note],
          api_name="list_models", concurrency_limit=CONCURRENCY, concurrency_id="list_models")
    dropdowns = [c.dropdown for c in choices.values()]

    def open_row(task_name, evt: gr.SelectData, progress=gr.Progress()):
        row = evt.row_value if evt.row_value is not None else []
        if not row or not row[0]:
            raise user_error("Choose a row of the table.")
        key = str(row[0])
        chooser = choices[task_name]
        chooser.model(key, progress)  # loaded here, with progress; its tab then answers at once
        known = known_choices(task_name, chooser.labels)
        if key not in [v for _, v in known]:
            known.append((key, key))
        updates = [gr.Dropdown(choices=known, value=key) if t == task_name else gr.skip() for t in choices]
        return gr.Tabs(selected=tab_ids[task_name]), task_name, *updates

    opened = table.select(handler(open_row), [task], [tabs, picked, *dropdowns], api_visibility="undocumented",
                          concurrency_id="open_model", show_progress_on=[note])
    for chooser in choices.values():
        chooser.open_from(opened, picked)
    demo.load(lambda: [c.refresh() for c in choices.values()], None, dropdowns, api_visibility="private",
              concurrency_limit=CONCURRENCY, concurrency_id="list_models")
