"""Spoken words for tests: Debian's espeak-ng (listed in packages.txt) in several voices, as 16-bit WAV."""

import io
import shutil
import subprocess
import wave

import numpy as np
import pytest

VOICES = ["en", "en-us", "en+f3", "en-us+m3"]


def speak(word: str, voice: str = "en", silence_s: float = 0.3) -> tuple[np.ndarray, int]:
    """(int16 samples with silence around the word, sampling rate)."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed: run `make install-dev` (it reads packages.txt)")
    data = subprocess.run(["espeak-ng", "-v", voice, "-s", "140", "--stdout", word], check=True,
                          capture_output=True, timeout=30).stdout
    with wave.open(io.BytesIO(data)) as w:
        rate, samples = w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), np.int16)
    pad = np.zeros(int(silence_s * rate), np.int16)
    return np.concatenate([pad, samples, pad]), rate


def write_wav(path, samples: np.ndarray, rate: int) -> str:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1 if samples.ndim == 1 else samples.shape[1])
        w.setsampwidth(samples.dtype.itemsize)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return str(path)
