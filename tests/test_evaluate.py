"""`python -m dlhub.evaluate`: every task on tiny generated data, the same numbers as the train scripts' final test,
--push writing the model card's model-index on the test Hub (a commit for the owner, a pull request otherwise), and
bad input as one line."""

import importlib.util
import json
import sys

import numpy as np
import pytest
import torch
from conftest import ROOT, run_script, synthetic_faces
from espeak import VOICES, speak, write_wav
from huggingface_hub import HfApi, ModelCard, hf_hub_download
from make_gtsrb import make_kaggle
from PIL import Image
from test_landmarks import face, template, write_pts

import dlhub
from dlhub import audio
from dlhub.cli import one_line_errors
from dlhub.evaluate import main
from dlhub.hub import push_folder


def train_script(name: str, *args: str) -> dict:
    """Run train/<name>.py in this process (no new interpreter: seconds, not tens of seconds); its metrics.json."""
    spec = importlib.util.spec_from_file_location(f"train_{name}", ROOT / "train" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(module.parse_args(list(args)))


def evaluate(*args: str) -> dict:
    return main([str(a) for a in args])


def one_line_error(capsys, *args: str) -> str:
    """The CLI's answer to bad input: exit status 2 and one line on stderr, which is returned."""
    with pytest.raises(SystemExit) as exit_info:
        with one_line_errors("evaluate.py"):
            main([str(a) for a in args])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert exit_info.value.code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("evaluate.py: error: ")
    return lines[0]


# -- regression: the train script's numbers, and the model-index on the Hub -----------------------------------------
@pytest.fixture(scope="module")
def task1(tmp_path_factory):
    from dlhub.regression import make_task1_example

    folder = tmp_path_factory.mktemp("data") / "task1"
    folder.mkdir()
    regression, classification = make_task1_example(seed=1)
    np.savez(folder / "Task1_1.npz", **regression)
    np.savez(folder / "Task1_2.npz", **classification)
    return folder


@pytest.fixture(scope="module")
def regression_model(task1, tmp_path_factory):
    """(model folder, its metrics.json) written by train/regression.py."""
    out = tmp_path_factory.mktemp("regression") / "model"
    metrics = train_script("regression", "--dataset", str(task1), "--output_dir", str(out), "--sigma", "40",
                           "--epochs", "50")
    return out, metrics


def test_regression_equals_the_train_script(task1, regression_model, tmp_path):
    folder, trained = regression_model
    out = evaluate("regression", folder, "--dataset", task1, "--json", tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["metrics"] == out["metrics"]
    for key in ("ols_val_mse", "irls_val_mse", "logistic_test_accuracy", "logistic_decay_test_accuracy"):
        assert out["metrics"][key] == trained[key], key
    train_split = evaluate("regression", folder, "--dataset", task1, "--split", "train")["metrics"]
    assert train_split["logistic_train_accuracy"] == trained["logistic_train_accuracy"]
    results = {r["name"]: r for r in out["results"]}
    assert results["validation MSE, reweighted"]["split"] == "validation"
    assert results["validation MSE, reweighted"]["dataset_name"] == "task1/Task1_1.npz"
    assert results["test accuracy, lr decay"]["value"] == trained["logistic_decay_test_accuracy"]


def model_index(repo_id: str, revision: str = "main") -> list:
    card = ModelCard.load(hf_hub_download(repo_id, "README.md", revision=revision, force_download=True))
    return card.data.eval_results or []


@pytest.mark.slow
def test_push_as_owner_commits_the_model_index_on_main(task1, regression_model, tmp_path, hub):
    """The command line itself, in a new interpreter: owner (the token's user) → a commit on main; measured values
    exactly; the train script's own results stay; a second push updates instead of adding."""
    folder, _ = regression_model
    repo_id = "test-user/eval-regression"
    push_folder(folder, repo_id)
    before = model_index(repo_id)
    result = run_script(sys.executable, "-m", "dlhub.evaluate", "regression", repo_id, "--dataset", str(task1),
                        "--json", str(tmp_path / "r.json"), "--push")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "committed the results to main" in result.stdout
    out = json.loads((tmp_path / "r.json").read_text())
    evaluated = out["model"]["commit"]
    main_sha = HfApi().model_info(repo_id).sha
    assert main_sha != evaluated and not hub.state.repos[("model", repo_id)].refs  # a new commit, no pull request
    after = model_index(repo_id)
    ours = [r for r in after if r.source_name == out["command"]]
    assert {(r.metric_name, r.metric_value, r.dataset_split) for r in ours} == {
        (r["name"], r["value"], r["split"]) for r in out["results"]}
    assert all(r.dataset_name.startswith("task1/") and r.dataset_revision is None for r in ours)
    assert all(r.source_url.endswith(f"/{repo_id}/tree/{evaluated}") for r in ours)
    assert {(r.metric_name, r.metric_value) for r in before} <= {(r.metric_name, r.metric_value) for r in after}
    assert len(after) == len(before) + 4
    evaluate("regression", repo_id, "--dataset", task1, "--push")  # again: the same four results, updated
    assert len(model_index(repo_id)) == len(after)


def test_push_to_a_repo_of_another_user_opens_a_pull_request(task1, regression_model, hub):
    folder, _ = regression_model
    repo_id = "test-org/eval-regression"
    push_folder(folder, repo_id)
    main_before = HfApi().model_info(repo_id).sha
    out = evaluate("regression", repo_id, "--dataset", task1, "--push")
    assert out["pushed"]["pull_request"] and out["pushed"]["url"].endswith("/discussions/1")
    assert HfApi().model_info(repo_id).sha == main_before  # main unchanged
    assert list(hub.state.repos[("model", repo_id)].refs) == ["refs/pr/1"]
    proposed = [r for r in model_index(repo_id, "refs/pr/1") if r.source_name == out["command"]]
    assert sorted(r.metric_value for r in proposed) == sorted(r["value"] for r in out["results"])
    assert not [r for r in model_index(repo_id) if r.source_name == out["command"]]


# -- signs -----------------------------------------------------------------------------------------------------------
def test_signs_equal_the_train_script(tmp_path):
    kaggle = make_kaggle(tmp_path / "gtsrb", tracks=3, frames=2, test_per_class=2)
    trained = train_script("gtsrb", "--dataset", str(kaggle), "--output_dir", str(tmp_path / "model"), "--epochs",
                           "1", "--blocks", "8", "16", "--input_size", "32", "--batch_size", "16")
    out = evaluate("signs", tmp_path / "model", "--dataset", kaggle, "--batch_size", "7")["metrics"]
    for key in ("test_accuracy", "test_images", "test_errors", "per_class_accuracy"):
        assert out[key] == trained[key], key
    assert out["test_images"] == 8 * 2 and len(out["per_class_accuracy"]) == 43
    assert out["test_loss"] == pytest.approx(trained["test_loss"], rel=1e-5)


# -- denoiser --------------------------------------------------------------------------------------------------------
def test_denoiser_equals_the_train_script(tmp_path):
    faces = tmp_path / "face_data.npy"
    np.save(faces, synthetic_faces(20, seed=4))
    trained = train_script("dae", "--dataset", str(faces), "--output_dir", str(tmp_path / "model"), "--epochs", "1",
                           "--widths", "8", "16", "--batch_size", "4")
    out = evaluate("denoiser", tmp_path / "model", "--dataset", faces)
    for sigma in (0.1, 0.2, 0.3):
        for kind in ("noisy", "denoised", "gain"):
            key = f"test_psnr_{kind}_{sigma}"
            assert out["metrics"][key] == pytest.approx(trained[key], abs=1e-9), key
    names = [r["name"] for r in out["results"]]
    assert names[:2] == ["PSNR noisy input, σ = 0.1", "PSNR denoised, σ = 0.1"] and len(names) == 6
    validation = evaluate("denoiser", tmp_path / "model", "--dataset", faces, "--split", "validation")["metrics"]
    assert validation["validation_psnr_noisy_0.2"] != out["metrics"]["test_psnr_noisy_0.2"]  # other faces


# -- landmarks -------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def faces_68(tmp_path_factory):
    """trainset/ (12 photos) + testset/ (5 faces): 64 px crops with .pts files."""
    root = tmp_path_factory.mktemp("helen")
    rng = np.random.default_rng(1)
    for split, count in (("trainset", 12), ("testset", 5)):
        (root / split).mkdir()
        for i in range(count):
            points = (template() + rng.normal(0, 0.01, (68, 2))) * 64
            face(points, 64, i).save(root / split / f"{100 + i}_1.jpg", quality=95)
            write_pts(root / split / f"{100 + i}_1.pts", points)
    return root


def test_landmarks_reports_mse_nme_and_failures(faces_68, tmp_path):
    from dlhub.data.landmarks import load_landmarks
    from dlhub.landmarks import LandmarkModel, nme

    model = LandmarkModel.create("efficientnet_lite0", input_size=32)
    model.save_pretrained(tmp_path / "model")
    out = evaluate("landmarks", tmp_path / "model", "--dataset", faces_68)["metrics"]
    test = load_landmarks(faces_68)["test"]
    true = np.stack([np.asarray(r["landmarks"]) for r in test]) / 64 * 2 - 1  # [-1, 1] over the crop
    loaded = dlhub.load("landmarks", tmp_path / "model")
    with torch.no_grad():
        x = torch.stack([torch.from_numpy(np.array(r["image"].convert("RGB").resize((32, 32), Image.BILINEAR)))
                         .permute(2, 0, 1) for r in test]).float() / 255
        predicted = loaded(x).numpy()
    errors = nme(predicted, true)
    assert out["test_faces"] == 5
    assert out["test_mse_px2"] == pytest.approx(float(((predicted - true) ** 2).mean()) * 112 ** 2, rel=1e-4)
    assert out["test_nme"] == pytest.approx(errors.mean(), rel=1e-4)
    assert out["test_failure_rate_nme_0.10"] == pytest.approx((errors > 0.1).mean())


# -- commands --------------------------------------------------------------------------------------------------------
class FixedLogits(torch.nn.Module):
    """A stand-in classifier whose 'features' are its logits, to check the report against hand-counted values."""

    def __init__(self, labels):
        super().__init__()
        self.labels = labels

    def forward(self, x):
        return x


def test_commands_report_counts_words_and_rejections():
    from accelerate import Accelerator
    from torch.utils.data import DataLoader, TensorDataset

    from dlhub.data.speech_commands import LABELS
    from dlhub.evaluation import commands_test

    unknown, silence = LABELS.index("unknown"), LABELS.index("silence")
    # (true, predicted): 4 word clips (3 right, 1 rejected as unknown), 2 unknown clips (1 rejected, 1 taken for
    # "yes"), 2 silence clips (both rejected, one of them as unknown)
    pairs = [(0, 0), (1, 1), (2, 2), (3, unknown), (unknown, unknown), (unknown, 0), (silence, silence),
             (silence, unknown)]
    logits = torch.zeros(len(pairs), len(LABELS))
    logits[torch.arange(len(pairs)), torch.tensor([p for _, p in pairs])] = 5.0
    loader = DataLoader(TensorDataset(logits, torch.tensor([t for t, _ in pairs])), batch_size=3)
    metrics, _ = commands_test(FixedLogits(LABELS), loader, Accelerator())
    assert metrics["test_accuracy"] == 5 / 8 and metrics["test_clips"] == 8 and metrics["test_errors"] == 3
    assert metrics["test_command_accuracy"] == 3 / 4 and metrics["test_command_clips"] == 4
    assert metrics["test_unknown_rejected"] == 1 / 2 and metrics["test_silence_rejected"] == 1.0
    assert metrics["per_word_accuracy"]["down"] == 0.0 and metrics["per_word_accuracy"]["silence"] == 0.5


@pytest.fixture(scope="module")
def spoken(tmp_path_factory):
    """Speech Commands layout: four espeak-ng voices (speakers) saying the ten words and two other words, and noise."""
    from dlhub.data.speech_commands import WORDS

    root = tmp_path_factory.mktemp("speech")
    for s, voice in enumerate(VOICES):
        for word in [*WORDS, "bed", "cat"]:
            x, rate = speak(word, voice, silence_s=0.1)
            y = audio.window(audio.resample(x / 32768.0, rate), 0, len(x) / rate, 16000)
            (root / word).mkdir(exist_ok=True)
            write_wav(root / word / f"voice{s}00_nohash_0.wav", np.round(y * 32767).astype(np.int16), 16000)
    (root / "_silence_").mkdir()
    for k in range(10):
        noise = np.random.default_rng(k).normal(0, 300, 16000).astype(np.int16)
        write_wav(root / "_silence_" / f"{k}.wav", noise, 16000)
    return root


def test_commands_with_and_without_the_rejection_labels(spoken, tmp_path):
    from dlhub.commands import CommandClassifier
    from dlhub.data.speech_commands import LABELS, WORDS

    torch.manual_seed(0)
    CommandClassifier(layers=[6], hidden=16, labels=LABELS).save_pretrained(tmp_path / "twelve")
    CommandClassifier(layers=[6], hidden=16, labels=WORDS).save_pretrained(tmp_path / "ten")
    twelve = evaluate("commands", tmp_path / "twelve", "--dataset", spoken)
    m = twelve["metrics"]
    assert m["test_speakers"] == 1 and m["test_command_clips"] == 10 and m["test_unknown_clips"] == 2
    assert m["test_clips"] == 10 + 2 + m["test_silence_clips"] and m["test_silence_clips"] >= 1
    assert {r["metric_type"] for r in twelve["results"]} == {"accuracy", "rejection_rate"}
    ten = evaluate("commands", tmp_path / "ten", "--dataset", spoken)["metrics"]
    assert ten["test_clips"] == 10 and ten["test_clips_outside_labels"] == 2 + m["test_silence_clips"]
    assert "test_unknown_rejected" not in ten and ten["test_command_accuracy"] == ten["test_accuracy"]


# -- bad input -------------------------------------------------------------------------------------------------------
def test_bad_input_is_one_line(capsys, task1, regression_model, tmp_path):
    folder, _ = regression_model
    assert "unknown task 'sign': choose one of commands, denoiser" in one_line_error(
        capsys, "sign", folder, "--dataset", task1)
    assert f"no dataset at {tmp_path / 'absent'}: pass --dataset with the folder holding Task1_1.npz" in \
        one_line_error(capsys, "regression", folder, "--dataset", tmp_path / "absent")
    assert f"run `python -m dlhub.evaluate regression {folder} --dataset …` instead" in one_line_error(
        capsys, "signs", folder, "--dataset", task1)
    assert "has no 'validation' split (it has train, test): pass --split" in one_line_error(
        capsys, "regression", folder, "--dataset", task1, "--split", "validation")
    assert "the following arguments are required: --dataset" in one_line_error(capsys, "regression", folder)
    assert "--push updates the model card of a Hub repo" in one_line_error(
        capsys, "regression", folder, "--dataset", task1, "--push")
