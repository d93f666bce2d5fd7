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
