"""The Space's event handlers called directly: right answers, and bad input as gr.Error / gr.Warning."""

from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from dlhub.space import exercises, regression


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
    data = regression.load_regression_file(str(task1_dir / "Task1_1.npz"))
    assert regression.data_name(data, "reg") == "uploaded Task1_1.npz"
    assert regression.data_name(data, "clf") == regression.EXAMPLE
    assert np.array_equal(data["reg"]["X_trn"], np.load(task1_dir / "Task1_1.npz")["X_trn"].reshape(-1))
    fig, _, summary = regression.refit(data, 40.0)
    assert "uploaded Task1_1.npz" in summary
    assert any("bundled model" in line.get_label() for line in fig.axes[0].get_lines())


def test_bad_upload_is_a_gr_error(tmp_path):
    bad = tmp_path / "Task1_1.npz"
    np.savez(bad, X_trn=np.ones((3, 1)))
    with pytest.raises(gr.Error, match="missing keys"):
        regression.load_regression_file(str(bad))


def test_each_file_fills_its_own_part_and_a_bad_one_changes_nothing(task1_dir, tmp_path):
    data = regression.load_classification_file(str(task1_dir / "Task1_2.npz"))
    (tmp_path / "bad").mkdir()
    bad = tmp_path / "bad" / "Task1_1.npz"
    np.savez(bad, X_trn=np.ones((3, 1)))
    with pytest.raises(gr.Error, match="missing keys"):
        regression.load_regression_file(str(bad), data)
    assert regression.data_name(data, "clf") == "uploaded Task1_2.npz"
    assert regression.data_name(data, "reg") == regression.EXAMPLE
    data = regression.load_regression_file(str(task1_dir / "Task1_1.npz"), data)
    assert regression.data_name(data, "clf") == "uploaded Task1_2.npz"
    assert regression.data_name(data, "reg") == "uploaded Task1_1.npz"
    data = regression.load_classification_file(None, data)  # the file removed: back to example data for 1.2 only
    assert regression.data_name(data, "clf") == regression.EXAMPLE
    assert np.array_equal(data["clf"]["X_train"], regression.example_data()["clf"]["X_train"])
    assert regression.data_name(data, "reg") == "uploaded Task1_1.npz"


def test_choose_sigma_is_within_the_slider_and_says_so():
    data = regression.example_data()
    sigma, data = regression.choose_sigma(data)
    assert regression.SIGMA_MIN <= sigma <= regression.SIGMA_MAX and data["chosen_sigma"] == sigma
    *_, summary = regression.refit(data, sigma)
    assert "chosen on this data's validation set" in summary
    *_, summary = regression.refit(data, sigma + 1)
    assert "set by hand" in summary
    *_, summary = regression.refit(regression.example_data(), regression.default_sigma())
    assert "the bundled model's, chosen on the course's data, not on this data" in summary


@pytest.mark.slow  # 20,000 gradient-descent steps, as the tab runs them: about a minute on 2 cores
def test_training_reports_progress_and_explains_equal_accuracy():
    seen = []
    *_, summary = regression.train(regression.example_data(), progress=lambda f, desc=None: seen.append(f))
    assert len(seen) > 10 and seen == sorted(seen) and seen[-1] == pytest.approx(1.0)  # the bar moves to the end
    assert "decay changes nothing here" in summary and "On the course's own data, which bundled model was trained " \
        "on, it does: test accuracy" in summary


def test_bundled_model_summary_reports_its_source_and_metrics():
    text = regression.model_summary()
    assert "Bundled model" in text and "reweighted validation MSE" in text
    assert "/work" not in text and "HF_ENDPOINT" not in text  # no server paths or environment advice


def test_exercise_opens_on_the_course_question():
    inputs = [exercises.DEFAULTS[k] for k in ("x1", "x2", "y", "lr")]
    assert inputs == [1.0, 2.0, 0.0, 0.1]
    text = exercises.explain(*map(str, inputs), *[str(v) for v in exercises.COURSE_WEIGHTS.values()])
    assert text.count("✓ yes") == 3 and "✗" not in text
    assert "ŷ = σ(s6) = 0.6271" in text
    assert "y = 0: L = −ln(1 − ŷ) = **0.9866**" in text and "y = 1: L = −ln ŷ = **0.4666**" in text
    assert "w36 ← −0.2 − 0.1 · 0.2509 = **−0.2251**" in text
    assert "w25 ← 0.1 − 0.1 · 0 = **0.1**" in text  # neuron 5's ReLU is off
    assert "s4 = 1 · (−0.2) + 2 · 0.7 = 1.2" in text and "−0" not in text.replace("−0.", "")
    assert "1.3 Is the loss bigger or smaller" in text and "**bigger** than for y = 1" in text
    assert "L = 0.9803: **smaller** than 0.9866" in text


@pytest.mark.parametrize("bad", ["abc", "", "nan", "1e999"])
def test_non_numeric_entries_warn(bad):
    with pytest.warns(UserWarning, match="Not a finite number: x1"):
        out = exercises.explain(bad, "1", "1", "0.1", *["0.1"] * 9)
    assert out == ""  # the old result is cleared: it answered other numbers


def test_label_outside_unit_interval_warns():
    with pytest.warns(UserWarning, match=r"label y must lie in \[0, 1\]"):
        exercises.explain("1", "1", "3", "0.1", *["0.1"] * 9)


@pytest.mark.parametrize("lr", ["0", "-1"])
def test_learning_rate_not_above_zero_warns(lr):
    with pytest.warns(UserWarning, match="learning rate lr must be above 0"):
        out = exercises.explain("1", "2", "0", lr, *["0.1"] * 9)
    assert out == ""


def test_z_view_plots_n_compositions_and_explains_that_n():
    fig, text = exercises.z_view(1000)
    assert "z composed 1000 times" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "2.3504" in text and "n = 1000" in text and "step function" in text
    _, text = exercises.z_view(3)
    assert "n = 3" in text and "z_3′(0) = 2^3 = 8" in text and "step function" not in text


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
    from dlhub.space import denoising

    clean, noisy, denoised, low = denoising.run(face_image(), 0.1, 0, False)
    *_, high = denoising.run(face_image(), 0.4, 0, False)
    assert Image.open(clean).size == Image.open(noisy).size == Image.open(denoised).size == (96, 96)
    assert "σ = 0.10" in low and "σ = 0.40" in high and low != high
    assert "∞ dB" in denoising.run(face_image(), 0.0, 0, False)[3]


def test_denoising_model_choice_both_bundled_models_answer_and_say_so():
    from dlhub.space import denoising

    face = face_image()
    conv = denoising.run(face, 0.2, 0, False)  # /denoise's four inputs: the default model
    assert conv[3] == denoising.run(face, 0.2, 0, False, "default")[3]
    assert conv[3] == denoising.run(face, 0.2, 0, False, denoising.CONV)[3]  # the old radio's names still work
    mlp = denoising.run(face, 0.2, 0, False, denoising.COURSE_MLP_KEY)
    assert mlp[3] == denoising.run(face, 0.2, 0, False, denoising.COURSE_MLP)[3]
    assert ("Denoised by the bundled checkpoint `checkpoints/denoiser`, a `conv` autoencoder (at the photo's own "
            "resolution)") in conv[3] and "Table 3" not in conv[3]
    assert ("Denoised by the bundled checkpoint `checkpoints/denoiser-mlp`, an MLP as the course's Table 3 (4,096 → "
            "128 → 4,096, at 64×64 px") in mlp[3]
    assert Image.open(mlp[2]).size == Image.open(conv[2]).size == (96, 96)
    assert np.array_equal(np.asarray(Image.open(mlp[1])), np.asarray(Image.open(conv[1])))  # the same noisy input
    assert not np.array_equal(np.asarray(Image.open(mlp[2])), np.asarray(Image.open(conv[2])))
    assert "Table 3" in denoising.run(face, 0.2, 0, True, denoising.COURSE_MLP_KEY)[3]
    assert denoising.describe(denoising.model(), {}).startswith("A `conv` autoencoder trained on faces with σ")
    assert denoising.describe(denoising.model(denoising.COURSE_MLP_KEY), {}) == \
        "The course's Table 3 MLP trained on faces with σ = 0.2."
    with pytest.raises(gr.Error, match="'unet' names no model: choose one from the list, or enter ORG/NAME"):
        denoising.run(face, 0.2, 0, False, "unet")


def test_denoising_an_already_noisy_photo_has_no_psnr():
    from dlhub.space import denoising

    clean, noisy, denoised, text = denoising.run(face_image(), 0.2, 0, True)
    assert clean is None and Image.open(denoised).size == Image.open(noisy).size and "no PSNR" in text


@pytest.mark.parametrize("seed", [-1, 2**31, 1.5, "abc", None])
def test_denoising_seed_outside_the_range_is_a_clear_message(seed):
    from dlhub.space import denoising

    with pytest.raises(gr.Error, match="The noise seed must be a whole number from 0 to 2,147,483,647"):
        denoising.run(face_image(), 0.2, seed, False)


def test_denoising_bad_images(tmp_path):
    from PIL import Image

    from dlhub.space import denoising

    with pytest.raises(gr.Error, match="No image"):
        denoising.run(None, 0.2, 0, False)
    Image.new("RGB", (2, 2)).save(tmp_path / "tiny.png")
    with pytest.raises(gr.Error, match="2×2 px"):
        denoising.run(str(tmp_path / "tiny.png"), 0.2, 0, False)
    (tmp_path / "fake.png").write_bytes(b"%PDF-1.4 not an image")
    with pytest.raises(gr.Error, match="not an image that can be read"):
        denoising.run(str(tmp_path / "fake.png"), 0.2, 0, False)
    *_, text = denoising.run(face_image(shape=(2000, 1000)), 0.2, 0, False)
    assert "autoencoder (at 512×256 px). Scaled from 2000×1000 to 512×256 px" in text and "own resolution" not in text
    assert "own resolution" in denoising.run(face_image(shape=(200, 100)), 0.2, 0, False)[-1]


def test_signs_tab_top5_view_and_grad_cam(tmp_path):
    from dlhub.sign_drawings import draw_sign
    from dlhub.space import signs

    path = tmp_path / "stop.png"
    draw_sign(14, 80).save(path)
    probabilities, seen, cam, note = signs.classify(str(path))
    assert len(probabilities) == 5 and Image.open(seen).size == (signs.SHOWN, signs.SHOWN)
    assert Image.open(cam).height == signs.SHOWN and Image.open(cam).width > signs.SHOWN  # the colour scale beside it
    assert "Grad-CAM" in note and "label smoothing" in note and "Not sure" not in note


def test_signs_tab_says_when_a_photo_may_not_be_a_sign(tmp_path):
    from conftest import synthetic_faces

    from dlhub.space import signs

    path = tmp_path / "face.png"
    Image.fromarray(synthetic_faces(1, 96)[0]).save(path)
    probabilities, _, _, note = signs.classify(str(path))
    assert max(probabilities.values()) < signs.UNSURE
    assert note.startswith(f"**Not sure this is a traffic sign:** the top class has only "
                           f"{max(probabilities.values()):.0%}")


def test_grad_cam_leaves_no_hook_and_matches_a_hooked_reference(tmp_path):
    """Grad-CAM runs the layers itself (no hook on the shared model); the result equals the textbook hook version."""
    import torch

    from dlhub.sign_drawings import draw_sign
    from dlhub.space import signs

    model = signs.model()
    image = draw_sign(17, 80)
    heat, index = model.grad_cam(image)
    assert not any(m._forward_hooks for m in model.modules())
    captured = {}
    hook = model.features[-1].act.register_forward_hook(lambda m, i, out: captured.setdefault("a", out))
    try:
        with torch.enable_grad():
            logits = model(model.preprocess([image]))
            grads = torch.autograd.grad(logits[0, index], captured["a"])[0]
    finally:
        hook.remove()
    cam = torch.relu((grads.mean(dim=(2, 3), keepdim=True) * captured["a"]).sum(1, keepdim=True))
    cam = torch.nn.functional.interpolate(cam, size=(model.input_size,) * 2, mode="bilinear", align_corners=False)
    assert np.allclose(heat, (cam / cam.max())[0, 0].detach().numpy(), atol=1e-5)


def test_signs_tab_bad_files(tmp_path):
    from PIL import Image

    from dlhub.space import signs

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
    from dlhub.space import commands

    examples = commands.examples()
    assert len(examples) == len(commands.EXAMPLE_WORDS) + 1 and examples[-1].endswith("noise.wav")
    for path, (word, _) in zip(examples, commands.EXAMPLE_WORDS):
        scores, verdict, figure = commands.recognise(path)
        if word in commands.WORDS:
            assert next(iter(scores)) == word and len(scores) == 3 and f"**{word}**" in verdict
        else:  # "hello": speech, but not a command
            assert next(iter(scores)) == "unknown" and verdict.startswith(commands.NOT_A_COMMAND)
        assert len(figure.axes) == 2
    _, verdict, _ = commands.recognise(examples[-1])
    assert verdict.startswith(commands.NO_COMMAND) and "Answered by the bundled checkpoint" in verdict


def test_commands_tab_says_it_is_unsure_below_sure_and_answers_the_command_over_louder_noise(monkeypatch):
    from dlhub.commands import SURE, CommandClassifier
    from dlhub.space import commands

    path = commands.examples()[0]
    stretches = [{"start": 0.1, "end": 0.4, "scores": {"silence": 0.9, "up": 0.1}},
                 {"start": 0.5, "end": 0.9, "scores": {"up": SURE - 0.05, "off": 0.2}}]
    monkeypatch.setattr(CommandClassifier, "classify_segments", lambda self, x, rate, top_k=3: stretches)
    scores, verdict, _ = commands.recognise(path)
    assert verdict.startswith("### Not sure: perhaps **up**") and scores == stretches[1]["scores"]
    stretches[1]["scores"] = {"up": SURE + 0.05, "off": 0.2}
    assert commands.recognise(path)[1].startswith("### Heard: **up**")


def test_commands_tab_any_format_and_rate(tmp_path):
    import subprocess

    from espeak import speak, write_wav

    from dlhub import audio
    from dlhub.space import commands

    x, rate = speak("left", "en-us")
    stereo_48k = np.round(np.stack([audio.resample(x / 32768, rate, 48000)] * 2, 1) * 20000).astype(np.int16)
    wav = write_wav(tmp_path / "left.wav", stereo_48k, 48000)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", wav, "-ar", "8000", str(tmp_path / "left.ogg")], check=True)
    for path in (wav, tmp_path / "left.ogg"):
        scores, verdict, _ = commands.recognise(str(path))
        assert next(iter(scores)) == "left", (path, scores)


def test_commands_tab_silence_short_and_broken_files(tmp_path):
    from espeak import write_wav

    from dlhub.space import commands

    silent = np.random.default_rng(0).normal(0, 2, 32000).astype(np.int16)  # -84 dBFS: nothing to listen to
    scores, verdict, figure = commands.recognise(write_wav(tmp_path / "silent.wav", silent, 16000))
    assert scores is None and "No command heard" in verdict
    assert len(figure.axes) == 1  # the waveform alone: no blank spectrogram panel
    quiet = np.random.default_rng(0).normal(0, 20, 32000).astype(np.int16)  # -64 dBFS hiss: no speech found, the
    scores, verdict, figure = commands.recognise(write_wav(tmp_path / "quiet.wav", quiet, 16000))  # model listens
    assert next(iter(scores)) == "silence" and "No command heard" in verdict
    with pytest.raises(gr.Error, match="0.01 s long"):
        commands.recognise(write_wav(tmp_path / "short.wav", quiet[:160], 16000))
    (tmp_path / "fake.wav").write_bytes(b"RIFF not really a wave file" * 20)
    with pytest.raises(gr.Error, match="not audio that can be read"):
        commands.recognise(str(tmp_path / "fake.wav"))
    with pytest.raises(gr.Error, match="No audio"):
        commands.recognise(None)


def test_commands_tab_continuous_mode_lists_words_as_they_end():
    from espeak import speak

    from dlhub.space import commands

    words = ["up", "stop", "go"]
    parts = [speak(w, "en", silence_s=0.5) for w in words]
    stream = np.concatenate([p for p, _ in parts])
    rate, state, shown = parts[0][1], None, ""
    for i in range(0, len(stream), rate // 2):  # half-second chunks, as the browser streams them
        shown, state = commands.listen((rate, stream[i:i + rate // 2]), state)
    shown, state = commands.listen((rate, np.zeros(rate, np.int16)), state)  # a pause ends the last word
    # "?" marks a word heard with p < 0.5; how sure the model is of a synthetic voice is not what this test checks
    assert [w.rstrip("?") for _, w in state["heard"]] == words, shown
    assert all(f"**{w}" in shown for w in words)


def test_commands_tab_continuous_mode_lists_only_commands():
    from espeak import speak

    from dlhub.space import commands

    parts = [speak(w, voice, silence_s=0.5) for w, voice in [("left", "en-us"), ("hello", "en"), ("yes", "en-us")]]
    stream = np.concatenate([p for p, _ in parts] + [np.zeros(parts[0][1], np.int16)])
    rate, state = parts[0][1], None
    for i in range(0, len(stream), rate // 2):
        shown, state = commands.listen((rate, stream[i:i + rate // 2]), state)
    assert [w for _, w in state["heard"]] == ["left", "yes"], shown


def test_landmarks_tab_draws_the_astronaut_and_lists_68_points():
    from dlhub.space import landmarks

    (example,) = landmarks.examples()
    drawn, rows, table, faces, summary = landmarks.run(example, True, True, True)
    assert "1 face" in summary and len(rows) == 68 and rows[0][:2] == [1, 1]
    assert Image.open(drawn).size == (512, 512)
    (zoomed, caption), = faces
    assert Image.open(zoomed).size == (landmarks.ZOOM_SIDE, landmarks.ZOOM_SIDE) and caption == "face 1"
    with open(table) as f:
        assert f.readline().strip() == "face,point,x,y" and len(f.readlines()) == 68
    plain, *_ = landmarks.run(example, False, False, False)
    assert np.asarray(Image.open(plain)).tolist() != np.asarray(Image.open(drawn)).tolist()  # the toggles count


def test_landmarks_tab_no_face_and_bad_files(tmp_path):
    from PIL import Image

    from dlhub.space import landmarks

    sky = tmp_path / "sky.png"
    Image.new("RGB", (400, 300), (120, 170, 230)).save(sky)
    drawn, rows, table, faces, summary = landmarks.run(str(sky), True, True, False)
    assert rows == [] and table is None and faces is None and "No face found" in summary
    (tmp_path / "fake.jpg").write_bytes(b"not an image")
    with pytest.raises(gr.Error, match="not an image"):
        landmarks.run(str(tmp_path / "fake.jpg"), True, True, False)
    with pytest.raises(gr.Error, match="No image"):
        landmarks.run(None, True, True, False)


def test_an_unexpected_error_is_logged_and_shown_as_one_sentence(caplog):
    from dlhub.space.common import SERVER_ERROR, handler

    def broken(x):
        raise ZeroDivisionError("a bug")

    def bad_input(x):
        raise gr.Error("Upload an image.")

    with pytest.raises(gr.Error) as shown:
        handler(broken)(1)
    assert shown.value.message == SERVER_ERROR == "Something went wrong on the server; it was logged."
    assert "ZeroDivisionError: a bug" in caplog.text  # the traceback is in the server's log
    with pytest.raises(gr.Error, match="Upload an image."):  # a message for the user passes through as it is
        handler(bad_input)(1)


def test_an_npz_that_would_unpack_to_too_much_is_refused_before_it_is_read(tmp_path):
    """A zip of zeros (400 MB in 2 MB) and a header claiming 10¹¹ values it does not hold: one message each, from the
    zip's directory and the arrays' headers, before NumPy allocates anything."""
    import resource

    from test_security import npz_bomb, npz_claiming

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    bomb = npz_bomb(tmp_path / "Task1_1.npz", 400 * 2**20)
    assert bomb.stat().st_size < 4 * 2**20
    with pytest.raises(gr.Error) as refused:
        regression.load_regression_file(str(bomb))
    assert refused.value.message == ("Task1_1.npz unpacks to 400 MB, more than the 50 MB this accepts: the course's "
                                     "files take a few kB.")
    (tmp_path / "claims").mkdir()
    with pytest.raises(gr.Error) as refused:
        regression.load_classification_file(str(npz_claiming(tmp_path / "claims" / "Task1_2.npz", 10**11)))
    assert refused.value.message == "Task1_2.npz: X_trn declares more data than it holds."
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 100_000  # kB


def test_a_recording_without_a_duration_is_decoded_only_to_the_cap(tmp_path):
    """A browser's WebM has no duration in its header: only the first MAX_UPLOAD_S are decoded, and the answer says
    the rest was not analysed."""
    from test_security import headerless_recording

    from dlhub import audio
    from dlhub.space import commands

    recording = headerless_recording(tmp_path / "ten-minutes.webm")
    x, rate, duration = audio.load_audio_file(recording, 60)
    assert duration == float("inf") and len(x) == 60 * rate
    x, rate, duration = audio.load_audio_file(recording, None)  # no cap asked: all of it
    assert duration == pytest.approx(600, abs=0.1) and len(x) == pytest.approx(600 * rate, abs=rate)
    _, verdict, _ = commands.recognise(str(recording))
    assert "The recording is longer than 60 s: only its first 60 s were analysed." in verdict


@pytest.mark.parametrize("task, module, answer_id, label_id", [
    ("commands", "commands", "commands-verdict", "commands-label"), ("signs", "signs", "signs-note", "signs-label")])
def test_a_not_sure_answer_hides_the_labels_top_class_heading(task, module, answer_id, label_id):
    """gr.Label shows its top class in bold above the bars: while the tab says it is not sure, that would read as the
    answer, so it is hidden; every change of the answer sets it."""
    import importlib

    from dlhub.space import build_demo

    tab = importlib.import_module(f"dlhub.space.{module}")
    assert tab.label_heading(f"{tab.NOT_SURE} **up**\n\nAnswered by …").show_heading is False
    assert tab.label_heading("### Heard: **up**").show_heading is True
    assert tab.label_heading(None).show_heading is True  # an emptied answer
    demo = build_demo([task])
    ids = lambda blocks: [getattr(b, "elem_id", None) for b in blocks]  # noqa: E731
    wired = [fn for fn in demo.fns.values() if ids(fn.inputs) == [answer_id]]
    assert [ids(fn.outputs) for fn in wired] == [[label_id]] and wired[0].fn is tab.label_heading


def test_the_signs_tab_says_not_sure_with_the_prefix_that_hides_the_heading(tmp_path):
    from PIL import Image

    from dlhub.space import signs

    Image.new("RGB", (64, 64), (128, 128, 128)).save(tmp_path / "grey.png")  # no sign at all
    *_, note = signs.classify(str(tmp_path / "grey.png"))
    assert note.startswith(signs.NOT_SURE) and signs.label_heading(note).show_heading is False


@pytest.mark.parametrize("value", [-5.0, 301, float("nan"), float("inf"), "12", None, True])
def test_a_slider_refuses_anything_but_a_number_in_its_range_as_the_visitors_error(value):
    from dlhub.space.common import CheckedSlider

    slider = CheckedSlider(0.1, 300, label="σ (refits as you move it)")
    with pytest.raises(gr.Error) as refused:
        slider.preprocess(value)
    assert refused.value.message == f"σ must be a number from 0.1 to 300; got {value!r}."
    assert not refused.value.print_exception  # a message in the page, no traceback in the log
    assert slider.preprocess(12) == 12 and slider.preprocess(0.1) == 0.1
