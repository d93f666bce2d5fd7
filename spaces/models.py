"""Choosing the model in each model tab, the models kept loaded, and the "Models" tab.

Each model tab has a `ModelChoice`: a dropdown of the task's known models (the tab's default, the bundled checkpoints,
the configured Hub repo, the task's models found on the Hub) and a field for any `ORG/NAME`, `ORG/NAME@revision` or
folder on the server. The tab's endpoints take the choice as their last, optional parameter `model` ("default" when
left out), and their answers say which model and commit answered. Models are loaded by `dlhub.load(task, source)` into
a small least-recently-used cache per task; a model of another task, a missing repo or a Hub that does not answer is
one message, and the tab keeps its model.

The "Models" tab lists each task's models (the bundled ones and those the Hub has, tagged `dlhub` and the task) with
their cards' results; choosing a row opens that model in its tab. The Hub's listing is kept a few minutes.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

import dlhub
from dlhub.errors import DLHubError, HubRepoNotFoundError, HubUnreachableError, WrongTaskError
from dlhub.hub import (HUB_TIMEOUT_S, REPO_ID, ListedModel, bundled_folders, bundled_models, find_models, hub_down,
                       read_metrics)
from dlhub.tasks import BUNDLED_DIR, get_task
from spaces.common import handler, log, model_line, user_error

TITLE = "Models"
DEFAULT, BUNDLED = "default", "bundled"
# Models kept loaded per task (benchmarks/model_cache.py measures the memory of three per task: MODEL_CACHE.md)
CACHE_SIZE = int(os.environ.get("DLHUB_SPACE_MODELS_PER_TASK", "3"))
LISTING_TTL_S = 300.0  # the Hub's listing of a task's models is asked again after this long
# Each task's main metric in its cards' model-index (a prefix of the metric's name) and whether higher is better;
# COMPARABLE: other names of the same figure in older cards (a ten-word commands model's "test accuracy")
MAIN_METRIC = {"regression": ("validation MSE, reweighted", False), "denoiser": ("PSNR denoised, σ = 0.2", True),
               "signs": ("test accuracy", True), "landmarks": ("test NME", False),
               "commands": ("ten-word accuracy", True)}
COMPARABLE = {"commands": ("test accuracy",)}
SORTS = ["main metric", "last modified", "downloads", "likes"]
COLUMNS = ["model", "from", "main metric", "parameters", "last modified", "downloads", "likes", "card",
           "results (metric — dataset, split: value)"]
DATATYPES = ["str", "str", "number", "number", "str", "number", "number", "markdown", "markdown"]
TAB_TITLES: dict[str, str] = {}  # task → the title of the tab that answers with its models (filled by ModelChoice)


# -- which model a choice names ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Choice:
    """A model choice: `key` is what the dropdown and the API carry, `source` what dlhub.load takes (None: the task's
    default), `cache_key` the model's entry in the task's cache."""

    key: str
    source: str | Path | None
    cache_key: str
    hub: bool = False


def bundled_key(task: str, folder: Path) -> str:
    return BUNDLED if folder == get_task(task).bundled_dir else f"{BUNDLED}:{folder.name}"


def parse_choice(task: str, value, aliases: dict | None = None) -> Choice:
    """The model a dropdown value, a typed entry or an API argument names; anything else is one clear message."""
    text = "" if value is None else str(value).strip()
    text = (aliases or {}).get(text, text)
    if text in ("", DEFAULT):
        return Choice(DEFAULT, None, DEFAULT)
    bundled = {bundled_key(task, f): f for f in bundled_folders(task)}
    if text in bundled:
        return Choice(text, bundled[text], text)
    if text == BUNDLED or text.startswith(f"{BUNDLED}:"):
        raise user_error(f"There is no bundled model {text!r} for this tab: the bundled ones are "
                         f"{', '.join(bundled) or 'none'}.")
    folder = Path(text).expanduser()
    if folder.is_dir():  # as dlhub.load reads it: an existing folder first, then a Hub repo id
        return Choice(text, folder, f"folder:{folder.resolve()}")
    if REPO_ID.match(text.partition("@")[0]) and len(text) <= 200:
        return Choice(text, text, text, hub=True)
    raise user_error(f"{text[:100]!r} names no model: choose one from the list, or enter ORG/NAME, "
                     "ORG/NAME@revision, or a folder on the server.")


def explain(choice: Choice, err: DLHubError) -> str:
    """One sentence for the page on why a chosen model cannot answer (plain text: a message is shown as it is)."""
    name = "The tab's default model" if choice.key == DEFAULT else choice.key
    if isinstance(err, WrongTaskError):
        where = f": choose it in the {TAB_TITLES[err.task]} tab" if err.task in TAB_TITLES else ""
        return f"{err}{where}."
    if isinstance(err, HubUnreachableError):
        return f"The Hub did not answer for {name}: try again in a minute, or choose a bundled model."
    if isinstance(err, HubRepoNotFoundError):
        return f"{name} is not on the Hub, or it is private or gated and this Space has no access to it."
    return f"{name} could not be loaded: {err}."


# -- the models kept loaded --------------------------------------------------------------------------------------------
class ModelCache:
    """The loaded models of one task, at most `size`, the least recently used dropped first. Requests that arrive
    together for a model not yet loaded wait for one load instead of each loading their own copy; a request keeps the
    model it got even when the cache drops it meanwhile."""

    def __init__(self, task: str, size: int = CACHE_SIZE):
        self.task, self.size = task, max(1, size)
        self.prepare = None  # called once on each newly loaded model (a warm-up), set by the tab
        self._models: OrderedDict[str, object] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._models)

    def get(self, choice: Choice, progress=None):
        with self._lock:
            if choice.cache_key in self._models:
                self._models.move_to_end(choice.cache_key)
                return self._models[choice.cache_key]
            loading = self._loading.setdefault(choice.cache_key, threading.Lock())
        with loading:
            with self._lock:
                if choice.cache_key in self._models:  # loaded by the request this one waited for
                    self._models.move_to_end(choice.cache_key)
                    return self._models[choice.cache_key]
            try:
                if choice.hub and hub_down():
                    raise HubUnreachableError(f"the Hub did not answer a moment ago ({choice.key})")
                report = (lambda f, d: progress(f, desc=d)) if progress is not None else None
                model = dlhub.load(self.task, choice.source, progress=report)
                if self.prepare is not None:
                    self.prepare(model)
            except BaseException:
                with self._lock:
                    self._loading.pop(choice.cache_key, None)
                raise
            with self._lock:  # in one step: a request arriving now finds the model, not a second load to start
                self._loading.pop(choice.cache_key, None)
                self._models[choice.cache_key] = model
                while len(self._models) > self.size:
                    dropped, _ = self._models.popitem(last=False)
                    log.info("dlhub: %s: %s dropped from the loaded models", self.task, dropped)
        return model


_CACHES: dict[str, ModelCache] = {}
_CACHES_LOCK = threading.Lock()


def cache(task: str) -> ModelCache:
    """The task's model cache (one per process)."""
    with _CACHES_LOCK:
        if task not in _CACHES:
            _CACHES[task] = ModelCache(get_task(task).name)
        return _CACHES[task]


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
    """Where the model came from, with its card: spaces.common.model_line for the default and Hub models."""
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
            found = find_models(task, timeout=HUB_TIMEOUT_S)
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


def known_choices(task: str, labels: dict | None = None, ask: bool = False) -> list[tuple[str, str]]:
    """(label, value) of the dropdown: the default, the bundled checkpoints, the configured repo, the Hub's others."""
    spec, labels = get_task(task), labels or {}
    choices = [(labels.get(DEFAULT, f"default ({spec.repo_id}, else its bundled copy)"), DEFAULT)]
    for folder in bundled_folders(task):
        key = bundled_key(task, folder)
        choices.append((labels.get(key, f"bundled: checkpoints/{folder.name}"), key))
    choices.append((labels.get(spec.repo_id, f"{spec.repo_id} (Hub)"), spec.repo_id))
    found, _ = hub_models(task, ask=ask)
    for listed in found:
        if listed.repo_id != spec.repo_id:
            value = main_metric(task, listed)
            metric = f" — {MAIN_METRIC[task][0]} {value:.4g}" if value is not None else ""
            choices.append((f"{listed.repo_id} (Hub){metric}", listed.repo_id))
    return choices


def _row(task: str, listed: ListedModel) -> list:
    results = "<br>".join(f"{r.metric} — {r.dataset}{f', {r.split}' if r.split else ''}: {r.value:.4g}"
                          for r in listed.results)
    key = listed.repo_id if listed.repo_id else bundled_key(task, listed.folder)
    where = "Hub" if listed.repo_id else "bundled"
    modified = listed.last_modified.strftime("%Y-%m-%d") if listed.last_modified else ""
    card = f"[card]({listed.url})" if listed.url else ""
    return [key, where, main_metric(task, listed), listed.parameters, modified, listed.downloads, listed.likes, card,
            results]


def list_models(task: str = "signs", sort: str = "main metric"):
    """The task's models: the bundled ones and those on the Hub, with their cards' results; best first by the task's
    main metric (or latest, most downloaded, most liked). The line below says what was listed."""
    if task not in MAIN_METRIC:
        raise user_error(f"Unknown task {task!r}: choose one of {', '.join(MAIN_METRIC)}.")
    if sort not in SORTS:
        raise user_error(f"Sort by one of {', '.join(SORTS)}; got {sort!r}.")
    shipped = list(bundled(task))
    found, problem = hub_models(task)
    metric, higher = MAIN_METRIC[task]
    listed = shipped + found
    if sort == "main metric":
        keyed = [(m, main_metric(task, m)) for m in listed]
        listed = [m for m, v in sorted(keyed, key=lambda mv: (mv[1] is None, -(mv[1] or 0) if higher else
                                                                (mv[1] or 0)))]
    elif sort == "last modified":
        listed.sort(key=lambda m: m.last_modified.timestamp() if m.last_modified else 0, reverse=True)
    else:
        listed.sort(key=lambda m: getattr(m, sort) or 0, reverse=True)
    headers = list(COLUMNS)
    headers[2] = f"{metric} {'↑' if higher else '↓'}"
    table = {"headers": headers, "data": [_row(task, m) for m in listed]}
    hub = problem or (f"{len(found)} found on the Hub (tagged `dlhub` and `{task}`)." if found else
                      f"None on the Hub yet (tagged `dlhub` and `{task}`).")
    note = (f"**{len(shipped)} bundled** with this Space. {hub} Sorted by {sort}"
            f"{f' ({metric}, ' + ('higher' if higher else 'lower') + ' is better)' if sort == 'main metric' else ''}. "
            "Choose a row to open that model in its tab.")
    return table, note


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
            self.other = gr.Textbox(label="or another model", placeholder="ORG/NAME, ORG/NAME@revision or a folder "
                                    "on the server", elem_id=f"{prefix}-model-other", scale=3)
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
            raise user_error("Enter a model: ORG/NAME, ORG/NAME@revision, or a folder on the server.")
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
                         label="models", max_height=600)
    picked = gr.State(None)
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
