"""Every headline says how sure it is: the 95% intervals (dlhub.metrics.intervals), the fields the evaluation helpers
and `python -m dlhub.evaluate --write-intervals` record, the cards' model-index `args` and "What to expect" line, the
README table, the Space's headers, and `scripts/render_cards.py --check` failing on a headline without its interval or
on a screenshot taken with other models."""

import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from huggingface_hub import ModelCard

from conftest import load_script
from dlhub.errors import DataError
from dlhub.metrics.intervals import (BOOTSTRAP, WILSON, bootstrap_interval, command_estimates, estimate,
                                     interval_fields, wilson_interval)

ROOT = Path(__file__).resolve().parent.parent


# -- the intervals ---------------------------------------------------------------------------------------------------
def test_wilson_interval_matches_the_formula_and_stays_in_0_1():
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(0.2366, abs=1e-4) and high == pytest.approx(0.7634, abs=1e-4)
    assert wilson_interval(0, 10) == (0.0, pytest.approx(0.2775, abs=1e-4))  # not the Wald interval's (0, 0)
    assert wilson_interval(10, 10) == (pytest.approx(0.7225, abs=1e-4), 1.0)
    narrow, wide = wilson_interval(1297, 1325), wilson_interval(97, 100)
    assert narrow[1] - narrow[0] < wide[1] - wide[0]
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def test_bootstrap_interval_is_reproducible_and_paired():
    rng = np.random.default_rng(3)
    noisy, gain = rng.normal(15, 1, 80), rng.normal(10, 0.5, 80)
    denoised = noisy + gain
    first, again = bootstrap_interval(denoised), bootstrap_interval(denoised)
    assert first == again and first[0] < denoised.mean() < first[1]
    assert bootstrap_interval(denoised, seed=1) != first
    # a statistic without an axis argument works too, and the median's interval holds the median
    low, high = bootstrap_interval(denoised, statistic=lambda v: float(np.median(v)), resamples=200)
    assert low <= np.median(denoised) <= high
    # the same seed and n draw the same items: the difference of the means is the mean of the per-item differences
    d_low, _ = bootstrap_interval(denoised)
    n_low, _ = bootstrap_interval(noisy)
    g_low, _ = bootstrap_interval(gain)
    assert g_low != pytest.approx(d_low - n_low)  # percentiles do not subtract, which is why the gain is bootstrapped
    with pytest.raises(ValueError):
        bootstrap_interval([])


def test_estimate_reads_recorded_intervals_else_counts():
    recorded = {"test_nme": 0.045, **interval_fields("test_nme", (0.0436, 0.0467), 330)}
    found = estimate(recorded, "test_nme", mean=True)
    assert (found.low, found.high, found.n, found.method) == (0.0436, 0.0467, 330, BOOTSTRAP)
    assert found.text() == "0.0450 (95% CI 0.0436–0.0467, n = 330)"
    signs = {"test_accuracy": 12576 / 12630, "test_images": 12630}
    found = estimate(signs, "test_accuracy", "test_images")
    assert found.method == WILSON and found.text() == "0.9957 (95% CI 0.9944–0.9967, n = 12,630)"
    assert estimate({"test_nme": 0.045}, "test_nme", mean=True) is None  # a mean needs its per-item values
    assert estimate({"test_mse": 11.7, "test_faces": 330}, "test_mse", "test_faces", mean=True) is None
    assert estimate({"acc": 0.5, "n": 3}, "acc", "n") is None  # 1.5 of 3 items: not a count


def test_commands_headline_is_the_cross_validation_when_recorded():
    metrics = {"test_command_accuracy": 278 / 280, "test_command_clips": 280, "test_speakers": 16,
               "test_unknown_rejected": 1.0, "test_unknown_clips": 23}
    expected, where = command_estimates(metrics)
    assert where == "on 16 speakers it never heard" and expected["command_accuracy"].n == 280
    assert expected["unknown_rejected"].text(3) == "1.000 (95% CI 0.857–1.000, n = 23)"
    metrics["cross_validation"] = {"folds": 5, "speakers": 120, "command_accuracy": 0.98, "command_correct": 1960,
                                   "command_clips": 2000, "unknown_rejected": 0.95,
                                   "unknown_clips": 200, "silence_rejected": 1.0, "silence_clips": 270}
    expected, where = command_estimates(metrics)
    assert where == "in speaker-grouped 5-fold cross-validation over 120 speakers"
    assert expected["command_accuracy"].text(3) == "0.980 (95% CI 0.973–0.985, n = 2,000)"
    assert expected["unknown_rejected"].value == pytest.approx(0.95) and expected["silence_rejected"].value == 1.0
    assert "recording_command_accuracy" not in expected
    metrics["cross_validation"].update(recording_command_accuracy=0.96, recording_command_clips=2000)
    assert command_estimates(metrics)[0]["recording_command_accuracy"].n == 2000
    metrics["test_recording_command_accuracy"] = 0.5  # the test split has no recordings: never read from there
    del metrics["cross_validation"]
    assert "recording_command_accuracy" not in command_estimates(metrics)[0]


# -- what the evaluation writes --------------------------------------------------------------------------------------
def test_regression_test_records_intervals_beside_each_figure(task1_dir):
    from dlhub.data.task1 import load_task1
    from dlhub.evaluation import regression_test
    from dlhub.regression import RegressionModel

    regression, classification = load_task1(task1_dir)
    model = load_script("train", "regression")
    out = task1_dir / "out"
    metrics = model.main(model.parse_args(["--dataset", str(task1_dir), "--output_dir", str(out), "--epochs", "50"]))
    again = regression_test(RegressionModel.from_pretrained(out), regression, classification)
    for name in ("ols_val_mse", "irls_val_mse", "logistic_test_accuracy", "logistic_decay_test_accuracy"):
        low, high = metrics[f"{name}_ci95"]
        assert low <= metrics[name] <= high and again[f"{name}_ci95"] == [low, high]
    assert metrics["irls_val_mse_n"] == regression["validation"].num_rows
    assert metrics["logistic_test_accuracy_n"] == classification["test"].num_rows
    card = ModelCard((out / "README.md").read_text())
    args = {r.metric_name: r.metric_args for r in card.data.eval_results}
    assert args["validation MSE, reweighted"]["n"] == regression["validation"].num_rows
    assert "**What to expect:** validation MSE, reweighted " in card.text


def test_write_intervals_adds_fields_and_refuses_another_run():
    from dlhub.evaluate import with_intervals

    recorded = {"best_epoch": 3, "test_psnr_denoised_0.2": 25.0,
                "sources": {"helen": {"psnr_denoised_0.2": 23.0, "role": "training"},
                            "faces.npy": {"psnr_denoised_0.2": 25.0, "role": "training"}}}
    measured = {"test_psnr_denoised_0.2": 25.0000001, **interval_fields("test_psnr_denoised_0.2", (24.8, 25.2), 80)}
    out, written = with_intervals(recorded, measured, "test", "faces.npy")
    assert out["test_psnr_denoised_0.2_ci95"] == [24.8, 25.2] and out["test_psnr_denoised_0.2_n"] == 80
    assert out["sources"]["faces.npy"]["psnr_denoised_0.2_n"] == 80 and "psnr_denoised_0.2_n" not in \
        out["sources"]["helen"]
    assert {k: v for k, v in out.items() if not k.endswith(("_ci95", "_n")) and k != "sources"} == \
        {k: v for k, v in recorded.items() if k != "sources"}  # nothing else changed
    assert written == ["test_psnr_denoised_0.2", "sources.faces.npy.psnr_denoised_0.2"]
    # another source's figures: only its entry is written (the top level holds the run's own test split)
    helen = {"test_psnr_denoised_0.2": 23.0, **interval_fields("test_psnr_denoised_0.2", (22.9, 23.1), 330)}
    out, written = with_intervals(recorded, helen, "test", "helen")
    assert written == ["sources.helen.psnr_denoised_0.2"] and "test_psnr_denoised_0.2_n" not in out
    with pytest.raises(DataError, match="not the run that metrics.json records"):
        with_intervals(recorded, {**measured, "test_psnr_denoised_0.2": 24.0}, "test", "faces.npy")


# -- cards, README, headers ------------------------------------------------------------------------------------------
def commands_metrics(**extra) -> dict:
    return {"test_accuracy": 0.875, "val_accuracy": 0.8125, "test_clips": 40, "val_clips": 32, "train_clips": 200,
            "test_speakers": 4, "test_errors": 5, "best_epoch": 7, "epochs": 8, "parameters": 9876,
            "test_command_accuracy": 0.9, "test_command_clips": 30, "test_unknown_rejected": 0.8,
            "test_unknown_clips": 5, "test_silence_rejected": 1.0, "test_silence_clips": 5, "val_errors": 6,
            "wall_time_s": 90.0, "per_word_accuracy": {"yes": 0.9, "no": 0.85, "unknown": 0.8, "silence": 1.0},
            **extra}


CROSS_VALIDATION = {"folds": 5, "speakers": 40, "command_accuracy": 0.97, "command_correct": 970,
                    "command_clips": 1000, "unknown_rejected": 0.95, "unknown_clips": 100, "silence_rejected": 0.99,
                    "silence_clips": 100}
WITH_RECORDINGS = {**CROSS_VALIDATION, "recording_command_accuracy": 0.95, "recording_command_clips": 1000,
                   "recording_unknown_right": 0.9, "recording_unknown_clips": 100, "recording_silence_right": 0.98,
                   "recording_silence_clips": 100}


@pytest.mark.parametrize("cross_validation", [None, CROSS_VALIDATION, WITH_RECORDINGS])
def test_commands_card_headline_and_model_index_carry_the_interval(cross_validation):
    commands = load_script("train", "commands")
    args = commands.parse_args(["--dataset", "course-org/speech-commands-clips"])
    extra = {"cross_validation": cross_validation} if cross_validation else {}
    card = commands.model_card(args, commands_metrics(**extra), training_command="python train/commands.py")
    assert card.headline_gaps == []
    results = ModelCard(str(card)).data.eval_results  # parses as the Hub parses it
    first = results[0]
    if cross_validation:
        assert first.metric_name == "ten-word accuracy (speaker-grouped 5-fold cross-validation)"
        assert first.dataset_split == "train+validation" and first.metric_value == 0.97
        low, high = wilson_interval(970, 1000)
        assert first.metric_args == {"ci95": [round(low, 6), round(high, 6)], "n": 1000, "interval": WILSON}
        assert "**What to expect:** ten-word accuracy (speaker-grouped 5-fold cross-validation) 0.9700 (95% CI " \
               f"{low:.4f}–{high:.4f}, n = 1,000); other words rejected" in str(card)
        recorded = [r for r in results if r.metric_name.startswith("commands in recordings")]
        assert len(recorded) == (cross_validation is WITH_RECORDINGS)
        if recorded:
            low, high = wilson_interval(950, 1000)
            assert recorded[0].metric_value == 0.95
            assert recorded[0].metric_args["ci95"] == [round(low, 6), round(high, 6)]
            assert "noise recordings answered \"No command heard\" (speaker-grouped 5-fold cross-validation) 0.9800 " \
                   "(95% CI" in str(card) and "answered it as the voice tab does" in str(card)
    else:
        assert first.metric_name == "ten-word accuracy (unseen speakers)" and first.metric_args["n"] == 30
        assert "**What to expect:** ten-word accuracy (unseen speakers) 0.9000 (95% CI" in str(card)


def test_a_headline_without_its_interval_is_a_gap():
    landmarks = load_script("train", "landmarks")
    args = landmarks.parse_args(["--dataset", "course-org/faces68"])
    metrics = {"test_mse_px2": 41.5, "test_nme": 0.061, "test_failure_rate_nme_0.10": 0.02, "test_faces": 33,
               "train_faces": 77, "val_mse_px2": 45.25, "best_epoch": 2, "first_epoch_val_mse_below_650": 1,
               "epochs": 2, "backbone": "resnet50", "input_size": 64, "parameters": 4321, "wall_time_s": 30.0}
    card = landmarks.model_card(args, metrics, training_command="python train/landmarks.py")
    assert card.headline_gaps == ["test MSE (px² at 224×224)", "test NME (outer eye corners)"]
    metrics.update(interval_fields("test_nme", (0.05, 0.07), 33))
    card = landmarks.model_card(args, metrics, training_command="python train/landmarks.py")
    assert card.headline_gaps == ["test MSE (px² at 224×224)"]
    assert "| test NME (outer eye corners) | test | 0.0610 (95% CI 0.0500–0.0700, n = 33) |" in str(card)


def test_readme_table_leads_with_the_cross_validation(tmp_path):
    fill_readme = load_script("scripts", "fill_readme")
    folder = tmp_path / "checkpoints" / "commands"
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps(commands_metrics()))
    rows = [r for r in fill_readme.models_table(tmp_path).splitlines() if r.startswith("| commands")]
    assert "| ten-word accuracy | **0.900** | 0.744–0.965 (n = 30) |" in rows[0]
    (folder / "metrics.json").write_text(json.dumps(commands_metrics(cross_validation=CROSS_VALIDATION)))
    rows = [r for r in fill_readme.models_table(tmp_path).splitlines() if r.startswith("| commands")]
    assert "speaker-grouped 5-fold cross-validation | ten-word accuracy | **0.970** | 0.957–0.979 (n = 1,000 clips) |" \
        in rows[0]
    assert "| ten-word accuracy | 0.900 | 0.744–0.965 (n = 30) |" in rows[3]  # the test split, no longer bold


def test_readme_table_compares_each_never_seen_face_source_with_bm3d(tmp_path):
    fill_readme = load_script("scripts", "fill_readme")
    folder = tmp_path / "checkpoints" / "denoiser"
    folder.mkdir(parents=True)
    shutil.copy(ROOT / "checkpoints" / "denoiser" / "metrics.json", folder / "metrics.json")
    bench = {"sigma": 0.2, "sources": {"helen": {"images": 330}}, "held_out_runs": {
        "denoiser-no-helen": {"trained_on": ["olivetti_faces.npy"], "helen": 8.5, "olivetti_faces.npy": 11.0}},
        "unseen_vs_bm3d": {"helen": {"model": "denoiser-no-helen", "images": 330, "gain": 8.5, "bm3d_gain": 8.0,
                                     "margin": 0.5, "margin_ci95": [0.42, 0.58]}}}
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "benchmarks" / "results" / "denoiser.json").write_text(json.dumps(bench))
    rows = [r for r in fill_readme.models_table(tmp_path).splitlines() if "against BM3D" in r]
    assert rows == ["| denoiser (`outputs/denoiser-no-helen`) against BM3D | not bundled | 330 faces of `helen` (never "
                    "trained on), σ = 0.2 | PSNR margin over BM3D (true σ given); gains: model +8.50, BM3D +8.00 dB | "
                    "**+0.50 dB** | +0.42 to +0.58 (n = 330 faces) |"]


def test_space_headers_state_the_interval_of_the_loaded_model():
    from dlhub.space import commands, landmarks, regression, signs

    signs_metrics = json.loads((ROOT / "checkpoints" / "signs" / "metrics.json").read_text())
    assert "test accuracy 0.9957 (95% CI 0.9944–0.9967, n = 12,630)" in signs.describe(
        SimpleNamespace(labels=list(range(43))), signs_metrics)
    lm = {"test_nme": 0.045, "test_mse_px2": 11.66, "test_faces": 330,
          **interval_fields("test_nme", (0.0436, 0.0467), 330), **interval_fields("test_mse_px2", (10.8, 12.6), 330)}
    assert "NME 0.045 (95% CI 0.044–0.047, n = 330), MSE 11.7 px² (95% CI 10.8–12.6, n = 330)" in \
        landmarks.describe(SimpleNamespace(backbone="resnet50"), lm)
    model = SimpleNamespace(labels=["yes", "no", "unknown", "silence"], encoder_name="openai/whisper-base")
    text = commands.describe(model, commands_metrics(cross_validation=CROSS_VALIDATION))
    assert "in speaker-grouped 5-fold cross-validation over 40 speakers: ten words 0.970 (95% CI 0.957–0.979, " \
           "n = 1,000)" in text
    assert "on 4 speakers it never heard: ten words 0.900 (95% CI 0.744–0.965, n = 30)" in \
        commands.describe(model, commands_metrics())
    assert "recordings as users make them" not in text
    assert "; recordings as users make them, answered right: commands 0.950 (95% CI 0.935–0.962, n = 1,000), other " \
           "words 0.900" in commands.describe(model, commands_metrics(cross_validation=WITH_RECORDINGS))
    reg = json.loads((ROOT / "checkpoints" / "regression" / "metrics.json").read_text())
    table = regression.describe(SimpleNamespace(sigma=44.56, irls_iteration=4), reg)
    assert "| metric | value | 95% CI | n |" in table and "| reweighted validation MSE | 0.00249 |" in table


# -- render_cards.py --check -----------------------------------------------------------------------------------------
def check(checkpoints: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "render_cards.py"), "--check", "--checkpoints",
                           str(checkpoints)], capture_output=True, text=True, timeout=300)


def test_render_cards_check_fails_on_a_headline_without_its_interval(task1_dir, tmp_path):
    """A tiny regression checkpoint whose metrics.json lacks the intervals: --check exits 1 with one line naming
    the card and the figure; with them recorded (as --write-intervals records them) it passes."""
    regression = load_script("train", "regression")
    command = f"accelerate launch train/regression.py --dataset {task1_dir} --epochs 50"
    folder = tmp_path / "checkpoints" / "regression"
    regression.main(regression.parse_args(command.split()[3:] + ["--output_dir", str(folder)]))
    metrics = json.loads((folder / "metrics.json").read_text())
    bare = {k: v for k, v in metrics.items() if not k.endswith(("_ci95", "_n"))}
    (folder / "metrics.json").write_text(json.dumps(bare))
    from dlhub.data.task1 import load_task1

    card = regression.model_card(regression.parse_args(command.split()[3:]), bare, *load_task1(task1_dir),
                                 training_command=command)
    (folder / "README.md").write_text(str(card))
    done = check(folder.parent)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if "headline figure" in line]
    assert len(lines) == 2 and "checkpoints/regression/README.md" in lines[0]
    assert "'validation MSE, reweighted'" in lines[0] and "'test accuracy, lr decay'" in lines[1]

    (folder / "metrics.json").write_text(json.dumps(metrics))  # the intervals, as the run recorded them
    subprocess.run([sys.executable, str(ROOT / "scripts" / "render_cards.py"), "--checkpoints", str(folder.parent)],
                   check=True, capture_output=True, timeout=300)
    done = check(folder.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    text = (folder / "README.md").read_text()
    data = ModelCard(text).data
    assert all(r.metric_args and set(r.metric_args) == {"ci95", "n", "interval"} for r in data.eval_results)


def test_stale_screenshots_name_the_script_to_run(tmp_path):
    from dlhub.cards import model_digests, stale_screenshots

    model = tmp_path / "checkpoints" / "signs"
    model.mkdir(parents=True)
    (model / "model.safetensors").write_bytes(b"weights")
    (model / "metrics.json").write_text("{}")
    shots = tmp_path / "docs" / "screenshots"
    shots.mkdir(parents=True)
    (shots / "signs.jpg").write_bytes(b"jpg")
    (shots / "exercises.jpg").write_bytes(b"jpg")
    manifest = {"tabs": {"signs": {"file": "signs.jpg", "models": {"signs": model_digests(model)}},
                         "exercises": {"file": "exercises.jpg", "models": {}}}}
    (shots / "manifest.json").write_text(json.dumps(manifest))
    assert stale_screenshots(tmp_path) == []
    (model / "metrics.json").write_text('{"test_accuracy": 0.99}')
    assert stale_screenshots(tmp_path) == [
        "docs/screenshots/signs.jpg: taken with another checkpoints/signs (model.safetensors or metrics.json changed "
        "since): run python scripts/screenshots.py signs"]
    shutil.copy(shots / "signs.jpg", shots / "landmarks.jpg")
    assert "docs/screenshots/landmarks.jpg: not recorded in docs/screenshots/manifest.json: run python " \
           "scripts/screenshots.py landmarks" in stale_screenshots(tmp_path)
