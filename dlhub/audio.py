"""Audio in any shape a user or a browser sends it → 16 kHz mono float32, and where in it someone speaks.

The energy detector below is deliberately simple (20 ms frames, a threshold relative to the clip's own noise floor
and an absolute floor for near-silence): it needs no model download, runs in well under a millisecond per second of
audio, and is what decides "no command heard" instead of letting the classifier guess on silence.
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch

from dlhub.errors import DataError

SAMPLING_RATE = 16_000
FRAME_S = 0.02
MIN_SPEECH_DBFS = -70.0  # quieter than this is silence, whatever the noise floor (a quiet microphone's speech, peaking
# at -45 dBFS, is still above it: benchmarks/commands_recordings.py)
SPEECH_OVER_FLOOR_DB = 12.0  # a frame is speech when this much louder than the clip's quietest frames
MIN_SPEECH_S = 0.08
MERGE_GAP_S = 0.25  # pauses shorter than this stay inside one word ("st-op")
# The most of an upload the Space decodes (DLHUB_MAX_AUDIO_S): a command is a second long; the rest is not read at all
MAX_UPLOAD_S = float(os.environ.get("DLHUB_MAX_AUDIO_S") or 60)


def to_mono_float(samples, name: str = "audio") -> np.ndarray:
    """int8/16/32, uint8 or float samples, shaped (T,), (T, C) or (C, T) with C ≤ 8 → float32 (T,) in about [-1, 1]."""
    a = np.asarray(samples)
    if a.size == 0:
        raise DataError(f"{name} is empty")
    if a.dtype.kind not in "iuf":
        raise DataError(f"{name} has samples of type {a.dtype}: expected numbers")
    if a.ndim == 2:
        channels_axis = 1 if a.shape[1] <= 8 and a.shape[1] < a.shape[0] else 0
        a = a.astype(np.float32).mean(axis=channels_axis) if a.dtype.kind == "f" else _scale(a).mean(axis=channels_axis)
    elif a.ndim != 1:
        raise DataError(f"{name} has shape {a.shape}: expected samples (T,) or (T, channels)")
    x = a.astype(np.float32) if a.dtype.kind == "f" else _scale(a)
    if not np.isfinite(x).all():
        raise DataError(f"{name} contains NaN or infinite samples")
    return x


def _scale(a: np.ndarray) -> np.ndarray:
    if a.dtype.kind == "u":  # unsigned PCM (8-bit WAV) is centred on half its range
        half = float(np.iinfo(a.dtype).max + 1) / 2
        return ((a.astype(np.float32) - half) / half).astype(np.float32)
    return (a.astype(np.float32) / float(np.iinfo(a.dtype).max + 1)).astype(np.float32)


def resample(x: np.ndarray, sampling_rate: int, target: int = SAMPLING_RATE) -> np.ndarray:
    if not sampling_rate or sampling_rate < 1000:
        raise DataError(f"sampling rate {sampling_rate} Hz is not audio: expected e.g. 8000, 16000, 44100 or 48000")
    if sampling_rate == target:
        return x
    import torchaudio.functional as F

    return F.resample(torch.from_numpy(np.ascontiguousarray(x)), int(sampling_rate), target).numpy()


def prepare(samples, sampling_rate: int, name: str = "audio") -> np.ndarray:
    """Any samples at any rate → float32 mono at 16 kHz."""
    return resample(to_mono_float(samples, name), sampling_rate)


def frame_dbfs(x: np.ndarray, sampling_rate: int = SAMPLING_RATE) -> np.ndarray:
    """Loudness of each 20 ms frame in dB relative to full scale."""
    n = int(FRAME_S * sampling_rate)
    frames = x[: len(x) // n * n].reshape(-1, n) if len(x) >= n else x[None]
    return 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)


def find_speech(x: np.ndarray, sampling_rate: int = SAMPLING_RATE) -> list[tuple[float, float]]:
    """(start s, end s) of each stretch of speech, louder than both the absolute floor and the clip's noise floor."""
    db = frame_dbfs(x, sampling_rate)
    floor = np.percentile(db, 10)
    threshold = max(MIN_SPEECH_DBFS, floor + SPEECH_OVER_FLOOR_DB if len(db) >= 25 else MIN_SPEECH_DBFS)
    loud = db > threshold
    segments, start = [], None
    for i, on in enumerate(np.append(loud, False)):
        if on and start is None:
            start = i
        elif not on and start is not None:
            segments.append([start * FRAME_S, i * FRAME_S])
            start = None
    merged: list[list[float]] = []
    for s in segments:
        if merged and s[0] - merged[-1][1] < MERGE_GAP_S:
            merged[-1][1] = s[1]
        else:
            merged.append(s)
    return [(s, e) for s, e in merged if e - s >= MIN_SPEECH_S]


def stretch_loudness(x: np.ndarray, stretches, sampling_rate: int = SAMPLING_RATE) -> list[float]:
    """The loudest 20 ms frame (dBFS) of each stretch (start s, end s) of `x`."""
    db = frame_dbfs(x, sampling_rate)
    return [float(db[int(s / FRAME_S):int(e / FRAME_S) + 1].max()) for s, e in stretches]


def window_start(x: np.ndarray, start_s: float, end_s: float, length: int,
                 sampling_rate: int = SAMPLING_RATE) -> int:
    """Where `window` starts (a sample index, 0 or more): `length` samples centred on
    [start_s, end_s]; when [start_s, end_s] is longer, its loudest `length` samples (a word with noise merged into its
    stretch of speech keeps the word in the window)."""
    if (end_s - start_s) * sampling_rate > length:
        frame = int(FRAME_S * sampling_rate)
        first, last = int(start_s * sampling_rate) // frame, min(int(end_s * sampling_rate), len(x)) // frame
        power = 10 ** (frame_dbfs(x[first * frame:last * frame], sampling_rate) / 10)
        span = max(1, length // frame)
        if len(power) > span:
            best = int(np.argmax(np.convolve(power, np.ones(span), mode="valid")))
            inside = power[best:best + span]  # centred on the loudness centroid of the loudest stretch
            centre_s = (first + best + np.sum(inside * np.arange(span)) / inside.sum() + 0.5) * FRAME_S
            start_s = end_s = centre_s
    centre = int((start_s + end_s) / 2 * sampling_rate)
    return max(0, min(centre - length // 2, len(x) - length))


def window(x: np.ndarray, start_s: float, end_s: float, length: int, sampling_rate: int = SAMPLING_RATE) -> np.ndarray:
    """`length` samples from `window_start` (zero-padded at the clip's end)."""
    begin = window_start(x, start_s, end_s, length, sampling_rate)
    out = x[begin:begin + length]
    return np.pad(out, (0, length - len(out))) if len(out) < length else out


def load_audio_file(path, max_seconds: float | None = None) -> tuple[np.ndarray, int, float]:
    """(samples (T,) float32 mono, sampling rate, duration s) of any file ffmpeg reads (wav, flac, mp3, ogg, webm…).
    With `max_seconds`, only the first `max_seconds` are decoded, whether or not the file's header gives its duration
    (a browser's webm recording, a stream, has none): the duration is then the header's, or math.inf when the header
    has none and there was more to decode."""
    from torchcodec.decoders import AudioDecoder

    try:
        decoder = AudioDecoder(str(path))
        duration = float(decoder.metadata.duration_seconds or 0.0)
        if max_seconds is None or 0 < duration <= max_seconds:
            samples = decoder.get_all_samples()
        else:  # a little past the cap: whether there was more tells a long file without a duration from a short one
            samples = decoder.get_samples_played_in_range(0.0, max_seconds + 0.1)
    except (RuntimeError, ValueError, OSError):  # ffmpeg's own message names internal paths, not the fix
        raise DataError("this file is not audio that can be read (wav, flac, mp3, ogg, webm…)") from None
    x = samples.data.numpy()
    if x.size == 0:
        raise DataError("the audio file holds no samples")
    rate = int(samples.sample_rate)
    if max_seconds is not None and x.shape[-1] > max_seconds * rate:
        x = x[..., :int(max_seconds * rate)]
        duration = duration or math.inf
    return to_mono_float(x.T if x.ndim == 2 else x), rate, duration or x.shape[-1] / rate


def write_wav(path, x: np.ndarray, sampling_rate: int = SAMPLING_RATE) -> None:
    """Float samples in [-1, 1] as a 16-bit mono WAV file."""
    import wave

    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sampling_rate)
        out.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())


RECORDING_FORMATS = ("wav", "webm", "mp3")
MICROPHONE_LEVELS = ("normal", "quiet", "clipped")


def user_recording(clip: np.ndarray | None, noise: np.ndarray, rng: np.random.Generator, *,
                   noisy: bool = True, level: str | None = None) -> tuple[np.ndarray, int, dict]:
    """A recording as a user makes one, at 44.1 or 48 kHz: 2–5 s holding the 16 kHz `clip` at a random place (None:
    the noise alone) over `noise` looped, 10–30 dB under the speech's own frames; then a microphone's gain (the
    loudest sample at 0.3–0.9 of full scale), and one recording in five quiet (peak −45…−30 dBFS), one in five clipped
    (a gain of 3–10, clipped at full scale). → (samples, rate, {"seconds", "snr_db", "level"}).

    A control (benchmarks/commands_recordings.py): `noisy=False` leaves the room silent under the clip and `level`
    sets the microphone; the length, rate, place and gain are drawn as otherwise, so a copy of `rng` gives the same
    recording without the noise, through that microphone."""
    if level is not None and level not in MICROPHONE_LEVELS:
        raise ValueError(f"level {level!r}: one of {', '.join(MICROPHONE_LEVELS)}")
    seconds, rate = rng.uniform(2.0, 5.0), int(rng.choice([44_100, 48_000]))
    n = int(seconds * SAMPLING_RATE)
    x = np.zeros(n, np.float32)
    snr = rng.uniform(10, 30)
    bed = np.tile(noise, n // len(noise) + 1)[:n]
    bed = np.roll(bed, int(rng.integers(len(noise))))
    if clip is not None:
        start = int(rng.integers(0, n - len(clip) + 1))
        x[start:start + len(clip)] = clip / (np.abs(clip).max() + 1e-6) * 0.5
        speech = speech_power(x[start:start + len(clip)])
        bed = bed * np.sqrt(speech / (np.mean(bed ** 2) + 1e-12) / 10 ** (snr / 10)) * noisy
    else:
        bed = bed / (np.abs(bed).max() + 1e-6) * rng.uniform(0.05, 0.5)
    x = resample((x + bed).astype(np.float32), SAMPLING_RATE, rate)  # the sound at the microphone's rate
    x = x / (np.abs(x).max() + 1e-6) * rng.uniform(0.3, 0.9)  # a microphone's gain: the loudest sample under full scale
    drawn = MICROPHONE_LEVELS[int(rng.choice(3, p=[0.6, 0.2, 0.2]))]
    level = level or drawn
    if level == "quiet":
        x = x / (np.abs(x).max() + 1e-6) * 10 ** (rng.uniform(-45, -30) / 20)
    elif level == "clipped":
        x = np.clip(x * rng.uniform(3, 10), -1, 1)
    return x, rate, {"seconds": seconds, "snr_db": snr if clip is not None and noisy else None, "level": level}


def save_recording(x: np.ndarray, rate: int, fmt: str, folder, name: str):
    """The recording as a file of `fmt` (RECORDING_FORMATS), written the way a browser (WebM/Opus) or a phone (MP3)
    sends it (ffmpeg) → its path."""
    import subprocess
    from pathlib import Path

    wav = Path(folder) / f"{name}.wav"
    write_wav(wav, x, rate)
    if fmt == "wav":
        return wav
    out = Path(folder) / f"{name}.{fmt}"
    codec = ["-c:a", "libopus", "-b:a", "48k"] if fmt == "webm" else ["-c:a", "libmp3lame", "-b:a", "96k"]
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(wav), *codec, str(out)], check=True)
    wav.unlink()
    return out


def decode_clips(split, clip: int) -> np.ndarray:
    """(N, clip) float32 16 kHz from a dataset split's `audio` column: each clip cut or zero-padded around its
    speech, as `predict` does (the training script and the benchmark read clips the same way)."""
    waves = np.zeros((len(split), clip), np.float32)
    for i, row in enumerate(split):
        x = row["audio"].get_all_samples().data.mean(0).numpy()
        waves[i] = window(x, 0, len(x) / SAMPLING_RATE, clip)
    return waves


def shift(waves: np.ndarray, samples: int) -> np.ndarray:
    """Clips (N, clip) moved `samples` earlier (later where negative) within their own length, zero-filled: what a
    window placed `samples` later on the recording would hold, with silence beyond the clip."""
    clip = waves.shape[1]
    padded = np.pad(waves, ((0, 0), (clip, clip)))
    return np.ascontiguousarray(padded[:, clip + samples: 2 * clip + samples])


def augment_speech(waves: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The training augmentation of clips (N, clip): speed ±15% (pitch moves with it, like a faster or slower
    talker), shift ±100 ms, gain, white or brown noise at 5–40 dB SNR."""
    import torchaudio.functional as F

    out = np.empty_like(waves)
    clip = waves.shape[1]
    for i, x in enumerate(waves):
        rate = int(SAMPLING_RATE * rng.uniform(0.85, 1.15)) // 100 * 100
        x = F.resample(torch.from_numpy(x), rate, SAMPLING_RATE).numpy()  # faster speech = fewer samples
        shift = int(rng.uniform(-0.1, 0.1) * SAMPLING_RATE) + (len(x) - clip) // 2
        x = np.pad(x, (clip, clip))[clip + shift: 2 * clip + shift]
        x = x * rng.uniform(0.3, 1.5)
        if rng.random() < 0.8:
            noise = rng.standard_normal(clip).astype(np.float32)
            if rng.random() < 0.5:  # brown-ish noise: hum and rumble rather than hiss
                noise = np.cumsum(noise)
                noise -= np.convolve(noise, np.ones(400) / 400, mode="same")
            snr_db = rng.uniform(5, 40)
            noise *= np.sqrt((np.mean(x ** 2) + 1e-8) / (np.mean(noise ** 2) + 1e-12) / 10 ** (snr_db / 10))
            x = x + noise
        out[i] = x
    return out


def speech_power(x: np.ndarray, sampling_rate: int = SAMPLING_RATE) -> float:
    """Mean power of a clip's speech: its 20 ms frames within 20 dB of the loudest (an SNR against this is the one a
    listener hears; a mean over the whole clip counts the silence around the word too)."""
    db = frame_dbfs(x, sampling_rate)
    return float(np.mean(10 ** (db[db > db.max() - 20] / 10)))


def room_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """n samples of a steady source that swells and fades (a fan, traffic, a tap), unit rms: white, pink-ish or
    brown-ish noise under a slow random envelope (0.3–3 swells a second, 6–20 dB deep). The noise class then holds
    loudness that moves without being speech: otherwise a swell of rumble, turned up by a microphone, reads as a
    word."""
    noise = rng.standard_normal(n)
    colour = rng.integers(3)
    if colour:  # 1: pink-ish (a one-pole low-pass), 2: brown-ish (integrated, its slow drift removed)
        noise = np.cumsum(noise) if colour == 2 else np.convolve(noise, 0.9 ** np.arange(40), mode="same")
        noise -= np.convolve(noise, np.ones(800) / 800, mode="same")
    t = np.arange(n) / SAMPLING_RATE
    depth = 1 - 10 ** (-rng.uniform(6, 20) / 20)
    envelope = 1 - depth * (0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.3, 3) * t + rng.uniform(0, 2 * np.pi)))
    noise = noise * envelope
    return (noise / (noise.std() + 1e-12)).astype(np.float32)


def augment_recording(waves: np.ndarray, noises: np.ndarray, rng: np.random.Generator,
                      is_noise: np.ndarray | None = None) -> np.ndarray:
    """Clips (N, clip) as a user's microphone gives them: speed ±15%, the word shifted up to ±200 ms in the window,
    a real noise recording (`noises` (M, clip): the training split's own noise clips) 5–30 dB under the speech's own
    frames (`speech_power`), then a microphone: one clip in four clipped hard (peak 0.3–0.9, then a gain of 2–10 at
    full scale), the others at a level from -48 dBFS to full scale. Rows marked `is_noise` are noise already: half of
    them get a second source under them first (`room_noise`), then the microphone."""
    import torchaudio.functional as F

    out = np.empty_like(waves)
    clip = waves.shape[1]
    for i, x in enumerate(waves):
        if is_noise is None or not is_noise[i]:
            rate = int(SAMPLING_RATE * rng.uniform(0.85, 1.15)) // 100 * 100
            x = F.resample(torch.from_numpy(x), rate, SAMPLING_RATE).numpy()
            shift = int(rng.uniform(-0.2, 0.2) * SAMPLING_RATE) + (len(x) - clip) // 2
            x = np.pad(x, (clip, clip))[clip + shift: 2 * clip + shift]
            noise = noises[rng.integers(len(noises))].astype(np.float32)
            if rng.random() < 0.3:  # a second, broadband source: a fan or a hum under the room noise
                noise = noise + rng.standard_normal(clip).astype(np.float32) * noise.std()
            snr_db = rng.uniform(5, 30)
            noise = noise * np.sqrt(speech_power(x) / (np.mean(noise ** 2) + 1e-12) / 10 ** (snr_db / 10))
            x = x + noise
        elif rng.random() < 0.5:
            x = x + room_noise(clip, rng) * x.std() * 10 ** rng.uniform(-0.5, 1.0)
        x = x / (np.abs(x).max() + 1e-6)
        if rng.random() < 1 / 4:  # a microphone driven past full scale: the loud part of the word flattened
            x = np.clip(x * rng.uniform(0.3, 0.9) * rng.uniform(2, 10), -1, 1)
        else:
            x = x * 10 ** rng.uniform(-2.4, 0.0)
        out[i] = x
    return out
