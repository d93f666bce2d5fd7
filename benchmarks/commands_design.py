"""How the spoken-command model's design was chosen: window, pooling and layers of the frozen Whisper-base encoder,
compared by speaker-grouped 5-fold cross-validation of a head on the train + validation speakers (the test speakers
are not read), over the 12 classes (ten words, unknown, silence; noise clips are grouped clip by clip).

    python benchmarks/commands_design.py                      # ~15 min on 2 CPU cores; prints a Markdown table
    python benchmarks/commands_design.py --json results.json

Rows: (window, pooling, layers, head). "1 s" runs the encoder on the clip alone (50 positions); "1 s + 1 s" appends
1 s of silence (100 positions). Pooling "mean+max" = mean and max over the whole window; "word-mean+max" = mean over
the clip's own positions and max over the window (what CommandClassifier does). Head "linear" or "MLP 512".
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from timing import Report, add_card_argument  # benchmarks/timing.py (run from its folder)

from dlhub import audio
from dlhub.commands import SpeechEncoder, keyword_spotting_report
from dlhub.data.speech_commands import LABELS, clip_groups, load_speech_commands

ROOT = Path(__file__).resolve().parent.parent
ROWS = [("1 s", "mean+max", (6,), 0), ("1 s + 1 s", "mean+max", (6,), 0), ("1 s", "mean+max", (4, 5, 6), 0),
        ("1 s + 1 s", "mean+max", (4, 5, 6), 0), ("1 s", "mean+max", (4, 5, 6), 512),
        ("1 s + 1 s", "mean+max", (4, 5, 6), 512), ("1 s + 1 s", "mean+max", (3, 4, 5, 6), 512),
        ("1 s + 1 s", "word-mean+max", (3, 4, 5, 6), 512)]


def encode(waves: np.ndarray, pad_s: float) -> dict[str, np.ndarray]:
    """Per clip and hidden state: mean over the window, mean over the clip's positions, max over the window."""
    encoder = SpeechEncoder(window_s=1.0 + pad_s)
    out = {"mean": [], "word-mean": [], "max": []}
    for i in range(0, len(waves), 64):
        x = torch.nn.functional.pad(torch.from_numpy(waves[i:i + 64]), (0, encoder.window - waves.shape[1]))
        states = encoder(x)  # (L + 1, B, T, d)
        out["mean"].append(states.mean(2).permute(1, 0, 2).half().numpy())
        out["word-mean"].append(states[:, :, :50].mean(2).permute(1, 0, 2).half().numpy())
        out["max"].append(states.amax(2).permute(1, 0, 2).half().numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def cross_validate(features: np.ndarray, labels: np.ndarray, groups: np.ndarray, hidden: int, folds: int = 5) -> dict:
    """Out-of-fold predictions of a head trained as train/commands.py trains it → keyword_spotting_report."""
    names = np.unique(groups)
    np.random.default_rng(1).shuffle(names)
    probs = np.zeros((len(labels), len(LABELS)), np.float32)
    for held_out in np.array_split(names, folds):
        test = np.isin(groups, held_out)
        mean, std = features[~test].mean(0), features[~test].std(0) + 1e-5
        x_train, x_test = torch.tensor((features[~test] - mean) / std), torch.tensor((features[test] - mean) / std)
        y_train = torch.tensor(labels[~test])
        torch.manual_seed(0)
        head = (torch.nn.Sequential(torch.nn.Dropout(0.3), torch.nn.Linear(features.shape[1], hidden), torch.nn.GELU(),
                                    torch.nn.Dropout(0.3), torch.nn.Linear(hidden, len(LABELS))) if hidden
                else torch.nn.Linear(features.shape[1], len(LABELS)))
        optimizer = torch.optim.AdamW(head.parameters(), 1e-3, weight_decay=1e-3)
        for _ in range(40 if hidden else 30):
            head.train()
            for batch in torch.randperm(len(x_train)).split(64):
                loss = torch.nn.functional.cross_entropy(head(x_train[batch]), y_train[batch], label_smoothing=0.1)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        head.eval()
        with torch.no_grad():
            probs[test] = torch.softmax(head(x_test), 1).numpy()
    return keyword_spotting_report(probs, labels, LABELS)


def main() -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "speech_commands"))
    p.add_argument("--json", default=None)
    add_card_argument(p)
    args = p.parse_args()
    report = Report("commands_design.py")
    data = load_speech_commands(args.data_dir)
    waves, labels, speakers = [], [], []
    for split in ("train", "validation"):
        for row in data[split]:
            x = row["audio"].get_all_samples().data.mean(0).numpy()
            waves.append(audio.window(x, 0, len(x) / audio.SAMPLING_RATE, audio.SAMPLING_RATE))
        labels += data[split]["label"]
        speakers += clip_groups(data[split])  # noise: clip or recording
    waves, labels, speakers = np.stack(waves), np.array(labels), np.array(speakers)
    encoded = {"1 s": encode(waves, 0.0), "1 s + 1 s": encode(waves, 1.0)}
    results = []
    n_speakers = len(set(np.concatenate([data[split]["speaker"] for split in ("train", "validation")])) - {""})
    report(f"{len(labels)} clips ({n_speakers} speakers, and noise), speaker-grouped 5-fold cross-validation, "
           "12 classes\n")
    report("| encoder input | pooling | hidden states | head | accuracy (12 classes) | ten words | other words rejected "
           "| noise rejected |\n|---|---|---|---|---|---|---|---|")
    for window, pooling, layers, hidden in ROWS:
        first = "word-mean" if pooling == "word-mean+max" else "mean"
        feats = np.concatenate([encoded[window][first][:, list(layers)], encoded[window]["max"][:, list(layers)]],
                               axis=2).reshape(len(labels), -1).astype(np.float32)
        scores = cross_validate(feats, labels, speakers, hidden)
        results.append({"window": window, "pooling": pooling, "layers": list(layers), "hidden": hidden, **scores})
        head = f"MLP {hidden}" if hidden else "linear"
        report(f"| {window} | {pooling} | {', '.join(map(str, layers))} | {head}"
               f" | {scores['accuracy_all_classes']:.4f} | {scores['command_accuracy']:.4f} | "
               f"{scores['unknown_rejected']:.4f} | {scores['silence_rejected']:.4f} |")
    return report.finish(args.card, args.json, results)


if __name__ == "__main__":
    main()
