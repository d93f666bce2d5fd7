"""Spoken commands in recordings as users make them, answered by the Space's own handler: speakers and noise the model
never trained on, whole recordings in, the tab's answer out.

    python benchmarks/commands_recordings.py                        # ~4 min on 2 CPU cores; prints a Markdown table
    python benchmarks/commands_recordings.py --json results.json --card checkpoints/commands

Each recording is built from a clip of the held-out test speakers (`load_speech_commands(...)["test"]`: never trained
on, never used to choose an epoch) and the held-out test noise (`_silence_` cuts of the test split):
- 2–5 s long, the 1-s clip at a random place in it, at 44.1 or 48 kHz;
- room noise under the whole recording: a noise clip of the test split, looped, 10–30 dB below the speech (SNR of the
  speech's own frames), so noise is always crossed with speech from another source than its own;
- a normal (peak 0.3–0.9 of full scale), a quiet (peak −45…−30 dBFS) or a clipped microphone (the normal one with a
  gain of 3–10×, clipped at full scale);
- saved as WAV, WebM/Opus (a browser's recording) or MP3 (a phone's) by ffmpeg, then read back by the tab's decoder.
(`dlhub.audio.user_recording` and `save_recording`: train/commands.py makes its cross-validation's recordings the
same way.)
Noise-only recordings are the same without the word. Every recording goes through `dlhub.space.commands.recognise`,
the tab's handler: a command is right when the answer is "Heard: **word**" ("Not sure: perhaps …" counts as wrong),
another word when it is "Not a command word", noise when it is "No command heard".
A control tells where commands are lost: each command recording is made again from a copy of the same random draws
with no noise under it, through a normal microphone, as WAV (the same clip at the same place, rate, length and gain),
and the model also answers the bare 1-s clips (`predict`). From the clips to the control is what the tab's own path
costs (finding the word in a longer recording, resampling, the answer's rules); from the control to the recordings,
what noise, the microphone and the codec cost.
Latency on 3-s WAV recordings, median of 30: the answer (decoding, resampling, speech finding, the model on each
stretch of speech), and the tab's whole handler with its plot drawn as a PNG, as Gradio sends it.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import os
import re
import shutil
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from timing import Report, add_card_argument  # benchmarks/timing.py (run from its folder)

from dlhub import audio
from dlhub.data.speech_commands import LABELS, SILENCE, UNKNOWN, WORDS, load_speech_commands
from dlhub.metrics.intervals import wilson_interval

ROOT = Path(__file__).resolve().parent.parent
FORMATS, LEVELS = audio.RECORDING_FORMATS, audio.MICROPHONE_LEVELS


def answer_of(verdict: str) -> str:
    """The tab's answer as a label: a command word, `unknown`, `silence`, or `unsure:<word>`."""
    if verdict.startswith("### No command heard"):
        return SILENCE
    if verdict.startswith("### Not a command word"):
        return UNKNOWN
    word = re.search(r"\*\*(\w+)\*\*", verdict).group(1)
    return word if verdict.startswith("### Heard") else f"unsure:{word}"


def share(k: int, n: int) -> dict:
    """k right of n, as the JSON records each measure: the count, the rate and its Wilson 95% interval."""
    return {"right": int(k), "n": n, "rate": k / n, "ci95": list(wilson_interval(k, n))}


def main() -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="a model folder or Hub repo id (default: the bundled model)")
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "speech_commands"))
    p.add_argument("--renditions", type=int, default=2, help="recordings made of each held-out clip")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", default="test", choices=["test", "validation"],
                   help="whose clips: the test speakers (the report), or the validation speakers (to tune on)")
    p.add_argument("--json", default=None)
    p.add_argument("--rows", default=None, help="also write every recording's facts and answer (JSON) to this file")
    add_card_argument(p)
    args = p.parse_args()
    if not shutil.which("ffmpeg"):
        raise SystemExit("ffmpeg is needed to write WebM and MP3 recordings: apt install ffmpeg")
    from dlhub.space import commands as tab  # the Space's handler, as the tab runs it

    report = Report("commands_recordings.py")
    model = args.model or tab.models.DEFAULT
    if args.model and Path(args.model).is_dir():  # a folder is offered to the tab as a Space offers one
        os.environ["DLHUB_SPACE_MODEL_DIRS"] = str(Path(args.model).resolve())
        model = f"folder:{Path(args.model).resolve().name}"
    classifier = tab.models.get_model("commands", model)
    test = load_speech_commands(args.data_dir)[args.split]
    clips = audio.decode_clips(test, audio.SAMPLING_RATE)
    labels = np.array(test["label"])
    noises = clips[labels == LABELS.index(SILENCE)]
    speakers = len(set(test["speaker"]) - {""})
    is_command = np.isin(labels, [LABELS.index(w) for w in WORDS])
    rng = np.random.default_rng(args.seed)
    rows = []

    def heard(path: Path) -> tuple[str, dict]:  # the tab's answer and scores for a recording file, then deleted
        scores, verdict, _ = tab.recognise(str(path), model)
        path.unlink()
        return answer_of(verdict), scores

    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.renditions):
            for i, label in enumerate(labels):
                clip = None if label == LABELS.index(SILENCE) else clips[i]
                bed = int(rng.integers(len(noises)))
                twin = copy.deepcopy(rng)  # the same draws, for the control (the main stream goes on unchanged)
                x, rate, facts = audio.user_recording(clip, noises[bed], rng)
                fmt = FORMATS[int(rng.integers(len(FORMATS)))]
                truth = LABELS[label]
                kind = "command" if truth in WORDS else "other word" if truth == UNKNOWN else "noise"
                answer, scores = heard(audio.save_recording(x, rate, fmt, Path(tmp), f"{r}_{i}"))
                right = answer == (truth if kind == "command" else UNKNOWN if kind == "other word" else SILENCE)
                rows.append({"kind": kind, "truth": truth, "answer": answer, "right": bool(right), "format": fmt,
                             "rate": rate, "clip": i if clip is not None else bed, "scores": scores, **facts})
                if kind == "command":
                    x, rate, _ = audio.user_recording(clip, noises[bed], twin, noisy=False, level="normal")
                    control, _ = heard(audio.save_recording(x, rate, "wav", Path(tmp), "control"))
                    rows[-1]["control_right"] = control == truth
        answer_ms, handler_ms = [], []
        for k in range(31):  # 3-s recordings as WAV files: the first call warms up
            i = int(rng.choice(np.flatnonzero(is_command)))
            x, rate, _ = audio.user_recording(clips[i], noises[k % len(noises)], rng)
            x = x[:3 * rate] if len(x) >= 3 * rate else np.pad(x, (0, 3 * rate - len(x)))
            path = str(audio.save_recording(x, rate, "wav", Path(tmp), f"latency_{k}"))
            start = time.perf_counter()  # the answer: decode, resample, find the speech, classify each stretch
            samples, file_rate, _ = audio.load_audio_file(path, tab.MAX_SECONDS)
            classifier.classify_segments(samples, file_rate)
            answer_ms.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()  # the tab: the same, its answer text, and its plot drawn as Gradio sends it
            _, _, figure = tab.recognise(path, model)
            figure.savefig(io.BytesIO(), format="png")
            handler_ms.append((time.perf_counter() - start) * 1000)
    results = {"split": args.split, "speakers": speakers, "renditions": args.renditions, "recordings": len(rows),
               "latency_ms": statistics.median(answer_ms[1:]), "tab_latency_ms": statistics.median(handler_ms[1:])}
    report(f"Recordings as users make them: {len(rows)} recordings ({args.renditions} of each of the {len(labels)} "
           f"{args.split}-split clips: {speakers} speakers and noise never trained on), through the tab's handler\n")
    report("| recordings of | n | answered right | 95% interval | target | source clips with a wrong answer |\n"
           "|---|---|---|---|---|---|")
    for kind, target in (("command", "≥ 0.975"), ("other word", "≥ 0.95"), ("noise", "≥ 0.98")):
        chosen = [r for r in rows if r["kind"] == kind]
        sources, missed = {r["clip"] for r in chosen}, {r["clip"] for r in chosen if not r["right"]}
        e = results[kind.replace(" ", "_")] = {**share(sum(r["right"] for r in chosen), len(chosen)),
                                               "clips": len(sources), "clips_wrong": len(missed)}
        report(f"| {kind if kind == 'noise' else kind + 's'} | {e['n']} | {e['rate']:.4f} | "
               f"{e['ci95'][0]:.4f}–{e['ci95'][1]:.4f} | {target} | {len(missed)} of {len(sources)} |")
    commands = [r for r in rows if r["kind"] == "command"]
    said = [next(iter(p)) for p in classifier.predict(list(clips[is_command]), audio.SAMPLING_RATE)]
    bare_right = sum(word == LABELS[t] for word, t in zip(said, labels[is_command]))
    bare = results["command_clips_bare"] = share(bare_right, len(said))
    control = results["command_control"] = share(sum(r["control_right"] for r in commands), len(commands))
    noisy = results["command"]
    missed_commands = [r for r in commands if not r["right"]]
    report(f"\nWhere commands are lost: the bare 1-s clips (the model's own window) **{bare['rate']:.4f}** (n = "
           f"{bare['n']}); the same recordings with no noise, a normal microphone, WAV **{control['rate']:.4f}** "
           f"({control['ci95'][0]:.4f}–{control['ci95'][1]:.4f}, n = {control['n']}); the recordings "
           f"**{noisy['rate']:.4f}**. {sum(r['control_right'] for r in missed_commands)} of the "
           f"{len(missed_commands)} commands answered wrong in recordings were answered right in their control.")
    if args.renditions > 1:
        report(f"\nThe interval treats the {args.renditions} recordings of one clip as independent: it is somewhat "
               "narrower than one over clips would be (the last column: a clip that fails tends to fail in each of "
               "its recordings; for noise, the clip is the noise recording looped under it).")
    report("\nCommands by condition (share answered right):\n")
    report("| condition | n | right |\n|---|---|---|")
    for name, test_fn in [(f"SNR {lo}–{hi} dB", lambda r, lo=lo, hi=hi: lo <= r["snr_db"] < hi)
                          for lo, hi in ((10, 15), (15, 20), (20, 25), (25, 31))] + \
                         [(f"{level} microphone", lambda r, level=level: r["level"] == level) for level in LEVELS] + \
                         [(f"{fmt}", lambda r, fmt=fmt: r["format"] == fmt) for fmt in FORMATS]:
        chosen = [r for r in commands if test_fn(r)]
        if chosen:
            report(f"| {name} | {len(chosen)} | {np.mean([r['right'] for r in chosen]):.4f} |")
    wrong = Counter(f"{r['truth']} → {r['answer']}" for r in rows if not r["right"])
    results["wrong_answers"] = dict(wrong.most_common())
    report("\nCommonest wrong answers: " + (", ".join(f"{k} ({v})" for k, v in wrong.most_common(8)) or "none"))
    report(f"\nLatency, 3-s recordings (median of {len(answer_ms) - 1}): the answer (decode, resample, find the "
           f"speech, classify) **{results['latency_ms']:.0f} ms** (target ≤ 150 ms); the tab's whole handler with its "
           f"plot drawn {results['tab_latency_ms']:.0f} ms")
    if args.rows:
        Path(args.rows).write_text(json.dumps(rows, indent=1))
    return report.finish(args.card, args.json, results)


if __name__ == "__main__":
    main()
