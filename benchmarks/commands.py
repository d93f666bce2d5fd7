"""Spoken commands: latency of one 1-second command from waveform to label on this CPU, beside Whisper's own 30 s
padding, and the bundled model's accuracy on the validation speakers, clean and with added noise.

    python benchmarks/commands.py                       # prints a Markdown table
    python benchmarks/commands.py --json results.json   # and writes the numbers

Latency: `model.predict([samples], 16000)` end to end (speech detection, Whisper log-mel, encoder, pooling, head, for
each of the windows the model hears: see `shift_test_s`), with the encoder in ONNX Runtime as the Space runs it, and
again in PyTorch.
The reference runs the same encoder the way Whisper is usually called: `WhisperFeatureExtractor` padding to 30 s and
the full 1500-position encoder. Accuracy needs ../shared/data/speech_commands (validation speakers only: the test
speakers stay for the training script's single final evaluation).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from timing import Report, add_card_argument, in_pytorch, latency_ms, throughput  # benchmarks/timing.py (run from its folder)

import dlhub
from dlhub import onnx
from dlhub.commands import SAMPLES_PER_STATE, CommandClassifier

ROOT = Path(__file__).resolve().parent.parent


def whisper_30s(model: CommandClassifier):
    """The same encoder weights run on 30 s of padding, as transformers' Whisper pipeline does."""
    from transformers import WhisperFeatureExtractor, WhisperModel

    from dlhub.commands import CACHE_DIR
    from dlhub.whisper_ct2 import convert_whisper_base

    encoder = WhisperModel.from_pretrained(convert_whisper_base(CACHE_DIR / "whisper-base")).encoder.eval()
    extractor = WhisperFeatureExtractor()

    def run(x: np.ndarray):
        mel = extractor(x, sampling_rate=16000, return_tensors="pt").input_features  # (1, 80, 3000)
        return encoder(mel).last_hidden_state

    return run


def validation_accuracy(model: CommandClassifier, data_dir: Path) -> dict:
    from dlhub.audio import augment_speech, decode_clips  # the training script's own decoding and augmentation
    from dlhub.commands import keyword_spotting_report
    from dlhub.data.speech_commands import load_speech_commands

    split = load_speech_commands(data_dir)["validation"]
    waves, labels = decode_clips(split, model.window), np.array(split["label"])
    labels = np.array([model.labels.index(split.features["label"].names[c]) if split.features["label"].names[c]
                       in model.labels else -1 for c in labels])  # a ten-word model has no unknown/silence
    known = labels >= 0
    out = {"val_clips": int(known.sum())}
    for name, x in (("clean", waves), ("noisy", augment_speech(waves, np.random.default_rng(123)))):
        features = torch.cat([model.features(torch.from_numpy(x[i:i + 64])) for i in range(0, len(x), 64)])
        probs = torch.softmax(model(features), 1).numpy()
        out.update({f"val_{k}_{name}": v for k, v in keyword_spotting_report(probs[known], labels[known],
                                                                                 model.labels).items()})
    return out


def main() -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="a model folder or Hub repo id (default: dlhub.load('commands'))")
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "speech_commands"))
    p.add_argument("--repeats", type=int, default=50)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--json", default=None)
    add_card_argument(p)
    args = p.parse_args()
    report = Report("commands.py")

    model = dlhub.load("commands", args.model).eval()
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    clip = (0.3 * np.sin(2 * np.pi * 220 * t) * np.exp(-((t - 0.5) / 0.15) ** 2)).astype(np.float32)
    clip += rng.normal(0, 0.003, 16000).astype(np.float32)  # a voiced burst mid-clip: latency does not depend on words
    reference = whisper_30s(model)
    with torch.inference_mode():
        results = {"threads": torch.get_num_threads(), "clip_s": model.clip_s, "pad_s": model.pad_s,
                   "positions": model.encoder.window // SAMPLES_PER_STATE}
        results["latency_ms"], results["latency_p95_ms"] = latency_ms(lambda: model.predict([clip], 16000),
                                                                      args.repeats)
        results["onnx"] = onnx.is_loaded(model.graph_name())  # the graph that predict ran, if it ran one
        if results["onnx"]:  # the same pipeline in PyTorch: what ONNX Runtime saves
            with in_pytorch():
                results["pytorch_latency_ms"], results["pytorch_latency_p95_ms"] = latency_ms(
                    lambda: model.predict([clip], 16000), args.repeats)
        results["whisper_30s_latency_ms"], results["whisper_30s_latency_p95_ms"] = latency_ms(
            lambda: reference(clip), max(5, args.repeats // 10))
        batch = [clip] * 32
        results["clips_per_s"] = throughput(lambda b: model.predict(b, 16000), batch, args.seconds)
        if Path(args.data_dir).is_dir():
            results.update(validation_accuracy(model, Path(args.data_dir)))
    results["speedup_vs_30s"] = results["whisper_30s_latency_ms"] / results["latency_ms"]
    report(f"Spoken commands, one 1-second clip, {results['threads']} CPU threads\n")
    report("| pipeline | latency, one clip (ms, median / p95) | throughput (clips/s, batch 32) |")
    report("|---|---|---|")
    window = (f"the word's {model.clip_s:g} s" + (f" + {model.pad_s:g} s of silence" if model.pad_s else "")
              + f", {results['positions']} encoder positions"
              + (f", heard 3 times (moved ±{model.shift_test_s * 1000:.0f} ms)" if len(model.shifts) > 1 else ""))
    runtime = "ONNX Runtime" if results["onnx"] else "PyTorch"
    report(f"| {window}, in {runtime} | {results['latency_ms']:.1f} / {results['latency_p95_ms']:.1f} | "
           f"{results['clips_per_s']:.0f} |")
    if "pytorch_latency_ms" in results:
        report(f"| the same in PyTorch | {results['pytorch_latency_ms']:.1f} / "
               f"{results['pytorch_latency_p95_ms']:.1f} | |")
    report(f"| Whisper's usual 30 s padding, 1500 positions (encoder only) | {results['whisper_30s_latency_ms']:.0f} / "
          f"{results['whisper_30s_latency_p95_ms']:.0f} | |")
    report(f"\nspeed-up over 30 s padding: {results['speedup_vs_30s']:.1f}×; target: at most 30 ms per clip")
    if "val_clips" in results:
        report(f"\nValidation speakers ({results['val_clips']} clips), clean and with the training augmentation "
               "(speed, shift, noise):\n")
        report("| | accuracy (all classes) | ten words | other words rejected | noise rejected |\n"
               "|---|---|---|---|---|")
        for name in ("clean", "noisy"):
            cells = [results.get(f"val_{k}_{name}") for k in ("accuracy_all_classes", "command_accuracy",
                                                               "unknown_rejected", "silence_rejected")]
            report(f"| {name} | " + " | ".join("—" if v is None else f"{v:.4f}" for v in cells) + " |")
    return report.finish(args.card, args.json, results)


if __name__ == "__main__":
    main()
