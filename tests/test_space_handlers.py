"""The Space's event handlers called directly: right answers, and bad input as gr.Error / gr.Warning."""

from pathlib import Path

import gradio as gr
import numpy as np
import pytest

from spaces import exercises, regression


def test_refit_moves_with_sigma():
    data = regression.example_data()
    *_, low = regression.refit(data, 1.0)
    *_, high = regression.refit(data, 100.0)
    assert "σ = 1," in low and "σ = 100," in high and low != high


@pytest.mark.parametrize("sigma", [0, -3, None])
def test_refit_rejects_bad_sigma(sigma):
    with pytest.raises(gr.Error, match="σ must be a positive number"):
        regression.refit(regression.example_data(), sigma)


def test_uploaded_files_replace_the_example(task1_dir):
    data = regression.load_data(str(task1_dir / "Task1_1.npz"), None)
    assert data["uploaded"] and "Task1_1.npz" in data["name"]
    assert np.array_equal(data["reg"]["X_trn"], np.load(task1_dir / "Task1_1.npz")["X_trn"].reshape(-1))
    fig, _, summary = regression.refit(data, 40.0)
    assert "uploaded Task1_1.npz" in summary
    assert any("bundled model" in line.get_label() for line in fig.axes[0].get_lines())


def test_bad_upload_is_a_gr_error(tmp_path):
    bad = tmp_path / "Task1_1.npz"
    np.savez(bad, X_trn=np.ones((3, 1)))
    with pytest.raises(gr.Error, match="missing keys"):
        regression.load_data(str(bad), None)


def test_choose_sigma_is_within_the_slider():
    sigma = regression.choose_sigma(regression.example_data())
    assert regression.SIGMA_MIN <= sigma <= regression.SIGMA_MAX


def test_bundled_model_summary_reports_its_source_and_metrics():
    text = regression.model_summary()
    assert "bundled checkpoint" in text and "reweighted validation MSE" in text


def test_exercise_explanation_checks_autograd():
    text = exercises.explain("1", "1", "1", "0.1", *[str(v) for v in exercises.COURSE_WEIGHTS.values()])
    assert text.count("✓ yes") == 3 and "✗" not in text
    assert "0.611755" in text  # −ln ŷ for y = 1 at the course's weights and x = (1, 1)


@pytest.mark.parametrize("bad", ["abc", "", "nan", "1e999"])
def test_non_numeric_entries_warn(bad):
    with pytest.warns(UserWarning, match="Not a finite number: x1"):
        out = exercises.explain(bad, "1", "1", "0.1", *["0.1"] * 9)
    assert out == gr.skip()


def test_label_outside_unit_interval_warns():
    with pytest.warns(UserWarning, match=r"label y must lie in \[0, 1\]"):
        exercises.explain("1", "1", "3", "0.1", *["0.1"] * 9)


def test_z_view_plots_n_compositions():
    fig, text = exercises.z_view(1000)
    assert "z composed 1000 times" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "2.3504" in text


def face_image(size=96, shape=None):
    """Path of a generated face photo (RGB PNG) in a temporary folder, as an upload arrives."""
    import tempfile

    from conftest import synthetic_faces
    from PIL import Image

    path = Path(tempfile.mkdtemp()) / "face.png"
    image = Image.fromarray(synthetic_faces(1, size=size)[0]).convert("RGB")
    (image.resize(shape) if shape else image).save(path)
    return str(path)


def test_denoising_psnr_moves_with_sigma():
    from spaces import denoising

    clean, noisy, denoised, low = denoising.run(face_image(), 0.1, 0, False)
    *_, high = denoising.run(face_image(), 0.4, 0, False)
    assert clean.size == noisy.size == denoised.size == (96, 96)
    assert "σ = 0.10" in low and "σ = 0.40" in high and low != high
    assert "∞ dB" in denoising.run(face_image(), 0.0, 0, False)[3]


def test_denoising_an_already_noisy_photo_has_no_psnr():
    from spaces import denoising

    clean, noisy, denoised, text = denoising.run(face_image(), 0.2, 0, True)
    assert clean is None and denoised.size == noisy.size and "no PSNR" in text


def test_denoising_bad_images(tmp_path):
    from PIL import Image

    from spaces import denoising

    with pytest.raises(gr.Error, match="No image"):
        denoising.run(None, 0.2, 0, False)
    Image.new("RGB", (2, 2)).save(tmp_path / "tiny.png")
    with pytest.raises(gr.Error, match="2×2 px"):
        denoising.run(str(tmp_path / "tiny.png"), 0.2, 0, False)
    (tmp_path / "fake.png").write_bytes(b"%PDF-1.4 not an image")
    with pytest.raises(gr.Error, match="not an image that can be read"):
        denoising.run(str(tmp_path / "fake.png"), 0.2, 0, False)
    *_, text = denoising.run(face_image(shape=(2000, 1000)), 0.2, 0, False)
    assert "Scaled from 2000×1000 to 512×256 px" in text


def test_signs_tab_top5_view_and_grad_cam(tmp_path):
    from dlhub.sign_drawings import draw_sign
    from spaces import signs

    path = tmp_path / "stop.png"
    draw_sign(14, 80).save(path)
    probabilities, seen, cam, note = signs.classify(str(path))
    assert len(probabilities) == 5 and seen.size == cam.size == (signs.SHOWN, signs.SHOWN)
    assert "Grad-CAM" in note


def test_signs_tab_bad_files(tmp_path):
    from PIL import Image

    from spaces import signs

    text = tmp_path / "not_an_image.png"
    text.write_text("hello")
    with pytest.raises(gr.Error, match="not an image"):
        signs.classify(str(text))
    huge = tmp_path / "huge.png"
    Image.new("1", (20000, 20000)).save(huge)  # 1 bit per pixel: a small file for a 400-megapixel image
    with pytest.raises(gr.Error, match="too large: use one under 50 megapixels"):  # refused before decoding
        signs.classify(str(huge))
    with pytest.raises(gr.Error, match="No image"):
        signs.classify(None)


def test_commands_tab_hears_each_example_and_plots_it():
    from spaces import commands

    examples = commands.examples()
    assert len(examples) == len(commands.EXAMPLE_WORDS)
    for path, (word, _) in zip(examples, commands.EXAMPLE_WORDS):
        scores, verdict, figure = commands.recognise(path)
        assert next(iter(scores)) == word and len(scores) == 3 and f"**{word}**" in verdict
        assert len(figure.axes) == 2


def test_commands_tab_any_format_and_rate(tmp_path):
    import subprocess

    from espeak import speak, write_wav

    from dlhub import audio
    from spaces import commands

    x, rate = speak("left", "en-us")
    stereo_48k = np.round(np.stack([audio.resample(x / 32768, rate, 48000)] * 2, 1) * 20000).astype(np.int16)
    wav = write_wav(tmp_path / "left.wav", stereo_48k, 48000)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", wav, "-ar", "8000", str(tmp_path / "left.ogg")], check=True)
    for path in (wav, tmp_path / "left.ogg"):
        scores, verdict, _ = commands.recognise(str(path))
        assert next(iter(scores)) == "left", (path, scores)


def test_commands_tab_silence_short_and_broken_files(tmp_path):
    from espeak import write_wav

    from spaces import commands

    quiet = np.random.default_rng(0).normal(0, 20, 32000).astype(np.int16)
    scores, verdict, _ = commands.recognise(write_wav(tmp_path / "quiet.wav", quiet, 16000))
    assert scores is None and "No command heard" in verdict
    with pytest.raises(gr.Error, match="0.01 s long"):
        commands.recognise(write_wav(tmp_path / "short.wav", quiet[:160], 16000))
    (tmp_path / "fake.wav").write_bytes(b"RIFF not really a wave file" * 20)
    with pytest.raises(gr.Error, match="not audio that can be read"):
        commands.recognise(str(tmp_path / "fake.wav"))
    with pytest.raises(gr.Error, match="No audio"):
        commands.recognise(None)


def test_commands_tab_continuous_mode_lists_words_as_they_end():
    from espeak import speak

    from spaces import commands

    words = ["up", "stop", "go"]
    parts = [speak(w, "en", silence_s=0.5) for w in words]
    stream = np.concatenate([p for p, _ in parts])
    rate, state, shown = parts[0][1], None, ""
    for i in range(0, len(stream), rate // 2):  # half-second chunks, as the browser streams them
        shown, state = commands.listen((rate, stream[i:i + rate // 2]), state)
    shown, state = commands.listen((rate, np.zeros(rate, np.int16)), state)  # a pause ends the last word
    assert [w for _, w in state["heard"]] == words, shown
    assert all(f"**{w}**" in shown for w in words)


def test_landmarks_tab_draws_the_astronaut_and_lists_68_points():
    from spaces import landmarks

    (example,) = landmarks.examples()
    drawn, rows, table, summary = landmarks.run(example, True, True, True)
    assert "1 face" in summary and len(rows) == 68 and rows[0][:2] == [1, 1]
    assert drawn.size == (512, 512)
    with open(table) as f:
        assert f.readline().strip() == "face,point,x,y" and len(f.readlines()) == 68
    plain, *_ = landmarks.run(example, False, False, False)
    assert np.asarray(plain).tolist() != np.asarray(drawn).tolist()  # the toggles change the drawing


def test_landmarks_tab_no_face_and_bad_files(tmp_path):
    from PIL import Image

    from spaces import landmarks

    sky = tmp_path / "sky.png"
    Image.new("RGB", (400, 300), (120, 170, 230)).save(sky)
    drawn, rows, table, summary = landmarks.run(str(sky), True, True, False)
    assert rows == [] and table is None and "No face found" in summary
    (tmp_path / "fake.jpg").write_bytes(b"not an image")
    with pytest.raises(gr.Error, match="not an image"):
        landmarks.run(str(tmp_path / "fake.jpg"), True, True, False)
    with pytest.raises(gr.Error, match="No image"):
        landmarks.run(None, True, True, False)
