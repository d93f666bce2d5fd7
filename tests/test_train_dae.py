"""train/dae.py end to end on generated faces: outputs, both architectures (the course's Table 3 MLP exactly), the
split by person ids, the card naming the data it was given, resume = uninterrupted, bad input."""

import json
import sys

import numpy as np
import pytest
from conftest import ACCELERATE_CPU, run_script, synthetic_faces
from PIL import Image
from torch import nn

import dlhub

pytestmark = pytest.mark.slow
FAST = ["--widths", "8", "16", "--batch_size", "8"]


def train(data, out, *extra):
    result = run_script(*ACCELERATE_CPU, "train/dae.py", "--data", str(data), "--output-dir", str(out), *extra)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((out / "metrics.json").read_text())


def test_conv_run_writes_model_metrics_and_figures(faces_npy, tmp_path):
    extra = tmp_path / "other_faces"
    extra.mkdir()
    for i, face in enumerate(synthetic_faces(5, size=90, seed=3)):
        Image.fromarray(face).save(extra / f"{i}.png")
    metrics = train(faces_npy, tmp_path / "model", "--epochs", "2", "--noise_std_max", "0.4", "--noise_focus", "0.5",
                    "--extra_test_dir", str(extra), *FAST)
    for sigma in (0.1, 0.2, 0.3):
        assert metrics[f"test_psnr_gain_{sigma}"] == pytest.approx(
            metrics[f"test_psnr_denoised_{sigma}"] - metrics[f"test_psnr_noisy_{sigma}"])
    assert metrics["extra_test_images"] == 5 and np.isfinite(metrics["extra_test_psnr_denoised"])
    model = dlhub.load("denoiser", tmp_path / "model")
    assert model.arch == "conv" and model.noise_std == (0.02, 0.4)
    assert (tmp_path / "model" / "denoising_grid.png").is_file()
    assert sorted(p.name for p in (tmp_path / "model-checkpoints").iterdir()) == ["epoch_0001", "epoch_0002"]
    card = (tmp_path / "model" / "README.md").read_text()  # the card names the data it was given, not Olivetti
    assert "`face_data.npy`: 40 grayscale faces, split 60/20/20 by image with a fixed seed: no person labels" in card
    assert "except for 50% of the images, whose σ is within ± 0.05 of 0.2, the σ its test results" in card
    assert "Trained on 24 photos, grayscale" in card and "type: face-data" in card and "Olivetti" not in card


def test_course_mlp_is_table_3_at_64_pixels_split_by_person_ids(faces_npy, tmp_path):
    people = tmp_path / "people.npy"
    np.save(people, np.repeat(np.arange(8), 5))
    train(faces_npy, tmp_path / "mlp", "--arch", "mlp", "--epochs", "2", "--people", str(people))
    model = dlhub.load("denoiser", tmp_path / "mlp")
    assert model.arch == "mlp" and model.image_size == 64
    layers = [m for m in model.net.modules() if not list(m.children())]
    assert [type(m) for m in layers] == [nn.Flatten, nn.Linear, nn.LeakyReLU, nn.Linear]
    assert [(m.in_features, m.out_features) for m in layers if isinstance(m, nn.Linear)] == [(4096, 128), (128, 4096)]
    card = (tmp_path / "mlp" / "README.md").read_text()
    assert "encoder Linear(4096 → 128) → LeakyReLU (slope 0.01) → decoder Linear(128 → 4096), linear" in card
    assert "MSE loss, Adam, lr 0.001, weight decay 1e-05" in card and "BatchNorm1d" not in card
    assert ("`face_data.npy`: 40 grayscale faces of 8 people, split 60/20/20 by person with a fixed seed (person ids "
            "from `people.npy`)") in card
    assert "Trained on 25 photos of 5 people" in card  # 8 people: 5 / 1 / 2


def test_resumed_run_ends_like_an_uninterrupted_one(faces_npy, tmp_path):
    straight = train(faces_npy, tmp_path / "a", "--epochs", "3", *FAST)
    train(faces_npy, tmp_path / "b", "--epochs", "2", *FAST)
    resumed = train(faces_npy, tmp_path / "b", "--epochs", "3", "--resume_from_checkpoint", "latest", *FAST)
    for key in ("val_psnr_denoised", "test_psnr_denoised_0.2", "best_epoch"):
        assert resumed[key] == pytest.approx(straight[key], abs=1e-6), key


def test_several_sources_each_tested_on_its_own_and_a_cosine_run_resumes(faces_npy, tmp_path):
    """--add_faces joins a landmark-annotated source (cropped by the landmark rule, split by photo) to the training
    and validation faces; --extra_test_dir holds a source out (all its faces, as it has no test split); every source
    is reported on its own. Random crops and the cosine learning rate resume exactly."""
    from conftest import landmark_faces

    helen = landmark_faces(tmp_path / "helen", "pts", n=20)
    tutorial = landmark_faces(tmp_path / "tutorial", "csv", n=10, seed=1)
    extra = ["--add_faces", str(helen), "--extra_test_dir", str(tutorial), "--crop_size", "32", "--lr_schedule",
             "cosine", *FAST]
    straight = train(faces_npy, tmp_path / "a", "--epochs", "3", *extra)
    sources = straight["sources"]
    assert list(sources) == ["face_data.npy", "helen", "tutorial"]
    assert [s["role"] for s in sources.values()] == ["training", "training", "held out"]
    assert sources["helen"]["images"] == {"train": 18, "validation": 2, "test": 6}
    assert sources["tutorial"]["images"] == {"test": 10} and straight["extra_test_images"] == 10
    assert sources["tutorial"]["psnr_denoised_0.2"] == pytest.approx(straight["extra_test_psnr_denoised"], abs=1e-6)
    assert sources["face_data.npy"]["psnr_denoised_0.2"] == pytest.approx(straight["test_psnr_denoised_0.2"])
    for entry in sources.values():
        assert entry["psnr_gain_0.1"] == pytest.approx(entry["psnr_denoised_0.1"] - entry["psnr_noisy_0.1"])
    train(faces_npy, tmp_path / "b", "--epochs", "2", *extra)
    resumed = train(faces_npy, tmp_path / "b", "--epochs", "3", "--resume_from_checkpoint", "latest", *extra)
    for key in ("val_psnr_denoised", "test_psnr_denoised_0.2", "extra_test_psnr_denoised", "best_epoch"):
        assert resumed[key] == pytest.approx(straight[key], abs=1e-6), key


@pytest.mark.parametrize("args, message", [
    (["--data", "absent.npy"], "absent.npy not found"),
    (["--data", "{faces}", "--noise_std", "0.3", "--noise_std_max", "0.2"], "noise levels must satisfy"),
    (["--data", "{faces}", "--noise_focus", "0.5"], "--noise_focus takes a fraction from 0 to 1, with a σ range"),
    (["--data", "{faces}", "--noise_focus_width", "0"], "--noise_focus_width takes a half-width of σ from 0 to 0.5"),
    (["--data", "{faces}", "--resume_from_checkpoint", "latest"], "no checkpoint to resume from"),
    (["--data", "{faces}", "--people", "{people}"], "people.npy has shape (7,) for 40 faces: give one person id"),
    (["--data", "{faces}", "--arch", "mlp", "--crop_size", "32"], "--crop_size takes a side from 16 to 64"),
    (["--data", "{faces}", "--add_faces", "{faces}"], "name the same source twice"),
])
def test_bad_input_is_one_line(faces_npy, tmp_path, args, message):
    np.save(tmp_path / "people.npy", np.arange(7))
    args = [a.replace("{faces}", str(faces_npy)).replace("{people}", str(tmp_path / "people.npy")) for a in args]
    result = run_script(sys.executable, "train/dae.py", *args, "--output-dir", str(tmp_path / "out"))
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith("dae.py: error: ") and message in lines[0]


def test_a_run_killed_mid_training_resumes_to_the_same_result(faces_npy, tmp_path):
    """SIGKILL to the whole `accelerate launch` process group once the first epoch is checkpointed (the second is
    under way), then --resume_from_checkpoint latest: the metrics equal those of an uninterrupted run."""
    import os
    import signal
    import subprocess
    import time

    from conftest import ROOT

    straight = train(faces_npy, tmp_path / "a", "--epochs", "4", *FAST)
    out = tmp_path / "b"
    proc = subprocess.Popen([*ACCELERATE_CPU, "train/dae.py", "--data", str(faces_npy), "--output-dir", str(out),
                             "--epochs", "4", *FAST], cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints = tmp_path / "b-checkpoints"
    deadline = time.time() + 300
    while not (checkpoints / "epoch_0001").is_dir() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "model.safetensors").exists()  # killed before the end: no model folder yet
    resumed = train(faces_npy, out, "--epochs", "4", "--resume_from_checkpoint", "latest", *FAST)
    for key in ("val_psnr_denoised", "test_psnr_denoised_0.2", "best_epoch"):
        assert resumed[key] == pytest.approx(straight[key], abs=1e-6), key
