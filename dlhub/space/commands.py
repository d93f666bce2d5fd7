"""Tab "Voice commands": record or upload a command word; or speak continuously and watch the commands appear.

Whatever arrives (44.1 kHz stereo from the browser, 8 kHz, mp3/ogg/webm) becomes 16 kHz mono; an energy detector
finds the speech, so silence or noise alone gives "no command heard" rather than a guess.
"""

from __future__ import annotations

import io
import math
import shutil
import subprocess
import wave

import gradio as gr
import numpy as np
import torch
from matplotlib.figure import Figure

from dlhub import audio
from dlhub.commands import SURE, answer
from dlhub.data.speech_commands import SILENCE, UNKNOWN, WORDS
from dlhub.errors import DataError
from dlhub.metrics.intervals import command_estimates  # the headline, with its 95% intervals
from dlhub.space import models
from dlhub.space.common import (EXAMPLES_DIR, CheckedAudio, clear_on_failure, handler, heading_unless, user_error,
                                user_warning)

TITLE = "Voice commands"
MAX_SECONDS = audio.MAX_UPLOAD_S  # only this much of an upload is decoded (with a warning): a command is a second long
MIN_SECONDS = 0.1
# (word, espeak-ng voice): synthetic speakers the model never heard in training, all recognised by the bundled model
CONCURRENCY = 2  # requests computed at once, from benchmarks/concurrency.py (README: "A whole class at once")
EXAMPLE_WORDS = [("yes", "en"), ("stop", "en-us"), ("left", "en+f3"), ("go", "en-us+m3"), ("down", "en"),
                 ("hello", "en")]  # "hello" is not a command: the model answers "Not a command word"
NO_COMMAND = ("### No command heard\nOnly silence or noise, no speech: say one of the ten words closer to the "
              "microphone.")
NOT_SURE = "### Not sure: perhaps"  # the answer's start when the top command's probability is under SURE
label_heading = heading_unless(NOT_SURE)  # the top-3 box shows no top class while the answer is "Not sure"
NOT_A_COMMAND = ("### Not a command word\nThat was speech, but none of the ten commands: " + ", ".join(WORDS) + ".")


def warm_up(m) -> None:
    m.predict([np.zeros(1600, np.float32)], audio.SAMPLING_RATE)  # builds the encoder now, not on the first request


models.cache("commands").prepare = warm_up


def model(choice: str = models.DEFAULT):
    """The model `choice` names (the tab's default when left out), loaded once and kept."""
    return models.get_model("commands", choice)


def examples() -> list[str]:
    """Words spoken by espeak-ng with 0.4 s of silence around them, and a noise clip, written once at start-up."""
    paths = []
    for word, voice in EXAMPLE_WORDS if shutil.which("espeak-ng") else []:
        path = EXAMPLES_DIR / f"command_{word}.wav"
        if not path.is_file():
            EXAMPLES_DIR.mkdir(parents=True, exist_ok=True)
            spoken = subprocess.run(["espeak-ng", "-v", voice, "-s", "140", "--stdout", word], check=True,
                                    capture_output=True, timeout=30).stdout
            write_wav(path, spoken)
        paths.append(str(path))
    noise = EXAMPLES_DIR / "noise.wav"
    if not noise.is_file():
        EXAMPLES_DIR.mkdir(parents=True, exist_ok=True)
        audio.write_wav(noise, rumbling_noise(np.random.default_rng(0)), audio.SAMPLING_RATE)
    return [*paths, str(noise)]


def rumbling_noise(rng: np.random.Generator, seconds: float = 2.0) -> np.ndarray:
    """Brown noise (a fan, a running tap) that swells and fades: no speech in it."""
    n = int(seconds * audio.SAMPLING_RATE)
    brown = np.cumsum(rng.normal(0, 1, n))
    brown -= np.convolve(brown, np.ones(800) / 800, mode="same")  # remove the slow drift, keep the rumble
    swell = 0.6 + 0.4 * np.sin(np.linspace(0, 3 * np.pi, n))
    return (0.3 * swell * brown / np.abs(brown).max()).astype(np.float32)


def write_wav(path, espeak_wav: bytes, silence_s: float = 0.4) -> None:
    """espeak-ng's WAV bytes with silence before and after (a fake microphone loops the file: words stay apart)."""
    with wave.open(io.BytesIO(espeak_wav)) as w:
        rate, samples = w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), np.int16)
    pad = np.zeros(int(silence_s * rate), np.int16)
    audio.write_wav(path, np.concatenate([pad, samples, pad]).astype(np.float32) / 32768, rate)


def plot_heard(x: np.ndarray, detections: list[dict], chosen: int | None, spectrogram: np.ndarray | None) -> Figure:
    """The waveform with each stretch of speech shaded (the classified one in orange) and what the encoder saw."""
    # fixed margins, not a layout engine: constrained layout measured most of the plot's 0.3 s (commands_recordings.py)
    if spectrogram is None:  # nothing was classified: the waveform alone, no empty panel
        fig = Figure(figsize=(8, 1.9))
        fig.subplots_adjust(left=0.08, right=0.98, top=0.86, bottom=0.25)
        ax_wave, ax_mel = fig.subplots(1, 1), None
    else:
        fig = Figure(figsize=(8, 4.2))
        fig.subplots_adjust(left=0.08, right=0.98, top=0.93, bottom=0.11, hspace=0.55)
        ax_wave, ax_mel = fig.subplots(2, 1, height_ratios=[1, 1.3])
    t = np.arange(len(x)) / audio.SAMPLING_RATE
    step = max(1, len(x) // 4_000)  # at most 4k points drawn: the figure is 800 px wide
    ax_wave.plot(t[::step], x[::step], lw=0.6, color="#444")
    for i, d in enumerate(detections):
        ax_wave.axvspan(d["start"], d["end"], color="tab:orange" if i == chosen else "tab:blue", alpha=0.25)
        ax_wave.text(d["start"], ax_wave.get_ylim()[1] * 0.85, next(iter(d["scores"])), fontsize=8)
    ax_wave.set(xlabel="time (s)", ylabel="amplitude", title="what was heard (shaded: speech found)",
                xlim=(0, max(t[-1], 1e-3)))
    if spectrogram is not None:
        ax_mel.imshow(spectrogram, origin="lower", aspect="auto", cmap="magma", interpolation="nearest",
                      extent=(0, spectrogram.shape[1] / 100, 0, spectrogram.shape[0]))
        ax_mel.set(xlabel="time in the model's window (s)", ylabel="mel band",
                   title="log-mel spectrogram of the classified word, as the encoder saw it")
    return fig


def recognise(path: str | None, model: str | None = models.DEFAULT):
    """/recognise_command: `model` is the model chosen (the tab's default when left out)."""
    if not path:
        raise user_error("No audio: record with the microphone, upload a file, or pick an example.")
    try:
        x, rate, duration = audio.load_audio_file(path, MAX_SECONDS)
        x = audio.resample(x, rate)
    except DataError as err:
        raise user_error(f"{str(err)[0].upper()}{str(err)[1:]}.") from None
    trimmed = ""
    if duration > MAX_SECONDS:
        length = "longer than" if math.isinf(duration) else f"{duration:.0f} s long, over"
        trimmed = f"The recording is {length} {MAX_SECONDS:.0f} s: only its first {MAX_SECONDS:.0f} s were analysed."
        user_warning(trimmed)
    if len(x) < MIN_SECONDS * audio.SAMPLING_RATE:
        raise user_error(f"The recording is {len(x) / audio.SAMPLING_RATE:.2f} s long: say the command in a clip of "
                         "at least half a second.")
    classifier = models.get_model("commands", model)
    answered = f"\n\n{trimmed + '  ' if trimmed else ''}{models.answered_line(classifier)}"
    detections = classifier.classify_segments(x, audio.SAMPLING_RATE, top_k=3)
    if not detections:
        return None, NO_COMMAND + answered, plot_heard(x, [], None, None)
    loudness = audio.stretch_loudness(x, [(d["start"], d["end"]) for d in detections])
    chosen, said = answer(detections, loudness)  # a command wins over other sounds
    scores = detections[chosen]["scores"]
    if said == SILENCE:
        verdict = NO_COMMAND
    elif said == UNKNOWN:
        verdict = NOT_A_COMMAND
    elif said.startswith("unsure:"):
        verdict = f"{NOT_SURE} **{said.removeprefix('unsure:')}**"
    else:
        verdict = f"### Heard: **{said}**"
    spoken = [d for d in detections if top_label(d) != SILENCE]
    if len(spoken) > 1:
        verdict += "\nAll the words found, in order: " + ", ".join(
            f"**{top_label(d)}** ({d['start']:.1f}–{d['end']:.1f} s)" if top_label(d) in WORDS
            else f"a word that is not a command ({d['start']:.1f}–{d['end']:.1f} s)" for d in spoken)
    spectrogram = None  # wav2vec2 and HuBERT read the waveform itself: only Whisper has a log-mel input to show
    if classifier.encoder.is_whisper:
        clip = audio.window(x, detections[chosen]["start"], detections[chosen]["end"], classifier.window)
        padded = np.pad(clip, (0, classifier.encoder.window - len(clip)))
        spectrogram = classifier.encoder.log_mel(torch.from_numpy(padded)[None])[0].numpy()
    return scores, verdict + answered, plot_heard(x, detections, chosen, spectrogram)


def top_label(detection: dict) -> str:
    return next(iter(detection["scores"]))


def listen(chunk, buffer: dict | None, model: str | None = models.DEFAULT):
    """Streaming: add the chunk to a 16 kHz buffer; classify each stretch of speech once a pause ends it."""
    buffer = buffer or {"audio": np.zeros(0, np.float32), "offset": 0.0, "heard": []}
    if chunk is None:
        return _heard_list(buffer), buffer
    rate, samples = chunk
    try:
        x = audio.prepare(samples, rate, "the microphone stream")
    except DataError:
        return _heard_list(buffer), buffer  # an empty or broken chunk: wait for the next one
    buffer["audio"] = np.concatenate([buffer["audio"], x])
    now = len(buffer["audio"]) / audio.SAMPLING_RATE
    finished = [(s, e) for s, e in audio.find_speech(buffer["audio"]) if e < now - audio.MERGE_GAP_S]
    if finished:
        m = models.get_model("commands", model)
        for s, e in finished:
            scores = m.predict([audio.window(buffer["audio"], s, e, m.window)], audio.SAMPLING_RATE, top_k=1)[0]
            (word, p), = scores.items()
            if word in WORDS:  # other words and noise are not listed: this is the list of commands given
                buffer["heard"].append((buffer["offset"] + s, word if p >= SURE else f"{word}?"))
        cut = int(finished[-1][1] * audio.SAMPLING_RATE)  # keep only what follows the last word classified
        buffer["audio"], buffer["offset"] = buffer["audio"][cut:], buffer["offset"] + cut / audio.SAMPLING_RATE
    elif now > 10:  # a long stretch without a finished word: keep the last 3 s
        cut = len(buffer["audio"]) - 3 * audio.SAMPLING_RATE
        buffer["audio"], buffer["offset"] = buffer["audio"][cut:], buffer["offset"] + cut / audio.SAMPLING_RATE
    return _heard_list(buffer), buffer


BEFORE_STREAMING = "*Press **Record** to start listening, then say a few of the ten words with short pauses.*"


def _heard_list(buffer: dict) -> str:
    if not buffer["heard"]:
        return "*Listening… say a few of the ten words with short pauses between them.*"
    return "  \n".join(f"`{t:5.1f} s` **{w}**" for t, w in buffer["heard"][-20:])


def describe(m, metrics: dict) -> str:
    others = [label for label in m.labels if label not in WORDS]
    classes = f"the ten words and {' and '.join(f'`{c}`' for c in others)}" if others else "the ten words"
    expected, where = command_estimates(metrics)
    if "command_accuracy" in expected:
        rejected = [f"{what} rejected {expected[key].text(3)}" for what, key in (
            ("other words", "unknown_rejected"), ("noise", "silence_rejected")) if key in expected]
        measured = (f"; {where}: ten words {expected['command_accuracy'].text(3)}"
                    + "".join(f", {r}" for r in rejected))
        if "recording_command_accuracy" in expected:  # what a user of this tab should expect
            answered = [f"{what} {expected[key].text(3)}" for what, key in (
                ("commands", "recording_command_accuracy"), ("other words", "recording_unknown_right"),
                ("noise", "recording_silence_right")) if key in expected]
            measured += f"; recordings as users make them, answered right: {', '.join(answered)}"
    elif "test_command_accuracy" in metrics:
        rejected = [f"{what} rejected {metrics[key]:.3f}" for what, key in (
            ("other words", "test_unknown_rejected"), ("noise", "test_silence_rejected")) if key in metrics]
        measured = (f"; on {metrics['test_speakers']} speakers it never heard: ten words "
                    f"{metrics['test_command_accuracy']:.3f}" + "".join(f", {r}" for r in rejected))
    elif metrics:
        measured = (f", accuracy {metrics['test_accuracy']:.3f} on {metrics['test_clips']} clips of "
                    f"{metrics['test_speakers']} speakers it never heard")
    else:
        measured = ""
    return f"A frozen `{m.encoder_name}` encoder + MLP over {classes}{measured}."


def build(demo: gr.Blocks) -> models.ModelChoice:
    gr.Markdown("### Say a command\nRecord one word (yes, no, up, down, left, right, on, off, stop, go) in the "
                "browser, or upload a recording of any length and format.")
    choice = models.ModelChoice("commands", TITLE, "commands", describe)
    with gr.Row():
        with gr.Column():
            recording = CheckedAudio(sources=["microphone", "upload"], type="filepath", label="your command",
                                     elem_id="commands-input")
            submit = gr.Button("Recognise again", variant="secondary", elem_id="commands-submit")
            gr.Markdown("*A recording is recognised as soon as you press Stop, upload a file or pick an example.*")
            gr.Examples(examples(), [recording], label="examples: words spoken by espeak-ng (voices the model never "
                        "heard; \"hello\" is not a command) and a noise clip")
        with gr.Column():
            label = gr.Label(num_top_classes=3, label="top 3", elem_id="commands-label")
            verdict = gr.Markdown(elem_id="commands-verdict")
    heard = gr.Plot(label="waveform and spectrogram", elem_id="commands-plot")
    outputs = [label, verdict, heard]
    # the model is the last input, with a default: callers of /recognise_command with the recording still get an answer
    clear_on_failure(submit.click(handler(recognise), [recording, choice.value], outputs,
                                  api_name="recognise_command", concurrency_limit=CONCURRENCY,
                                  concurrency_id="commands"), outputs)
    # a finished recording, an upload or an example: recognised at once (a cleared input clears the answer)
    clear_on_failure(recording.change(handler(lambda path, model: recognise(path, model) if path else
                                              (None, "", None)),
                                      [recording, choice.value], outputs, api_visibility="undocumented",
                                      concurrency_id="commands"), outputs)
    choice.on_change(lambda path, model: recognise(path, model) if path else gr.skip(), [recording], outputs,
                     concurrency_id="commands")
    # after every answer, whichever event gave it (a recording, the button, a model chosen, an error's clearing)
    verdict.change(label_heading, [verdict], [label], queue=False, api_visibility="private")
    with gr.Accordion("Continuous: speak and watch the commands appear", open=False):
        with gr.Row():
            stream = gr.Audio(sources=["microphone"], streaming=True, type="numpy", label="microphone (streaming)")
            commands = gr.Markdown(BEFORE_STREAMING, elem_id="commands-stream")
        state = gr.State(None)
        # show_progress hidden: the list is shown at full contrast while the stream runs, not greyed as pending
        stream.stream(handler(listen), [stream, state, choice.value], [commands, state], stream_every=0.5,
                      time_limit=120, api_name="listen", concurrency_limit=4, show_progress="hidden")
        gr.Button("Clear").click(lambda: (BEFORE_STREAMING, None), None, [commands, state],
                                 api_visibility="private")
    return choice
