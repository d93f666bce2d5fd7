"""Traffic-sign classifier on GTSRB (course Task 3): train, select on validation, test, save and publish.

    python datasets_scripts/gtsrb.py --dataset ../shared/data/gtsrb        # once: writes data/gtsrb
    accelerate launch train/gtsrb.py                                         # the default run (CPU, GPU or many)
    accelerate launch train/gtsrb.py --resume_from_checkpoint latest         # after an interruption
    accelerate launch --mixed_precision bf16 train/gtsrb.py --push_to_hub --hub_model_id ORG/NAME

--dataset: a folder written by datasets_scripts/gtsrb.py, a raw GTSRB folder (Kaggle or INI layout) or a Hub dataset
id; by default data/gtsrb when it exists, else the public Hub dataset tanganke/gtsrb. The validation split holds whole
tracks (a Hub copy without track ids: 10% of each class's images, stratified, as the log says); the test split is only
evaluated at the end. The weights are averaged (EMA, warmed up); the average and the raw weights are both validated
each epoch, and the better is kept.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader, TensorDataset
from tqdm.auto import tqdm

from dlhub.cards import render_model_card
from dlhub.cli import (add_data_arguments, add_run_arguments, check_run_arguments, command_line, one_line_errors,
                       setup_logging)
from dlhub.data import is_hub_id
from dlhub.data.gtsrb import DEFAULT_HUB_ID, DEFAULT_LOCAL, default_source, load_gtsrb, to_tensors
from dlhub.errors import DataError
from dlhub.evaluation import signs_test
from dlhub.plots import plot_confusion_matrix, plot_history, plot_image_grid
from dlhub.signs import SignClassifier
from dlhub.training import (append_epoch_log, classify_loader, ema_model, keep_best, save_and_push, save_checkpoint,
                            start_or_resume)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_arguments(p, output_dir="outputs/gtsrb",
                       dataset_help=f"default: {DEFAULT_LOCAL} when it exists, else the Hub dataset {DEFAULT_HUB_ID}")
    p.add_argument("--blocks", type=int, nargs="+", default=[32, 64, 128], help="ConvBlock widths (at least two)")
    p.add_argument("--input_size", type=int, default=40)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch_size", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--weight_decay", type=float, default=5e-4)
    p.add_argument("--label_smoothing", type=float, default=0.1)
    p.add_argument("--ema_decay", type=float, default=0.998,
                   help="the weight average's decay, warmed up as min(decay, (1 + step) / (10 + step)); 0: off")
    p.add_argument("--max_epochs_this_run", type=int, default=None,
                   help="stop after this many epochs (checkpointed) and resume later: for time-limited machines")
    add_run_arguments(p)
    args = p.parse_args(argv)
    if len(args.blocks) < 2:
        raise DataError("--blocks needs at least two widths, e.g. --blocks 32 64 128")
    if args.input_size % 2 ** len(args.blocks):
        raise DataError(f"--input_size must be divisible by {2 ** len(args.blocks)} for {len(args.blocks)} blocks")
    if not 0 <= args.ema_decay < 1:
        raise DataError(f"--ema_decay {args.ema_decay} is outside [0, 1): use e.g. 0.998, or 0 for no average")
    check_run_arguments(args)
    if args.dataset is not None and not Path(args.dataset).exists() and not is_hub_id(args.dataset):
        raise DataError(f"no dataset at {args.dataset}: run `python datasets_scripts/gtsrb.py --dataset "
                        "PATH/TO/GTSRB` first, or pass --dataset with a GTSRB folder or a Hub dataset id")
    return args


def as_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images as stored → the model's [0, 1] floats."""
    return images.float() / 255.0


def augment(x: torch.Tensor) -> torch.Tensor:
    """Per-image small affine (rotation ±12°, scale 0.88–1.12, shift ±8%, shear ±6°) and colour jitter.
    Never a flip: a mirrored 'turn left' sign is a 'turn right' sign."""
    b, device = x.shape[0], x.device
    u = lambda lo, hi: torch.empty(b, device=device).uniform_(lo, hi)  # noqa: E731
    angle, shear = u(-12, 12) * math.pi / 180, u(-6, 6) * math.pi / 180
    scale, tx, ty = u(0.88, 1.12), u(-0.08, 0.08) * 2, u(-0.08, 0.08) * 2
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin + torch.tan(shear) * cos, tx], 1),
                         torch.stack([sin, cos, ty], 1)], 1)
    grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    x = torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    gray = x.mean(dim=1, keepdim=True)
    x = gray + (x - gray) * u(0.6, 1.4).view(-1, 1, 1, 1)  # saturation
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = mean + (x - mean) * u(0.7, 1.3).view(-1, 1, 1, 1)  # contrast
    return (x * u(0.7, 1.3).view(-1, 1, 1, 1)).clamp(0, 1)  # brightness


def prediction_grid(images: torch.Tensor, probs: np.ndarray, labels: np.ndarray, names: list[str], picks, title: str):
    captions, colors = [], []
    for i in picks:
        pred = int(probs[i].argmax())
        captions.append(f"true: {names[labels[i]][:24]}\npred: {names[pred][:24]} ({probs[i][pred]:.2f})")
        colors.append("green" if pred == labels[i] else "red")
    shown = images[list(picks)].permute(0, 2, 3, 1).numpy() / 255.0
    return plot_image_grid(shown, captions, colors, title)


def main(args: argparse.Namespace) -> dict:
    accelerator = Accelerator()
    setup_logging(accelerator.is_main_process)
    set_seed(args.seed)
    start = time.time()

    # Data: HF DatasetDict → uint8 tensors at the model's input size (decoded once, cached)
    source = args.dataset or default_source()
    data = load_gtsrb(args.dataset)
    names = data["train"].features["label"].names
    if "test" not in data:
        raise DataError(f"{source} has no test split: the final evaluation needs it")
    tensors = {split: to_tensors(data[split], args.input_size, args.checkpoint_dir) for split in data}
    if args.max_train_samples:
        keep = torch.randperm(len(tensors["train"][0]), generator=torch.Generator().manual_seed(0))
        tensors["train"] = tuple(t[keep[: args.max_train_samples]] for t in tensors["train"])
    loaders = {split: DataLoader(TensorDataset(*tensors[split]), batch_size=args.batch_size,
                                 shuffle=split == "train", drop_last=split == "train") for split in tensors}

    # Model, optimiser, schedule, and an exponential moving average of the weights (its decay warms up, so that the
    # random initial weights do not dominate a short run's average)
    model = SignClassifier(blocks=args.blocks, input_size=args.input_size, labels=names)
    n_params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    # Accelerate steps a prepared scheduler once per process per call: count the batches of the unsharded loader
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, pct_start=0.15,
                                                    total_steps=args.epochs * max(len(loaders["train"]), 1))
    model, optimizer, scheduler, train_loader, val_loader, test_loader = accelerator.prepare(
        model, optimizer, scheduler, loaders["train"], loaders["validation"], loaders["test"])
    ema = ema_model(accelerator.unwrap_model(model), args.ema_decay) if args.ema_decay else None
    # Both are validated every epoch and the better is kept (the average on a tie): early in a run the average can
    # still trail the weights it averages, and a short run must never be worse for having one
    weight_sets = {"average": ema.module} if ema is not None else {}
    weight_sets["raw"] = accelerator.unwrap_model(model)

    checkpoints = Path(args.checkpoint_dir)
    state, saved, first_epoch = start_or_resume(accelerator, checkpoints, args.resume_from_checkpoint, {
        "history": {k: [] for k in ("train_loss", "train_accuracy", "val_loss", "val_accuracy")},
        "best_accuracy": -1.0, "best_epoch": 0, "best_is_average": False})
    best_weights = saved.get("best_model")
    if ema is not None and "ema" in saved:
        ema.load_state_dict(saved["ema"])

    last_epoch = args.epochs if args.max_epochs_this_run is None else min(args.epochs, first_epoch - 1 +
                                                                              args.max_epochs_this_run)
    for epoch in range(first_epoch, last_epoch + 1):
        model.train()
        correct = total = 0
        loss_sum = 0.0
        bar = tqdm(train_loader, desc=f"epoch {epoch}/{args.epochs}", disable=not accelerator.is_main_process,
                   leave=False)
        for images, target in bar:
            x = augment(as_float(images))
            with accelerator.autocast():
                logits = model(x)
                loss = torch.nn.functional.cross_entropy(logits, target, label_smoothing=args.label_smoothing)
            optimizer.zero_grad()
            accelerator.backward(loss)
            optimizer.step()
            scheduler.step()
            if ema is not None:
                ema.update_parameters(accelerator.unwrap_model(model))
            loss_sum += loss.item() * len(target)
            correct += (logits.argmax(1) == target).sum().item()
            total += len(target)
            bar.set_postfix(loss=f"{loss.item():.3f}")
        stats = torch.tensor([loss_sum, correct, total], device=accelerator.device)
        loss_sum, correct, total = accelerator.reduce(stats, reduction="sum").tolist()
        with torch.random.fork_rng(devices=[]):  # each loader pass draws a seed: validating must not shift training
            scores = {name: classify_loader(weights, val_loader, accelerator, as_float)
                      for name, weights in weight_sets.items()}
        accuracies = {name: float((probs.argmax(1) == labels).mean()) for name, (probs, labels, _) in scores.items()}
        kept = max(accuracies, key=accuracies.get)
        probs, labels, val_loss = scores[kept]
        val_accuracy = accuracies[kept]
        history = state["history"]
        for key, value in (("train_loss", loss_sum / total), ("train_accuracy", correct / total),
                           ("val_loss", val_loss), ("val_accuracy", val_accuracy)):
            history[key].append(value)
        best_weights = keep_best(state, epoch, val_accuracy, weight_sets[kept], best_weights, best_accuracy=val_accuracy,
                                 best_is_average=kept == "average")
        if accelerator.is_main_process:
            accelerator.print(f"epoch {epoch}: train loss {history['train_loss'][-1]:.4f} acc "
                              f"{history['train_accuracy'][-1]:.4f} | val loss {val_loss:.4f} acc {val_accuracy:.4f}"
                              + (f" ({kept} weights; raw {accuracies['raw']:.4f}, average {accuracies['average']:.4f})"
                                 if ema else ""))
            append_epoch_log(checkpoints, epoch, history)
            picks = np.random.default_rng(epoch).choice(len(labels), size=min(20, len(labels)), replace=False)
            (checkpoints / "val_predictions").mkdir(exist_ok=True)  # the course's prediction-visualisation callback
            prediction_grid(tensors["validation"][0], probs, labels, names, picks,
                            f"validation predictions after epoch {epoch}").savefig(
                checkpoints / "val_predictions" / f"epoch_{epoch:04d}.png", dpi=90)
        save_checkpoint(accelerator, checkpoints, epoch, state,
                        {"best_model": best_weights, "ema": ema.state_dict() if ema else None})

    if last_epoch < args.epochs:
        accelerator.print(f"stopped after epoch {last_epoch} of {args.epochs}: continue with "
                          "--resume_from_checkpoint latest")
        return {}

    # Test: the weights with the best validation accuracy, on the whole official test set
    final = SignClassifier(blocks=args.blocks, input_size=args.input_size, labels=names)
    final.load_state_dict(best_weights)
    final = accelerator.prepare(final)
    test_metrics, report = signs_test(final, test_loader, accelerator)  # as `python -m dlhub.evaluate signs` does
    probs, labels, accuracy, confusion = report["probs"], report["labels"], report["accuracy"], report["confusion"]
    metrics = {**test_metrics, "val_accuracy": state["best_accuracy"], "best_epoch": state["best_epoch"],
               "best_is_average": state.get("best_is_average", bool(ema)),
               "epochs": args.epochs, "parameters": n_params, "wall_time_s": round(time.time() - start, 1)}
    accelerator.print({k: v for k, v in metrics.items() if k != "per_class_accuracy"})
    val_probs, val_labels, _ = classify_loader(final, val_loader, accelerator, as_float)  # all processes join

    if accelerator.is_main_process:
        figures = {
            "training_curves.png": plot_history(state["history"], {"loss": ["train_loss", "val_loss"],
                                                                   "accuracy": ["train_accuracy", "val_accuracy"]},
                                                best_epoch=state["best_epoch"]),
            "confusion_matrix.png": plot_confusion_matrix(confusion, names,
                                                          f"test set: {len(labels):,} images, accuracy {accuracy:.4f}"),
            "worst_mistakes.png": prediction_grid(tensors["test"][0], probs, labels, names, report["worst_mistakes"],
                                                  "the test set's most confident mistakes"),
            "val_predictions.png": prediction_grid(
                tensors["validation"][0], val_probs, val_labels, names,
                np.random.default_rng(0).choice(len(val_labels), min(20, len(val_labels)), replace=False),
                "validation predictions (final model)"),
        }
        save_and_push(accelerator, accelerator.unwrap_model(final), args, model_card(args, metrics, source, data),
                      metrics, figures)
    accelerator.wait_for_everyone()
    return metrics


def model_card(args, metrics: dict, source: str, dataset, training_command: str | None = None):
    """source: where GTSRB was read (a folder or a Hub dataset id); dataset: the DatasetDict that was trained on."""
    return render_model_card(
        "signs", args=args, metrics=metrics, training_command=training_command or command_line(),
        datasets=[source] if is_hub_id(source) else None, source=source, from_hub=is_hub_id(source),
        rows={split: dataset[split].num_rows for split in dataset},
        by_track="track" in dataset["validation"].column_names)


if __name__ == "__main__":
    with one_line_errors(__file__):
        main(parse_args())
