"""Model cards rendered from the templates in `hub_cards/`, with `model-index` metrics the Hub can read.

Each task's template (`hub_cards/<task>.md`) extends the common skeleton `hub_cards/model_card.md`: it holds all the
card's prose, sets `results` (the metrics of the table and of the model-index), `tags` and `images`, and reads only
the facts a train script passes (its arguments, metrics.json, the data and weights actually used). A card is parsed
back with huggingface_hub's card data classes before it is saved or pushed (`check_card`).

A result may carry `estimate` (dlhub.metrics.intervals.Estimate: its 95% interval and sample size n, which the card's
table shows and the model-index records as the metric's `args`: {ci95: [low, high], n, interval}) and `headline`
(true for the figures a user should expect, stated under the summary). The card keeps, as `headline_gaps`, the
headline figures that have no interval (scripts/render_cards.py --check fails on them).
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import jinja2
import yaml
from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.repocard_data import eval_results_to_model_index, model_index_to_eval_results

from dlhub.errors import ModelCardError
from dlhub.metrics.intervals import BOOTSTRAP, WILSON, command_estimates, estimate
from dlhub.tasks import TASKS

TEMPLATES = Path(__file__).resolve().parent.parent / "hub_cards"
# Measurements made after training by these scripts: each fills its own block of the card (see fill_card_block)
BENCHMARKS = {"regression": ["benchmarks/regression.py"], "denoiser": ["benchmarks/denoiser.py"],
              "signs": ["benchmarks/gtsrb.py"], "landmarks": ["benchmarks/landmarks.py"],
              "commands": ["benchmarks/commands.py", "benchmarks/commands_design.py",
                           "benchmarks/commands_rejection.py"]}
BLOCK = re.compile(r"(<!-- BEGIN (?P<name>\S+) -->\n)(?P<body>.*?)(<!-- END (?P=name) -->)", re.S)
HUB_ID = re.compile(r"[\w.-]+(/[\w.-]+)?")
LICENSE = "mit"  # the project's LICENSE covers the weights it trains


def format_value(value: float) -> str:
    return f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"


def measured(result: dict) -> str:
    """A result's value as the card's table shows it: with its 95% interval and n when it has one."""
    found = result.get("estimate")
    return format_value(result["value"]) if found is None else found.text()


def expected(result: dict) -> str:
    """"name value (95% CI low–high, n = N)": a headline figure as the card states it under its summary."""
    return f"{result['name']} {measured(result)}"


INTERVALS_NOTE = (f"95% intervals: {WILSON} for proportions (accuracy, rejection), {BOOTSTRAP} of the per-item values "
                  "for means (MSE, NME, PSNR); n is the number of items measured.")


def paragraphs(text: str) -> str:
    """Prose wrapped over several template lines → one line per paragraph (cards are also read as raw text); a
    paragraph of table rows (every line starts with "|") keeps its lines."""
    def joined(paragraph: str) -> str:
        lines = [line.strip() for line in paragraph.strip().splitlines()]
        return "\n".join(lines) if all(line.startswith("|") for line in lines) else " ".join(paragraph.split())

    return "\n\n".join(joined(p) for p in re.split(r"\n\s*\n", text.strip()) if p.strip())


def path_name(path, parts: int = 1) -> str:
    """The last `parts` components of a path as given ("../data/helen/testset", 2 → "helen/testset")."""
    return "/".join(Path(str(path)).parts[-parts:]) or str(path)


def stem(path) -> str:
    """A file's name without its suffix ("../faces/face_data.npy" → "face_data")."""
    return Path(str(path)).stem


def slug(text: str) -> str:
    """A model-index dataset type from a name: "Face_Data" → "face-data"."""
    return re.sub(r"[^a-z0-9.]+", "-", str(text).lower()).strip("-")


# A line holding only a tag ({% if %}, {% set %}) leaves nothing in the card; Markdown is not escaped
ENVIRONMENT = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
                                 trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)
ENVIRONMENT.filters.update(number=format_value, paragraphs=paragraphs, path_name=path_name, stem=stem, slug=slug,
                           measured=measured, expected=expected)
ENVIRONMENT.globals.update(estimate=estimate, command_estimates=command_estimates, intervals_note=INTERVALS_NOTE)


def render_model_card(task: str, *, args, metrics: dict, training_command: str, repo_id: str | None = None,
                      base_model: str | None = None, datasets: list[str] | None = None, **facts) -> ModelCard:
    """The card of a model of `task` from `hub_cards/<task>.md`, checked (`check_card`).

    args: the train script's arguments; metrics: what it wrote to metrics.json; training_command: how it was started;
    base_model: the Hub model it builds on; datasets: the Hub dataset ids it was trained on (None when the data did
    not come from the Hub); facts: anything else the task's template reads (e.g. split sizes)."""
    repo_id = repo_id or getattr(args, "hub_model_id", None) or TASKS[task].hub_repo
    context = dict(task=task, repo_id=repo_id, args=args, metrics=metrics, training_command=training_command,
                   base_model=base_model, datasets=datasets, benchmarks=BENCHMARKS.get(task, []), **facts)
    template = ENVIRONMENT.get_template(f"{task}.md")
    try:
        # the template's own settings (results, tags) are read first: the card data in its header is made of them
        settings = template.make_module({**context, "card_data": "", "headlines": []})
        headlines = [r for r in settings.results if r.get("headline")]
        card_data = ModelCardData(
            license=LICENSE, library_name="pytorch", base_model=base_model, datasets=datasets or None,
            tags=["dlhub", "pytorch_model_hub_mixin", task, *settings.tags], model_name=repo_id,
            eval_results=[EvalResult(task_type=r["task_type"], dataset_type=r["dataset_type"],
                                     dataset_name=r["dataset_name"], dataset_split=r["split"], metric_type=r["type"],
                                     metric_name=r["name"], metric_value=round(float(r["value"]), 6),
                                     metric_args=r["estimate"].args() if r.get("estimate") else None)
                          for r in settings.results])
        card = ModelCard(template.render(**context, card_data=card_data.to_yaml(), headlines=headlines))
    except (jinja2.UndefinedError, KeyError, TypeError, ValueError) as err:
        raise ModelCardError(f"hub_cards/{task}.md could not be rendered from these facts: {err}") from None
    card = check_card(card)
    card.headline_gaps = [r["name"] for r in headlines if r.get("estimate") is None]
    return card


def check_card(card) -> ModelCard:
    """Parse a card (a ModelCard or its text) back as the Hub will and check what the Space and the Hub read: licence,
    library, tags (dlhub and the task), base_model and datasets as Hub ids, and a model-index that survives the round
    trip through huggingface_hub's EvalResult with finite numbers. Raises ModelCardError saying what is wrong."""
    try:
        data = ModelCard(str(card)).data
    except (ValueError, yaml.YAMLError) as err:
        raise ModelCardError(f"the model card's metadata cannot be read: {err}") from None
    missing = [field for field in ("license", "library_name", "tags", "model_name", "eval_results")
               if not getattr(data, field, None)]
    if missing:
        raise ModelCardError(f"the model card lacks {', '.join(missing).replace('eval_results', 'model-index')}")
    if "dlhub" not in data.tags or not set(data.tags) & set(TASKS):
        raise ModelCardError(f"the model card's tags {data.tags} must hold 'dlhub' and one of {', '.join(TASKS)}")
    for field in ("base_model", "datasets"):
        value = getattr(data, field, None)
        ids = [value] if isinstance(value, str) else value or []
        if not isinstance(ids, list) or not all(isinstance(i, str) and HUB_ID.fullmatch(i) for i in ids):
            raise ModelCardError(f"the model card's {field} must be Hub ids (ORG/NAME), not {value!r}")
    for result in data.eval_results:
        value = result.metric_value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ModelCardError(f"the model card's {result.metric_name or result.metric_type} is {value!r}: "
                                 "model-index values must be finite numbers")
    try:
        name, results = model_index_to_eval_results(eval_results_to_model_index(data.model_name, data.eval_results))
    except (KeyError, TypeError, ValueError) as err:
        raise ModelCardError(f"the model card's model-index does not survive a round trip: {err}") from None
    # EvalResult's == leaves the value out
    if name != data.model_name or results != data.eval_results or \
            [r.metric_value for r in results] != [r.metric_value for r in data.eval_results]:
        raise ModelCardError("the model card's model-index does not survive a round trip through huggingface_hub")
    return card if isinstance(card, ModelCard) else ModelCard(str(card))


# -- Space cards --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SpaceCard:
    """A Space deployed from `spaces/<name>/`: its title, emoji and one-line description, and the tasks its tabs serve
    (None: every tab)."""

    title: str
    emoji: str
    short_description: str
    description: str
    tasks: tuple[str, ...] | None = None


SPACES = {
    "course": SpaceCard(
        "Deep Learning Course Hub", "🧠", "The course's tasks as models to try, train and pull",
        """Every task of the course in one Space: robust regression, face denoising, traffic-sign classification,
        face landmarks and spoken commands, the Models tab that lists every published model with its card's results,
        and the two calculation exercises."""),
    "regression": SpaceCard(
        "Robust regression (course Task 1)", "📈", "Least squares vs reweighted least squares, live",
        """The course's Task 1: the published regression model, then refit live: ordinary vs iteratively reweighted
        least squares, and logistic regression with and without learning-rate decay.""", ("regression",)),
    "denoiser": SpaceCard(
        "Face denoising (course Task 2)", "🧑", "Add noise to a face, then take it away",
        """The course's Task 2: a convolutional autoencoder removes Gaussian noise from a face photo; the PSNR of the
        noisy and denoised face side by side.""", ("denoiser",)),
    "signs": SpaceCard(
        "Traffic signs (course Task 3)", "🚦", "Name a German traffic sign, with Grad-CAM",
        """The course's Task 3: a GTSRB classifier names a traffic sign (top 5 with probabilities) and shows where
        its evidence is (Grad-CAM).""", ("signs",)),
    "landmarks": SpaceCard(
        "Face landmarks (course Task 4)", "📍", "68 facial landmarks on every face of a photo",
        """The course's Task 4: every face in a photo is found and its 68 landmarks placed by a network fine-tuned
        from ImageNet weights.""", ("landmarks",)),
    "commands": SpaceCard(
        "Voice commands (course Task 5)", "🎙️", "Say yes, no, up, down, left, right, on, off, stop or go",
        """The course's Task 5: record a word in the browser or upload a recording; a frozen speech encoder with a
        small head names the command, says "Not a command word" for any other word and "No command heard" for
        noise.""", ("commands",)),
}
SPACES_DIR = Path(__file__).resolve().parent.parent / "spaces"
SPACE_APP = """from dlhub.space import build_demo
demo = build_demo({tasks})
demo.launch()
"""


def space_models(name: str, org: str | None = None) -> list[tuple[str, str]]:
    """(what, repo id) of the models a Space offers by default in organisation `org` (default: dlhub.tasks.hub_org):
    each task's model, then the bundled baselines of its tasks."""
    from dlhub.tasks import BASELINES, hub_org

    org = org or hub_org()
    tasks = SPACES[name].tasks or tuple(TASKS)
    return [(task, f"{org}/{TASKS[task].hub_name}") for task in tasks] + \
        [(f"{task} ({folder})", f"{org}/{repo}") for folder, (task, repo) in BASELINES.items() if task in tasks]


def render_space_card(name: str, org: str | None = None) -> str:
    """The README.md of the Space `name`: front matter for Hugging Face (listing its models in `org`), then what a
    visitor of its repo reads."""
    from importlib.metadata import version  # not `import gradio`: publishing needs only its version

    space = SPACES[name]
    models = space_models(name, org)
    front = {"title": space.title, "emoji": space.emoji, "colorFrom": "indigo", "colorTo": "blue", "sdk": "gradio",
             "sdk_version": version("gradio"), "python_version": "3.11", "app_file": "app.py", "pinned": False,
             "license": LICENSE, "short_description": space.short_description,
             "models": [repo for _, repo in models], "tags": ["dlhub", "education", "course"]}
    template = ENVIRONMENT.get_template("space.md")
    return template.render(space=space, models=models, front_matter=yaml.safe_dump(
        front, sort_keys=False, allow_unicode=True, width=1000).strip())


def space_app(name: str) -> str:
    """The three-line app.py of the Space `name`."""
    tasks = SPACES[name].tasks
    return SPACE_APP.format(tasks="" if tasks is None else json.dumps(list(tasks)))


def fill_blocks(text: str, blocks: dict[str, str]) -> str:
    """Replace the body of each `<!-- BEGIN name -->…<!-- END name -->` block whose name is in `blocks`."""
    def replace(match: re.Match) -> str:
        if match["name"] not in blocks:
            return match.group(0)
        return match.group(1) + blocks[match["name"]].rstrip("\n") + "\n" + match.group(4)

    return BLOCK.sub(replace, text)


def with_block(text: str, name: str, markdown: str) -> str:
    """`text` with block `name` holding `markdown`; a text without that block gets it as a section of its own."""
    if f"<!-- BEGIN {name} -->" not in text:
        text = text.rstrip("\n") + f"\n\n## Measured by `python {name}`\n\n<!-- BEGIN {name} -->\n<!-- END {name} -->\n"
    return fill_blocks(text, {name: markdown})


def keep_blocks(old_text: str, new_text: str) -> str:
    """A re-rendered card (`new_text`) with the blocks the benchmarks filled in its previous text: re-rendering the
    card of the same weights must not lose what was measured on them."""
    for match in BLOCK.finditer(old_text):
        new_text = with_block(new_text, match["name"], match["body"])
    return new_text


def write_card(folder, text: str) -> Path:
    """README.md of `folder` replaced by `text` atomically."""
    card = Path(folder) / "README.md"
    fd, tmp = tempfile.mkstemp(prefix=".README.", dir=card.parent)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, card)
    return card


def fill_card_block(folder, name: str, markdown: str) -> Path:
    """Write `markdown` into block `name` of the model card in `folder` (README.md), atomically: how a benchmark
    script records what it measured on a trained model, so that no number is copied into a card by hand. A card
    without that block gets it appended as a section of its own."""
    card = Path(folder) / "README.md"
    return write_card(folder, with_block(card.read_text(), name, markdown))


# -- screenshots of the Space, and the models they were taken with -----------------------------------------------------
SCREENSHOTS_DIR = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
MANIFEST_NAME = "manifest.json"
DIGESTED = ("model.safetensors", "metrics.json")  # what a tab shows of a bundled model: its answers and its figures


def model_digests(folder) -> dict[str, str]:
    """{file: sha256} of the files of a bundled model folder that a screenshot shows the effect of."""
    import hashlib

    out = {}
    for name in DIGESTED:
        path = Path(folder) / name
        if path.is_file():
            digest = hashlib.sha256()
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            out[name] = digest.hexdigest()
    return out


def stale_screenshots(root=None, shots=None) -> list[str]:
    """The screenshots (docs/screenshots/<tab>.jpg) not taken with today's bundled models: the models recorded for
    each in manifest.json (scripts/screenshots.py writes it) whose digests differ, and screenshots it does not
    record. One line each."""
    root = Path(root) if root else SCREENSHOTS_DIR.parent.parent
    shots = Path(shots) if shots else root / "docs" / "screenshots"
    manifest_file = shots / MANIFEST_NAME
    try:
        tabs = json.loads(manifest_file.read_text()).get("tabs", {}) if manifest_file.is_file() else {}
    except (OSError, ValueError):
        tabs = {}
    lines = []
    for shot in sorted(shots.glob("*.jpg")):
        tab = shot.stem
        if tab not in tabs:
            lines.append(f"docs/screenshots/{shot.name}: not recorded in docs/screenshots/{MANIFEST_NAME}: run python "
                         f"scripts/screenshots.py {tab}")
            continue
        for folder, digests in tabs[tab].get("models", {}).items():
            if model_digests(root / "checkpoints" / folder) != digests:
                lines.append(f"docs/screenshots/{shot.name}: taken with another checkpoints/{folder} (model.safetensors "
                             f"or metrics.json changed since): run python scripts/screenshots.py {tab}")
    return lines
