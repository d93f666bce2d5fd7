"""How the spoken-command model's rejection bias was chosen: speaker-grouped 5-fold cross-validation of the head on
the train + validation speakers (the test speakers are not read), with the bias added to the `unknown` and `silence`
logits when predicting. A bias trades ten-word accuracy for rejecting other words; the model ships the smallest bias
whose cross-validated rejection of other words reaches 95%.

    python benchmarks/commands_rejection.py                        # from the repository root; prints a Markdown table
    python benchmarks/commands_rejection.py --card checkpoints/commands
    python benchmarks/commands_rejection.py --pad_s 0 0.4 1 --card checkpoints/commands   # and the window's length

The features are the ones train/commands.py cached (same encoder settings, same augmented copies, same --dataset
spelling), so only the heads are trained here: 5 folds × --epochs, about 10 min on 2 CPU cores. Each fold trains on
the clean and augmented clips of its training speakers (validation speakers: clean only, as in training) and is scored
on the clean clips of the held-out speakers; noise clips (no speaker) are grouped clip by clip or by recording.
"""

from __future__ import annotations

import argparse
import functools

import numpy as np
import torch
from datasets import Audio
from timing import Report, add_card_argument, latency_ms  # benchmarks/timing.py

from dlhub import audio
from dlhub.commands import (CACHE_DIR, SAMPLES_PER_STATE, CommandClassifier, cached_features, feature_cache,
                            keyword_spotting_report)
from dlhub.data.speech_commands import LABELS, WORDS, group_of, load_speech_commands

BIASES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)


def split_features(model: CommandClassifier, data, split: str, copies: int, seed: int, cache) -> list[torch.Tensor]:
    """[clean, augmented copy 1, …] features of one split, read from (or written to) train/commands.py's cache."""
    waves = audio.decode_clips(data[split], model.window)
    out = [cached_features(model, waves, cache / f"{data[split]._fingerprint}_{split}.safetensors",
                           f"encoding {split}")]
    for k in range(copies):
        make_copy = functools.partial(audio.augment_speech, waves, np.random.default_rng([seed, k]))
        out.append(cached_features(model, make_copy, cache / (
            f"{data[split]._fingerprint}_train_aug{seed}-{k}.safetensors"), f"encoding copy {k + 1}"))
    return out


def fold_logits(x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor, epochs: int) -> torch.Tensor:
    """A head trained as train/commands.py trains it (AdamW, one-cycle, label smoothing 0.1) → held-out logits."""
    mean, std = x_train.mean(0), x_train.std(0) + 1e-5
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    torch.manual_seed(0)
    head = torch.nn.Sequential(torch.nn.Dropout(0.3), torch.nn.Linear(x_train.shape[1], 512), torch.nn.GELU(),
                               torch.nn.Dropout(0.3), torch.nn.Linear(512, len(LABELS)))
    optimizer = torch.optim.AdamW(head.parameters(), 1e-3, weight_decay=1e-3)
    steps = len(y_train) // 64
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-3, pct_start=0.1, total_steps=epochs * steps)
    for _ in range(epochs):
        head.train()
        for batch in torch.randperm(len(y_train)).split(64)[:steps]:
            loss = torch.nn.functional.cross_entropy(head(x_train[batch]), y_train[batch], label_smoothing=0.1)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
    head.eval()
    with torch.no_grad():
        return head(x_test)


def main() -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="../shared/data/speech_commands",
                   help="as given to train/commands.py (the cache is keyed on it)")
    p.add_argument("--cache_dir", default=str(CACHE_DIR / "features"))
    p.add_argument("--augment_copies", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=20)
    defaults = CommandClassifier()
    p.add_argument("--clip_s", type=float, default=defaults.clip_s, help="as train/commands.py --clip_s")
    p.add_argument("--pad_s", type=float, nargs="+", default=[defaults.pad_s],
                   help="as train/commands.py --pad_s; several values: one table each, then a comparison with latency")
    p.add_argument("--json", default=None)
    add_card_argument(p)
    args = p.parse_args()
    report = Report("commands_rejection.py")
    data = load_speech_commands(args.dataset)
    labels = np.array(list(data["train"]["label"]) + list(data["validation"]["label"]))
    groups = []
    for split in ("train", "validation"):
        paths = [a["path"] for a in data[split].cast_column("audio", Audio(decode=False))["audio"]]
        groups += [group_of((path, 0, speaker)) for path, speaker in zip(paths, data[split]["speaker"])]
    groups = np.array(groups)
    n_speakers = len(set(data["train"]["speaker"]) | set(data["validation"]["speaker"]) - {""})
    not_command = torch.tensor([label not in WORDS for label in LABELS], dtype=torch.float32)
    results, chosen = [], {}
    for pad_s in args.pad_s:
        model = CommandClassifier(clip_s=args.clip_s, pad_s=pad_s)  # the other settings as the bundled model's
        logits = cross_validated_logits(model, data, labels, groups, args)
        report(f"{len(labels)} clips ({n_speakers} speakers, and noise), speaker-grouped 5-fold cross-validation, "
               f"heads of {args.epochs} epochs; encoder input: the word's {args.clip_s:g} s + {pad_s:g} s of "
               "silence\n")
        report("| rejection bias | accuracy (12 classes) | ten words | other words rejected | noise rejected |\n"
               "|---|---|---|---|---|")
        rows = []
        for bias in BIASES:
            scores = keyword_spotting_report(torch.softmax(logits + bias * not_command, 1).numpy(), labels, LABELS)
            rows.append({"pad_s": pad_s, "rejection_bias": bias, **scores})
            report(f"| {bias:g} | {scores['accuracy_all_classes']:.4f} | {scores['command_accuracy']:.4f} | "
                   f"{scores['unknown_rejected']:.4f} | {scores['silence_rejected']:.4f} |")
        chosen[pad_s] = next((r for r in rows if r["unknown_rejected"] >= 0.95), None)
        report(f"\nthe smallest bias rejecting at least 95% of other words: "
               f"{chosen[pad_s]['rejection_bias'] if chosen[pad_s] else 'none'}"
               + (" (the bundled model's: `rejection_bias` in its config.json)\n" if pad_s == defaults.pad_s else "\n"))
        results += rows
    if len(args.pad_s) > 1:
        report("Silence after the word: accuracy at each setting's chosen bias, and the time of one 1-s clip "
               "(`model.predict`, ONNX Runtime, median of 50)\n")
        report("| silence after the word | encoder positions | latency (ms) | bias | ten words | other words rejected "
               "| noise rejected |\n|---|---|---|---|---|---|---|")
        for pad_s in args.pad_s:
            model = CommandClassifier(clip_s=args.clip_s, pad_s=pad_s).eval()
            clip = np.random.default_rng(0).normal(0, 0.05, model.window).astype(np.float32)
            with torch.inference_mode():
                latency = latency_ms(lambda: model.predict([clip], audio.SAMPLING_RATE), 50)[0]
            row = chosen[pad_s] or {"rejection_bias": float("nan"), "command_accuracy": float("nan"),
                                    "unknown_rejected": float("nan"), "silence_rejected": float("nan")}
            shipped = " (shipped)" if pad_s == defaults.pad_s else ""
            report(f"| {pad_s:g} s{shipped} | {model.encoder.window // SAMPLES_PER_STATE} | {latency:.1f} | "
                   f"{row['rejection_bias']:g} | {row['command_accuracy']:.4f} | {row['unknown_rejected']:.4f} | "
                   f"{row['silence_rejected']:.4f} |")
            results.append({"pad_s": pad_s, "latency_ms": latency})
    return report.finish(args.card, args.json, results)


def cross_validated_logits(model: CommandClassifier, data, labels: np.ndarray, groups: np.ndarray,
                           args: argparse.Namespace) -> torch.Tensor:
    """Out-of-fold logits (no bias) of every train + validation clip, speakers grouped into 5 folds."""
    cache = feature_cache(args.cache_dir, model.encoder_name, model.clip_s, model.pad_s, model.layers)
    train = split_features(model, data, "train", args.augment_copies, args.seed, cache)
    validation = split_features(model, data, "validation", 0, args.seed, cache)[0]
    n_train = data["train"].num_rows
    clean = torch.cat([train[0], validation])
    folds = np.unique(groups)
    np.random.default_rng(1).shuffle(folds)
    logits = torch.zeros(len(labels), len(LABELS))
    for held_out in np.array_split(folds, 5):
        test = np.isin(groups, held_out)
        rows = np.flatnonzero(~test)
        augmented = rows[rows < n_train]  # only training clips have augmented copies
        x = torch.cat([clean[rows]] + [copy[augmented] for copy in train[1:]])
        y = torch.tensor(np.concatenate([labels[rows]] + [labels[augmented]] * (len(train) - 1)))
        logits[torch.from_numpy(test)] = fold_logits(x, y, clean[test], args.epochs)
    return logits


if __name__ == "__main__":
    main()
