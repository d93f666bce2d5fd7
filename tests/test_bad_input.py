"""The bad-input matrix, through the running Space's API (gradio_client): every tab gets empty, mislabelled, tiny,
huge and malformed input; each answer is a clear message or a correct result, never a traceback, and the server
answers the next good request."""


import time

import numpy as np
import pytest
from espeak import speak, write_wav
from PIL import Image

from dlhub import audio
from dlhub.sign_drawings import draw_sign

pytestmark = pytest.mark.slow
GENERIC = "error occurred"  # what Gradio says for an unexpected exception (show_error=False): a bug, not a message


@pytest.fixture(scope="module")
def space(tmp_path_factory):
    """The Space for this module, with its log (a gr.Warning reaches the page, and the log as a UserWarning)."""
    from conftest import start_space, stop_space

    log = tmp_path_factory.mktemp("space") / "app.log"
    proc, url, _ = start_space(log)
    yield url, log
    stop_space(proc, log)


@pytest.fixture(scope="module")
def client(space):
    from gradio_client import Client

    return Client(space[0], verbose=False)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    out = {}
    (d / "text.png").write_text("this is not an image")
    (d / "text.wav").write_text("this is not audio")
    (d / "text.npz").write_text("this is not numpy")
    out["fake_png"], out["fake_wav"], out["fake_npz"] = str(d / "text.png"), str(d / "text.wav"), str(d / "text.npz")
    Image.new("RGB", (1, 1), (200, 0, 0)).save(d / "one.png")
    Image.new("L", (10_000, 10_000), 128).save(d / "huge.png")  # 100 megapixels, a few hundred kB compressed
    out["one_px"], out["huge"] = str(d / "one.png"), str(d / "huge.png")
    draw_sign(14, 96, seed=3).save(d / "stop_sign.png")
    out["sign"] = str(d / "stop_sign.png")
    from skimage import data

    Image.fromarray(data.astronaut()).save(d / "astronaut.png")
    out["photo"] = str(d / "astronaut.png")
    x, rate = speak("go", "en-us")
    speech = audio.resample(x / 32768.0, rate, 16000)
    out["short"] = write_wav(d / "short.wav", np.zeros(160, np.int16), 16000)
    out["ten_min"] = write_wav(d / "ten_min.wav", np.full(8000 * 600, 128, np.uint8), 8000)  # 10 min of 8-bit silence
    nan = speech.astype(np.float32).copy()
    nan[100] = np.nan
    out["nan"] = write_float_wav(d / "nan.wav", nan, 16000)
    out["u8"] = write_wav(d / "u8.wav", np.clip(speech * 127 + 128, 0, 255).astype(np.uint8), 16000)
    out["f32"] = write_float_wav(d / "f32.wav", speech.astype(np.float32), 16000)
    stereo = audio.resample(speech, 16000, 48000)
    out["stereo48k"] = write_wav(d / "stereo48k.wav", np.round(np.stack([stereo, stereo], 1) * 30000).astype(np.int16),
                                 48000)
    return out


def write_float_wav(path, samples: np.ndarray, rate: int) -> str:
    """32-bit IEEE float WAV (format 3), which the `wave` module cannot write."""
    from scipy.io import wavfile

    wavfile.write(path, rate, samples.astype(np.float32))
    return str(path)


def is_empty(value) -> bool:
    """A cleared output: None, '', [], or a component dict whose contents are empty."""
    if isinstance(value, dict):
        return all(is_empty(v) for k, v in value.items() if k not in ("headers", "metadata", "__type__"))
    return not value


def call(client, endpoint, *args):
    """('ok', result) or ('error', message); an unexpected server exception fails the test."""
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    args = [handle_file(a) if isinstance(a, str) and a.startswith("/") else a for a in args]
    try:
        return "ok", client.predict(*args, api_name=endpoint)
    except AppError as err:
        message = str(err)
        assert message and GENERIC not in message.lower() and "Traceback" not in message, message
        return "error", message


IMAGE_TABS = [("/denoise", lambda f: [f, 0.2, 0, False]), ("/classify_sign", lambda f: [f]),
              ("/face_landmarks", lambda f: [f, True, True, False])]
IMAGE_CASES = [(None, "No image"), ("fake_png", "not an image"), ("one_px", "at least 8 px"),
               ("huge", "megapixels")]
AUDIO_CASES = [(None, "No audio"), ("fake_wav", "not audio that can be read"), ("short", "s long"),
               ("ten_min", "No command heard"), ("nan", "NaN"), ("u8", "go"), ("f32", "go"), ("stereo48k", "go")]


@pytest.mark.parametrize("endpoint,make", IMAGE_TABS, ids=[t[0] for t in IMAGE_TABS])
@pytest.mark.parametrize("case,expected", IMAGE_CASES, ids=[c[0] or "empty" for c in IMAGE_CASES])
def test_image_tabs(client, files, endpoint, make, case, expected):
    status, answer = call(client, endpoint, *make(files[case] if case else None))
    if case is None and status == "ok":  # a cleared input clears the tab's outputs
        assert all(is_empty(v) for v in answer), answer
    else:
        assert status == "error" and expected in answer, answer
    assert call(client, endpoint, *make(files["sign" if "sign" in endpoint else "photo"]))[0] == "ok"  # still up


@pytest.mark.parametrize("case,expected", AUDIO_CASES, ids=[c[0] or "empty" for c in AUDIO_CASES])
def test_voice_commands_tab(client, files, case, expected):
    status, answer = call(client, "/recognise_command", files[case] if case else None)
    if status == "ok" and case is None:
        assert all(is_empty(v) for v in answer), answer
    elif status == "ok":
        scores, verdict, _ = answer
        assert expected in verdict, (case, verdict)
    else:
        assert expected in answer, (case, answer)
    assert call(client, "/recognise_command", files["u8"])[0] == "ok"


def test_regression_and_exercise_tabs(client, files, space):
    status, answer = call(client, "/load_regression_file", files["fake_npz"])
    assert status == "error" and "npz" in answer.lower(), answer
    status, answer = call(client, "/regression_refit", -5.0)
    assert status == "error" and answer == "σ must be a number from 0.1 to 300; got -5.0.", answer
    assert call(client, "/z_composed", 0)[0] == "error"  # and so does the exercises' slider
    assert "Traceback" not in space[1].read_text()  # refused as the visitor's error, not logged as a bug
    status, answer = call(client, "/mlp_exercise", "one", "1", "1", "0.1", *["0.1"] * 9)
    assert status == "ok" and answer == "", answer  # the old result is cleared, and a warning names the bad entry:
    warning = "Not a finite number: x1 = 'one'. Type a number such as 0.4 or -1e-2."
    for _ in range(50):  # the log is written by the server process
        if warning in space[1].read_text():
            break
        time.sleep(0.1)
    assert warning in space[1].read_text()
    assert call(client, "/z_composed", 1000)[0] == "ok"
