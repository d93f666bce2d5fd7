"""A task's standard metrics for any model on any dataset its loader reads, computed by the same functions the train
scripts use for their final test (dlhub/evaluation.py), printed as a table and as JSON, and on request added to the
model card's model-index on the Hub.

    python -m dlhub.evaluate signs ORG/NAME --dataset ../shared/data/gtsrb                    # the GTSRB test set
    python -m dlhub.evaluate commands outputs/commands --dataset ../shared/data/speech_commands --json results.json
    python -m dlhub.evaluate landmarks ORG/NAME --dataset ../shared/data/landmarks/helen --push
    python -m dlhub.evaluate denoiser ORG/NAME --dataset faces.npy --people people.npy --split validation
    python -m dlhub.evaluate regression --dataset ../shared/data/task1                       # the default model
    accelerate launch -m dlhub.evaluate signs ORG/NAME --dataset ORG/gtsrb                  # on every GPU
    python -m dlhub.evaluate landmarks checkpoints/landmarks --dataset ../shared/data/landmarks/helen --write-intervals

TASK is one of regression, denoiser, signs, landmarks, commands. SOURCE is a Hub repo id, a local model folder, or
left out for `dlhub.load(TASK)` (the configured Hub repo, else the bundled checkpoint); --revision picks a Hub
revision. --dataset is a local folder or file, or a Hub dataset id, in any layout the task's loader reads (the
train scripts' --dataset); --split (default test) is one of the splits that loader makes. What each task reports:

  signs       accuracy, errors, mean cross-entropy, and the accuracy of each class
  commands    accuracy over the model's labels, accuracy on the ten command words, and for a model with `unknown` /
              `silence` labels the share of those clips rejected (the test split: speakers never in training)
  landmarks   MSE in px² of a 224 × 224 crop, NME (outer eye corners), failure rate (NME > 0.10)
  denoiser    PSNR (dB) of the noisy input and of the denoised output at σ 0.1 / 0.2 / 0.3, with fixed noise draws;
              --people gives person ids for the 60/20/20 split by person, as train/dae.py takes them
  regression  validation MSE of the least-squares and the reweighted curves (Task1_1.npz), and the accuracy of both
              logistic classifiers on --split of Task1_2.npz (test or train)

The table goes to standard output, followed by the JSON (task, model, dataset, command, every metric, the results);
--json PATH writes the JSON to PATH instead. --push adds the results to the model-index of the model card of SOURCE
(a Hub repo id), replacing what it held for the same dataset and split: a commit on main when the repo belongs to
you (your user or one of your organisations), else a pull request, as the Hub's own evaluation PRs are. Each result
names the dataset (its Hub id, or the local folder's name), the dataset's Hub revision (none for local data), and, as
its source, this command with a link to the model revision that was measured.

Every headline figure is reported with its 95% interval and the number of items it is over (`<metric>_ci95`,
`<metric>_n`; dlhub/metrics/intervals.py: Wilson for proportions, a percentile bootstrap of the per-item values for
means). --write-intervals adds those fields to the metrics.json of SOURCE (a local model folder, e.g. a bundled
checkpoint) for the figures it already records, and changes no other field: how the cards, the README table and the
Space's headers of a model trained before the intervals were recorded get them. It refuses (and writes nothing) when a
figure measured now differs from the recorded one: the data or the model is not the one that run measured. The
bundled models (commands records its speaker-grouped cross-validation instead; signs needs none, its test counts give
the Wilson interval):

    python -m dlhub.evaluate regression checkpoints/regression --dataset ../shared/data/task1 --write-intervals
    python -m dlhub.evaluate landmarks checkpoints/landmarks --dataset ../shared/data/landmarks/helen --write-intervals
    python -m dlhub.evaluate denoiser checkpoints/denoiser --dataset ../shared/data/faces/olivetti_faces.npy \
        --write-intervals          # the test split's figures, and those of its entry in "sources"
    python -m dlhub.evaluate denoiser checkpoints/denoiser --dataset ../shared/data/landmarks/helen --write-intervals
    python -m dlhub.evaluate denoiser checkpoints/denoiser --dataset ../shared/data/landmarks/pytorch_tutorial_faces \
        --write-intervals          # a source metrics.json records as "held out": all its faces, as train/dae.py does

For the denoiser, a --dataset that metrics.json lists under "sources" gets its fields in that entry (without the
split prefix); the run's own --dataset gets them at the top level too.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shlex
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from dlhub.cli import one_line_errors, setup_logging
from dlhub.errors import DataError, WrongTaskError
from dlhub.tasks import TASKS, get_task

PROG = "python -m dlhub.evaluate"
TASK_TYPES = {"signs": "image-classification", "commands": "audio-classification", "landmarks": "keypoint-detection",
              "denoiser": "image-to-image"}  # regression: tabular-regression and tabular-classification, per result
DATASET_HINTS = {  # what --dataset may be, per task, for the one-line error of a missing dataset
    "signs": "a GTSRB folder (Kaggle or INI layout) or a folder written by datasets_scripts/gtsrb.py",
    "commands": "a Speech Commands folder, the course's Train/ + Validation/ folder or a saved dataset",
    "landmarks": "a folder of images with .pts files (or trainset/ + testset/), face_landmarks.csv, "
                 "face_landmark.npz or a saved dataset",
    "denoiser": "a .npy of faces (N, H, W), a folder of face images or a saved dataset",
    "regression": "the folder holding Task1_1.npz and Task1_2.npz",
}


@dataclass
class Result:
    """One measured value: a row of the table and, pushed, one model-index result."""

    name: str
    metric_type: str
    value: float
    split: str
    task_type: str
    dataset_name: str
    dataset_type: str


@dataclass
class Evaluation:
    metrics: dict  # every number, named as the train scripts' metrics.json names them
    results: list[Result]  # the headline values: table rows and model-index results
    details: list[tuple[str, object]] = field(default_factory=list)  # printed under the table (counts, per class)


@dataclass(frozen=True)
class DatasetRef:
    source: str  # --dataset as given
    name: str  # its Hub id, or the local folder's (or file's) name
    type: str  # the model-index dataset type: the Hub id, or the local name as a slug
    revision: str | None  # the Hub commit sha of a Hub dataset


class OneLineParser(argparse.ArgumentParser):
    """Argument errors end in one line naming the fix, like every other bad input."""

    def error(self, message: str):
        raise DataError(f"{message} (see `{PROG} --help`)")


def parse_args(argv=None) -> argparse.Namespace:
    p = OneLineParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("task", help=", ".join(sorted(TASKS)))
    p.add_argument("source", nargs="?", default=None,
                   help="ORG/NAME on the Hub or a local model folder; default: dlhub.load(task)")
    p.add_argument("--dataset", "--data-dir", "--data", dest="dataset", required=True,
                   help="a local folder or file, or a Hub dataset id (what the task's train script reads)")
    p.add_argument("--split", default="test", help="default: test")
    p.add_argument("--revision", default=None, help="the Hub revision of SOURCE (branch, tag or commit sha)")
    p.add_argument("--people", default=None, help="denoiser: .npy of one person id per face (split by person)")
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--json", default=None, help="write the JSON here instead of printing it")
    p.add_argument("--push", action="store_true", help="add the results to SOURCE's model card on the Hub")
    p.add_argument("--write-intervals", "--write_intervals", dest="write_intervals", action="store_true",
                   help="add the 95%% intervals and sample sizes of the figures SOURCE's metrics.json records to it")
    args = p.parse_args(argv)
    get_task(args.task)  # an unknown task: one line naming the choices
    if args.batch_size < 1:
        raise DataError(f"--batch_size {args.batch_size}: pass 1 or more")
    if args.push and (args.source is None or Path(args.source).exists()):  # before any work: there is no card to update
        where = "the default model" if args.source is None else f"the local folder {args.source}"
        raise DataError(f"--push updates the model card of a Hub repo, and SOURCE is {where}: pass SOURCE as "
                        "ORG/NAME")
    if args.write_intervals and (args.source is None or not (Path(args.source) / "metrics.json").is_file()):
        raise DataError("--write-intervals adds to the metrics.json of a local model folder: pass SOURCE as a folder "
                        "that holds one (e.g. checkpoints/landmarks)")
    if args.people is not None and args.task != "denoiser":
        raise DataError("--people is for the denoiser's split by person: leave it out for " + args.task)
    return args


# -- model and data ------------------------------------------------------------------------------------------------
def load_model(task: str, source, revision):
    """dlhub.load; a model of another task is refused with the command that evaluates it."""
    import dlhub

    try:
        return dlhub.load(task, source, revision=revision)
    except WrongTaskError as err:
        if err.task is None or source is None:
            raise
        raise DataError(f"{err}: run `{PROG} {err.task} {source} --dataset …` instead") from None


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-") or "local"


def describe_dataset(source: str) -> DatasetRef:
    """How results name --dataset; the revision of a Hub dataset is looked up once it has been read."""
    from dlhub.data import is_hub_id

    if is_hub_id(source):
        return DatasetRef(source, source, source, None)
    name = Path(source).resolve().name
    return DatasetRef(source, name, slug(name), None)


def hub_dataset_revision(repo_id: str) -> str | None:
    """The commit sha of the Hub dataset's main branch, as `datasets` just read it (None offline)."""
    from huggingface_hub import HfApi, constants

    if constants.HF_HUB_OFFLINE:
        return None
    try:
        return HfApi().dataset_info(repo_id).sha
    except Exception:  # the data was read from the HF cache and the Hub does not answer now: no revision to name
        return None


def pick_split(data, split: str, source: str, what: str = ""):
    if split not in data:
        raise DataError(f"{source}{what} has no {split!r} split (it has {', '.join(data)}): pass --split with one of "
                        "them")
    return data[split]


def loader_of(*tensors, batch_size: int) -> DataLoader:
    return DataLoader(TensorDataset(*tensors), batch_size=batch_size)


# -- one evaluator per task ----------------------------------------------------------------------------------------
def evaluate_signs(model, args, accelerator, dataset: DatasetRef) -> Evaluation:
    from dlhub.data.gtsrb import load_gtsrb, to_tensors
    from dlhub.evaluation import signs_test

    part = pick_split(load_gtsrb(args.dataset), args.split, args.dataset)
    names = part.features["label"].names
    if len(names) != len(model.labels):
        raise DataError(f"{args.dataset} has {len(names)} classes, the model {len(model.labels)}: pass a GTSRB "
                        "dataset with the model's classes")
    images, labels = to_tensors(part, model.input_size)
    model, loader = accelerator.prepare(model, loader_of(images, labels, batch_size=args.batch_size))
    metrics, _ = signs_test(model, loader, accelerator, args.split)
    s = args.split
    row = dict(split=s, task_type=TASK_TYPES["signs"], dataset_name=dataset.name, dataset_type=dataset.type)
    return Evaluation(metrics, [Result(f"{s} accuracy", "accuracy", metrics[f"{s}_accuracy"], **row)],
                      [("images", metrics[f"{s}_images"]), ("errors", metrics[f"{s}_errors"]),
                       ("mean cross-entropy", metrics[f"{s}_loss"])]
                      + [(f"accuracy: {n}", a) for n, a in metrics["per_class_accuracy"].items()])


def evaluate_landmarks(model, args, accelerator, dataset: DatasetRef) -> Evaluation:
    from dlhub.data.landmarks import load_landmarks
    from dlhub.evaluation import LANDMARK_FAILURE_NME, landmark_tensors, landmarks_test

    part = pick_split(load_landmarks(args.dataset), args.split, args.dataset)
    images, points = landmark_tensors(part, model.input_size)
    model, loader = accelerator.prepare(model, loader_of(images, points, batch_size=args.batch_size))
    metrics, _ = landmarks_test(model, loader, accelerator, args.split)
    s = args.split
    row = dict(split=s, task_type=TASK_TYPES["landmarks"], dataset_name=dataset.name, dataset_type=dataset.type)
    failure = f"{s}_failure_rate_nme_{LANDMARK_FAILURE_NME:.2f}"
    return Evaluation(metrics, [
        Result(f"{s} MSE (px² at 224×224)", "mse", metrics[f"{s}_mse_px2"], **row),
        Result(f"{s} NME (outer eye corners)", "nme", metrics[f"{s}_nme"], **row),
        Result(f"{s} failure rate (NME > {LANDMARK_FAILURE_NME})", "failure_rate", metrics[failure], **row),
    ], [("faces", metrics[f"{s}_faces"])])


def held_out_source(args) -> bool:
    """--write-intervals for a denoiser whose metrics.json records --dataset as a source held out of training."""
    if not getattr(args, "write_intervals", False):
        return False
    recorded = json.loads((Path(args.source) / "metrics.json").read_text())
    entry = recorded.get("sources", {}).get(Path(args.dataset).name)
    return isinstance(entry, dict) and entry.get("role") == "held out"


def evaluate_denoiser(model, args, accelerator, dataset: DatasetRef) -> Evaluation:
    from dlhub.data.faces import faces_array, load_faces
    from dlhub.evaluation import DENOISE_TEST_SIGMAS, denoiser_test, face_tensor

    if held_out_source(args):  # measured as train/dae.py measured it: all the faces of a source it never trained on
        from dlhub.data.faces import held_out_faces

        clean = face_tensor(held_out_faces(args.dataset), model.image_size)
    else:
        part = pick_split(load_faces(args.dataset, people=args.people), args.split, args.dataset)
        clean = face_tensor(faces_array(part), model.image_size)
    model = accelerator.prepare(model)
    metrics, _ = denoiser_test(model, clean, accelerator, args.split, batch_size=args.batch_size)
    s = args.split
    row = dict(split=s, task_type=TASK_TYPES["denoiser"], dataset_name=dataset.name, dataset_type=dataset.type)
    results = []
    for sigma in DENOISE_TEST_SIGMAS:
        results += [Result(f"PSNR noisy input, σ = {sigma}", "psnr", metrics[f"{s}_psnr_noisy_{sigma}"], **row),
                    Result(f"PSNR denoised, σ = {sigma}", "psnr", metrics[f"{s}_psnr_denoised_{sigma}"], **row)]
    return Evaluation(metrics, results, [("images", len(clean))]
                      + [(f"PSNR gain (dB), σ = {sigma}", metrics[f"{s}_psnr_gain_{sigma}"])
                         for sigma in DENOISE_TEST_SIGMAS])


def evaluate_commands(model, args, accelerator, dataset: DatasetRef) -> Evaluation:
    from dlhub import audio
    from dlhub.data.speech_commands import load_speech_commands
    from dlhub.evaluation import command_features, commands_test

    part = pick_split(load_speech_commands(args.dataset), args.split, args.dataset)
    # dataset labels → the model's label indices, by name; clips of a label the model lacks have no right answer
    to_model = np.array([model.labels.index(n) if n in model.labels else -1 for n in part.features["label"].names])
    labels = to_model[np.asarray(part["label"], dtype=np.int64)]
    kept = np.flatnonzero(labels >= 0)
    if not len(kept):
        raise DataError(f"{args.dataset} ({args.split}) holds no clips of the model's labels "
                        f"({', '.join(model.labels)})")
    part = part.select(kept) if len(kept) < len(labels) else part
    n_labels = len(model.labels)
    features = command_features(model, audio.decode_clips(part, model.window), batch_size=args.batch_size,
                                show=accelerator.is_main_process)
    model, loader = accelerator.prepare(model, loader_of(features, torch.from_numpy(labels[kept]),
                                                         batch_size=args.batch_size))
    metrics, _ = commands_test(model, loader, accelerator, args.split)
    s = args.split
    metrics[f"{s}_speakers"] = len(set(part["speaker"]) - {""}) if "speaker" in part.column_names else 0
    row = dict(split=s, task_type=TASK_TYPES["commands"], dataset_name=dataset.name, dataset_type=dataset.type)
    results = [Result(f"{s} accuracy ({n_labels} labels)", "accuracy", metrics[f"{s}_accuracy"], **row)]
    if f"{s}_command_accuracy" in metrics:
        results.append(Result(f"{s} accuracy on the ten command words", "accuracy", metrics[f"{s}_command_accuracy"],
                              **row))
    for label in ("unknown", "silence"):
        if f"{s}_{label}_rejected" in metrics:
            results.append(Result(f"{s} {label} clips rejected", "rejection_rate", metrics[f"{s}_{label}_rejected"],
                                  **row))
    details = [("clips", metrics[f"{s}_clips"]), ("speakers", metrics[f"{s}_speakers"]),
               ("errors", metrics[f"{s}_errors"]), ("mean cross-entropy", metrics[f"{s}_loss"])]
    if len(kept) < len(labels):
        metrics[f"{s}_clips_outside_labels"] = int(len(labels) - len(kept))
        details.append(("clips left out: their label is not one of the model's", len(labels) - len(kept)))
    details += [(f"accuracy: {n}", a) for n, a in metrics["per_word_accuracy"].items()]
    return Evaluation(metrics, results, details)


def evaluate_regression(model, args, accelerator, dataset: DatasetRef) -> Evaluation:
    from dlhub.data.task1 import CLASSIFICATION_FILE, REGRESSION_FILE, load_task1
    from dlhub.evaluation import regression_test

    regression, classification = load_task1(args.dataset)
    pick_split(classification, args.split, args.dataset, f"/{CLASSIFICATION_FILE}")
    metrics = regression_test(model, regression, classification, (args.split,))
    s = args.split
    mse = dict(split="validation", task_type="tabular-regression", dataset_name=f"{dataset.name}/{REGRESSION_FILE}",
               dataset_type=dataset.type)
    accuracy = dict(split=s, task_type="tabular-classification",
                    dataset_name=f"{dataset.name}/{CLASSIFICATION_FILE}", dataset_type=dataset.type)
    return Evaluation(metrics, [
        Result("validation MSE, OLS", "mse", metrics["ols_val_mse"], **mse),
        Result("validation MSE, reweighted", "mse", metrics["irls_val_mse"], **mse),
        Result(f"{s} accuracy, constant lr", "accuracy", metrics[f"logistic_{s}_accuracy"], **accuracy),
        Result(f"{s} accuracy, lr decay", "accuracy", metrics[f"logistic_decay_{s}_accuracy"], **accuracy),
    ])


EVALUATORS = {"signs": evaluate_signs, "landmarks": evaluate_landmarks, "denoiser": evaluate_denoiser,
              "commands": evaluate_commands, "regression": evaluate_regression}


# -- output ----------------------------------------------------------------------------------------------------------
def format_number(value) -> str:
    if isinstance(value, (int, np.integer)):
        return f"{value:,}"
    return f"{value:.4f}" if abs(value) < 100 else f"{value:.2f}"


def table(model, dataset: DatasetRef, evaluation: Evaluation, command: str) -> str:
    width = max(len(r.name) for r in evaluation.results)
    lines = [f"model:   {model.source}", f"dataset: {dataset.name}" + (f" (revision {dataset.revision})"
                                                                      if dataset.revision else ""),
             f"command: {command}", "", f"{'metric':<{width}}  {'split':<10}  value", "-" * (width + 20)]
    lines += [f"{r.name:<{width}}  {r.split:<10}  {format_number(r.value)}" for r in evaluation.results]
    if evaluation.details:
        lines.append("")
        detail_width = max(len(name) for name, _ in evaluation.details)
        lines += [f"{name:<{detail_width}}  {format_number(value)}" for name, value in evaluation.details]
    return "\n".join(lines)


def finite_or_none(value):
    """JSON has no NaN: a metric that is undefined here (no clips of a class) is written as null."""
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def report(task: str, model, dataset: DatasetRef, split: str, evaluation: Evaluation, command: str) -> dict:
    origin = model.origin
    return finite_or_none({
        "task": task,
        "model": {"source": model.source, "kind": origin.kind, "repo_id": origin.repo_id, "commit": origin.commit},
        "dataset": {"source": dataset.source, "name": dataset.name, "type": dataset.type,
                    "revision": dataset.revision, "split": split},
        "command": command,
        "metrics": evaluation.metrics,
        "results": [asdict(r) for r in evaluation.results],
    })


# -- the model card's model-index --------------------------------------------------------------------------------------
def eval_results(results: list[Result], dataset: DatasetRef, command: str, model_url: str):
    """The model-index entries of the results: finite values only, as measured (not rounded)."""
    from huggingface_hub import EvalResult

    return [EvalResult(task_type=r.task_type, dataset_type=r.dataset_type, dataset_name=r.dataset_name,
                       dataset_split=r.split, dataset_revision=dataset.revision, metric_type=r.metric_type,
                       metric_name=r.name, metric_value=float(r.value), source_name=command, source_url=model_url)
            for r in results if math.isfinite(r.value)]


def merge_results(existing: list, new: list) -> list:
    """`existing` without the results on the datasets and splits measured now, then the new results. The Hub groups
    model-index results by task, dataset type, config, split and revision, and gives each group one dataset name and
    one source: an older result left in a group of the new ones would be shown as measured by this command."""
    measured = {r.unique_identifier for r in new}
    return [r for r in existing or [] if r.unique_identifier not in measured] + list(new)


def push_results(model, results: list[Result], dataset: DatasetRef, command: str) -> tuple[str, bool]:
    """Add the results to the model card of the Hub repo the model was loaded from: (URL, whether it is a pull
    request). A commit on main when the user owns the repo, else a pull request; either starts from the revision
    that was measured."""
    from huggingface_hub import HfApi, ModelCard, ModelCardData, constants
    from huggingface_hub.errors import HfHubHTTPError

    origin = model.origin
    if origin.kind != "hub":
        raise DataError(f"--push updates the model card of a Hub repo, and this model is the {model.source}: pass "
                        "SOURCE as ORG/NAME")
    repo_id, commit = origin.repo_id, origin.commit
    api = HfApi()
    try:
        me = api.whoami()
    except Exception:
        raise DataError(f"--push needs a Hub token of yours: run `hf auth login` or set HF_TOKEN (the Hub at "
                        f"{constants.ENDPOINT} did not accept the current one)") from None
    owners = {me.get("name"), *(org.get("name") for org in me.get("orgs") or [])}
    as_pr = repo_id.split("/")[0] not in owners
    if not as_pr:
        main = api.model_info(repo_id).sha
        if main != commit:
            raise DataError(f"the results are for revision {commit} of {repo_id}, but its main is now {main}: "
                            "evaluate main again before --push")
    card_file = Path(model.folder) / "README.md"
    try:
        card = ModelCard.load(card_file) if card_file.is_file() else ModelCard(
            f"---\n{ModelCardData().to_yaml()}\n---\n\n# {repo_id}\n")
    except Exception as err:  # a card whose metadata does not parse: say so rather than overwrite it
        raise DataError(f"the model card of {repo_id} at {commit} cannot be read ({err}): fix its metadata first"
                        ) from None
    new = eval_results(results, dataset, command, f"{constants.ENDPOINT}/{repo_id}/tree/{commit}")
    card.data.eval_results = merge_results(card.data.eval_results, new)
    card.data.model_name = card.data.model_name or repo_id
    message = f"Evaluation results on {dataset.name} ({results[0].split})"
    description = f"Measured with `{command}` on revision {commit}."

    def push(create_pr: bool):
        return card.push_to_hub(repo_id, commit_message=message, commit_description=description,
                                create_pr=create_pr, parent_commit=commit)

    try:
        try:
            info = push(as_pr)
        except HfHubHTTPError as err:  # an organisation member who may not write to main: a pull request instead
            if as_pr or err.response is None or err.response.status_code != 403:
                raise
            as_pr, info = True, push(True)
    except HfHubHTTPError as err:
        status = err.response.status_code if err.response is not None else type(err).__name__
        if status == 412:  # the parent commit is no longer the head of main
            raise DataError(f"{repo_id} changed while the results were pushed: evaluate its main again") from None
        raise DataError(f"could not update the model card of {repo_id} on the Hub ({status}: "
                        f"{str(err).splitlines()[0]})") from None
    return (getattr(info, "pr_url", None) or str(info)) if as_pr else str(info), as_pr


# -- intervals into a model folder's metrics.json ---------------------------------------------------------------------
INTERVAL_SUFFIXES = ("_ci95", "_n")


def _same(recorded, measured) -> bool:
    return isinstance(recorded, (int, float)) and abs(recorded - measured) <= 5e-4 * max(1.0, abs(recorded))


def with_intervals(recorded: dict, measured: dict, split: str, source_name: str) -> tuple[dict, list[str]]:
    """(recorded with the interval fields of every figure it records that was measured now, the names written). A
    figure is found at the top level under its measured name, and in `recorded["sources"][source_name]` without the
    split prefix; each must equal what was measured (else DataError: nothing is written)."""
    out = json.loads(json.dumps(recorded))
    entry = out.get("sources", {}).get(source_name)
    entry = entry if isinstance(entry, dict) else None
    written, differ = [], []
    for key in [k[:-len("_ci95")] for k in measured if k.endswith("_ci95")]:
        fields = {suffix: measured[key + suffix] for suffix in INTERVAL_SUFFIXES}
        places = [(out, key)]
        if entry is not None and split and key.startswith(f"{split}_"):
            places.append((entry, key[len(split) + 1:]))
        places = [(place, name) for place, name in places if isinstance(place.get(name), (int, float))]
        matching = [(place, name) for place, name in places if _same(place[name], measured[key])]
        if places and not matching:  # (a source's figures differ from the top level's, which are another source's)
            differ.append(f"{places[0][1]} {places[0][0][places[0][1]]:.6g} recorded, {measured[key]:.6g} measured")
        for place, name in matching:
            keys_sorted = list(place) == sorted(place)
            place.update({name + suffix: value for suffix, value in fields.items()})
            if keys_sorted:  # as the train scripts write it (sort_keys); an unsorted dict keeps its order
                ordered = dict(sorted(place.items()))
                place.clear()
                place.update(ordered)
            written.append(name if place is out else f"sources.{source_name}.{name}")
    if differ:
        raise DataError(f"not the run that metrics.json records ({'; '.join(differ[:3])}): pass the model and the data "
                        "that run measured; nothing was written")
    if not written:
        raise DataError(f"metrics.json records none of the figures measured on {source_name} ({split}): nothing to "
                        "write")
    return out, written


def write_intervals(folder: Path, measured: dict, split: str, source_name: str) -> list[str]:
    """Add the interval fields of what was measured to `folder`/metrics.json (see with_intervals), atomically, in the
    train scripts' format."""
    import os
    import tempfile

    path = Path(folder) / "metrics.json"
    text = path.read_text()
    recorded = json.loads(text)
    updated, written = with_intervals(recorded, finite_or_none(measured), split, source_name)
    fd, tmp = tempfile.mkstemp(prefix=".metrics.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(updated, indent=2) + ("\n" if text.endswith("\n") else ""))
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return written


# -- entry point -----------------------------------------------------------------------------------------------------
def main(argv=None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    from accelerate import Accelerator

    from dlhub.data import is_hub_id

    if not Path(args.dataset).exists() and not is_hub_id(args.dataset):
        raise DataError(f"no dataset at {args.dataset}: pass --dataset with {DATASET_HINTS[args.task]}, or a Hub "
                        "dataset id (ORG/NAME)")
    accelerator = Accelerator()
    setup_logging(accelerator.is_main_process)
    model = load_model(args.task, args.source, args.revision)
    dataset = describe_dataset(args.dataset)
    evaluation = EVALUATORS[args.task](model, args, accelerator, dataset)
    if is_hub_id(args.dataset):  # looked up after reading: the revision `datasets` has just read
        dataset = replace(dataset, revision=hub_dataset_revision(args.dataset))
    command = f"{PROG} {shlex.join(argv)}"
    out = report(args.task, model, dataset, args.split, evaluation, command)
    if accelerator.is_main_process:
        print(table(model, dataset, evaluation, command))
        text = json.dumps(out, indent=2, ensure_ascii=False)
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(text + "\n")
            print(f"\nwrote {args.json}")
        else:
            print("\n" + text)
        if args.write_intervals:
            written = write_intervals(Path(args.source), evaluation.metrics, args.split, Path(args.dataset).name)
            print(f"\nwrote the 95% intervals of {len(written)} figures to {Path(args.source) / 'metrics.json'}: "
                  + ", ".join(written))
            out["intervals_written"] = written
        if args.push:
            url, as_pr = push_results(model, evaluation.results, dataset, command)
            print(f"{'opened a pull request' if as_pr else 'committed the results to main'}: {url}")
            out["pushed"] = {"url": url, "pull_request": as_pr}
    return out


if __name__ == "__main__":
    with one_line_errors(__file__):
        main()
