"""Checkpointing shared by the training scripts: atomic per-epoch `accelerator.save_state`, and resuming.

A checkpoint folder holds Accelerate's state (model as safetensors, optimizer, RNG states: read back with
weights_only=True), `train_state.json` (epoch, history, best score) and named weight sets as `<name>.safetensors`
(the weights selected on the validation split so far, an EMA of the weights). Nothing is registered for pickling.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import safetensors.torch
import torch

from dlhub.errors import DataError

STATE_FILE = "train_state.json"
KEEP = 2  # checkpoints kept: the newest and the one before it


def save_checkpoint(accelerator, root, epoch: int, state: dict,
                    weights: dict[str, dict[str, torch.Tensor] | None]) -> Path:
    """Write root/epoch_NNNN atomically: every process writes into a temporary folder, then it is renamed."""
    root = Path(root)
    final, tmp = root / f"epoch_{epoch:04d}", root / f".epoch_{epoch:04d}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    if accelerator.is_main_process:
        (tmp / STATE_FILE).write_text(json.dumps({**state, "epoch": epoch}))
        for name, tensors in weights.items():
            if tensors is not None:
                contiguous = {k: v.contiguous() for k, v in tensors.items()}
                safetensors.torch.save_file(contiguous, tmp / f"{name}.safetensors")
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        for old in sorted(root.glob("epoch_*"))[:-KEEP]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def find_checkpoint(root, which: str) -> Path:
    """`which` is 'latest' (the newest under root) or a checkpoint folder."""
    if which != "latest":
        path = Path(which)
        if not (path / STATE_FILE).is_file():
            raise DataError(f"{path} is not a checkpoint folder (no {STATE_FILE}); pass one of {root}/epoch_NNNN "
                            "or 'latest'")
        return path
    found = sorted(Path(root).glob("epoch_*"))
    if not found:
        raise DataError(f"no checkpoint to resume from in {root}: train without --resume_from_checkpoint first")
    return found[-1]


def load_checkpoint(accelerator, path: Path) -> tuple[dict, dict[str, dict[str, torch.Tensor]]]:
    """Restore Accelerate's state from `path`; returns (train_state, {name: weights} of the saved weight sets)."""
    accelerator.load_state(str(path))
    state = json.loads((path / STATE_FILE).read_text())
    weights = {f.stem: safetensors.torch.load_file(str(f)) for f in path.glob("*.safetensors")
               if not f.name.startswith("model")}
    return state, weights


def start_or_resume(accelerator, checkpoint_dir, resume_from, fresh_state: dict) -> tuple[dict, dict, int]:
    """(train state, saved weight sets, first epoch) of this run: a fresh one's, or, when `resume_from` is 'latest', a
    checkpoint folder or a Path found earlier, the checkpoint's, after restoring Accelerate's state from it (model,
    optimizer, scheduler, RNG). Every train script starts its loop from here."""
    if not resume_from:
        return fresh_state, {}, 1
    path = resume_from if isinstance(resume_from, Path) else find_checkpoint(checkpoint_dir, resume_from)
    state, saved = load_checkpoint(accelerator, path)
    accelerator.print(f"resumed from {path} (epoch {state['epoch']})")
    return state, saved, state["epoch"] + 1


def cpu_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of the weights (to keep the best epoch's model)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def keep_best(state: dict, epoch: int, score, model: torch.nn.Module, best_weights, **record):
    """Selection on validation, as every train script does it: when `score` beats the best so far (higher is better;
    a tuple breaks ties in order), the epoch and `record` (e.g. best_accuracy=…) go into `state` and a CPU copy of
    `model`'s weights is returned; otherwise `best_weights` as they were."""
    score = list(score) if isinstance(score, (tuple, list)) else [score]
    if state.get("best_score") is None or score > state["best_score"]:
        state.update(best_score=score, best_epoch=epoch, **record)
        return cpu_state_dict(model)
    return best_weights


def save_and_push(accelerator, model, args, card, metrics: dict, figures: dict) -> Path:
    """The end of every training script (main process): the model folder, then `--push_to_hub` if asked."""
    from dlhub.hub import push_folder, save_model_folder

    folder = save_model_folder(model, args.output_dir, card=card, metrics=metrics, figures=figures)
    accelerator.print(f"saved {folder}")
    if args.push_to_hub:
        accelerator.print(f"pushed to {push_folder(folder, args.hub_model_id, private=args.hub_private_repo)}")
    return folder


@torch.no_grad()
def classify_loader(model, loader, accelerator, inputs=lambda x: x):
    """(probabilities, labels, mean loss) of a classifier over a loader, gathered across processes without the
    padding duplicates; `inputs` turns a batch into the model's input (e.g. uint8 images → floats)."""
    import numpy as np

    model.eval()
    probs, labels, losses = [], [], []
    for batch, target in loader:
        logits = model(inputs(batch))
        loss = torch.nn.functional.cross_entropy(logits, target, reduction="none")
        logits, target, loss = accelerator.gather_for_metrics((logits, target, loss))
        probs.append(torch.softmax(logits.float(), 1).cpu().numpy())
        labels.append(target.cpu().numpy())
        losses.append(loss.float().cpu().numpy())
    return np.concatenate(probs), np.concatenate(labels), float(np.concatenate(losses).mean())


def classification_report(probs, labels, names: list[str], worst: int = 20) -> dict:
    """The final test of a classifier, as every train script reports it: accuracy (the shipped `accuracy` metric),
    errors, the confusion matrix (true × predicted), per-class accuracy, and the most confident mistakes."""
    import numpy as np

    from dlhub.metrics import load_metric

    predicted = probs.argmax(1)
    confusion = np.zeros((len(names), len(names)), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    wrong = np.flatnonzero(predicted != labels)
    return {"accuracy": load_metric("accuracy").compute(predictions=predicted, references=labels)["accuracy"],
            "errors": int(len(wrong)), "confusion": confusion,
            "per_class_accuracy": {n: float(confusion[c, c] / max(confusion[c].sum(), 1)) for c, n in enumerate(names)},
            "worst_mistakes": wrong[np.argsort(-probs[wrong, predicted[wrong]])][:worst]}


def append_epoch_log(checkpoint_dir, epoch: int, history: dict[str, list[float]], **columns) -> None:
    """One row per epoch in `<checkpoint_dir>/log.csv` (header on the first): epoch, any extra columns, and the
    latest value of every history series, so an interrupted run's log continues where it stopped."""
    import csv

    log_file = Path(checkpoint_dir) / "log.csv"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    new_log = not log_file.exists()
    with open(log_file, "a", newline="") as f:
        if new_log:
            csv.writer(f).writerow(["epoch", *columns, *history])
        csv.writer(f).writerow([epoch, *columns.values(), *(round(history[k][-1], 6) for k in history)])


def ema_decay(decay: float, step: int) -> float:
    """The weight average's decay after `step` updates: min(decay, (1 + step) / (10 + step)), the warm-up of
    TensorFlow's ExponentialMovingAverage. Without it the first weights keep a share decay^step of the average (at
    0.998: 90% after 50 steps, 37% after 500), so a short run's average is worse than its raw weights."""
    return min(decay, (1 + step) / (10 + step))


def ema_model(model: torch.nn.Module, decay: float):
    """An exponential moving average of `model`'s weights and buffers (BatchNorm statistics too) with a warmed-up
    decay (`ema_decay`); call `.update_parameters(model)` after each optimizer step and evaluate `.module`.
    A torch AveragedModel: its state_dict (with the update count, so the warm-up resumes) is safetensors-ready."""
    from torch.optim.swa_utils import AveragedModel

    if not 0.0 < decay < 1.0:
        raise DataError(f"EMA decay {decay} is outside (0, 1): use e.g. 0.998, or 0 to turn the average off")

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n_averaged: torch.Tensor) -> None:
        weight = 1.0 - ema_decay(decay, int(n_averaged))
        for average, value in zip(averaged, current):
            if average.is_floating_point():
                average.lerp_(value, weight)
            else:  # integer buffers (BatchNorm's batch counter) follow the model
                average.copy_(value)

    return AveragedModel(model, multi_avg_fn=update, use_buffers=True)
