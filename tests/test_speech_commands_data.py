"""Spoken-command data: the Speech Commands and Kaggle layouts, speaker-disjoint splits, the official lists."""

import sys

import numpy as np
import pytest
from conftest import run_script
from scipy.io import wavfile

from dlhub.data.speech_commands import WORDS, load_speech_commands
from dlhub.errors import DataError


def clip(seed: int) -> np.ndarray:
    t = np.arange(16000) / 16000
    return (8000 * np.sin(2 * np.pi * (200 + 40 * seed) * t)).astype(np.int16)


@pytest.fixture
def commands(tmp_path):
    """4 speakers × 10 words, plus folders that must be skipped."""
    for s, speaker in enumerate(["aaaa1111", "bbbb2222", "cccc3333", "dddd4444"]):
        for w, word in enumerate(WORDS):
            (tmp_path / word).mkdir(exist_ok=True)
            wavfile.write(tmp_path / word / f"{speaker}_nohash_0.wav", 16000, clip(10 * s + w))
    for other in ("bed", "_background_noise_"):
        (tmp_path / other).mkdir()
        wavfile.write(tmp_path / other / "x_nohash_0.wav", 16000, clip(0))
    return tmp_path


def test_speaker_disjoint_splits(commands):
    data = load_speech_commands(commands)
    assert {k: v.num_rows for k, v in data.items()} == {"train": 20, "validation": 10, "test": 10}
    speakers = {k: set(v["speaker"]) for k, v in data.items()}
    assert not (speakers["train"] & speakers["validation"] or speakers["train"] & speakers["test"]
                or speakers["validation"] & speakers["test"])
    assert all(speakers.values())  # each split has speakers of its own
    assert data["train"].features["label"].names == WORDS
    item = data["test"][0]
    samples = item["audio"].get_all_samples()
    assert samples.sample_rate == 16000 and samples.data.shape == (1, 16000)
    speaker = item["speaker"]
    expected = clip(10 * "abcd".index(speaker[0]) + item["label"]) / 32768.0
    assert np.allclose(samples.data[0].numpy(), expected, atol=1e-4)


def test_official_lists_are_honoured(commands):
    (commands / "validation_list.txt").write_text("yes/aaaa1111_nohash_0.wav\nno/bbbb2222_nohash_0.wav\n")
    (commands / "testing_list.txt").write_text("up/cccc3333_nohash_0.wav\n")
    data = load_speech_commands(commands)
    assert data["validation"].num_rows == 2 and data["test"].num_rows == 1 and data["train"].num_rows == 37


def test_kaggle_layout(tmp_path):
    (tmp_path / "Train").mkdir()
    rows = ["ID,Label"]
    for i in range(30):
        wavfile.write(tmp_path / "Train" / f"{i}.wav", 16000, clip(i))
        rows.append(f"{i},{i % 10}")
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    data = load_speech_commands(tmp_path)
    assert sum(v.num_rows for v in data.values()) == 30
    labels = sorted(label for split in data.values() for label in split["label"])
    assert labels == sorted(i % 10 for i in range(30))


@pytest.mark.parametrize("make, message", [
    (lambda p: None, "holds no clips"),
    (lambda p: ((p / "Train").mkdir(), (p / "train.csv").write_text("ID,Label\n7,3\n")), "listed clips are missing"),
    (lambda p: ((p / "Train").mkdir(), (p / "train.csv").write_text("ID,Label\n7,12\n")), "Label 12 is outside"),
])
def test_bad_folders(tmp_path, make, message):
    make(tmp_path)
    with pytest.raises(DataError, match=message):
        load_speech_commands(tmp_path)
    with pytest.raises(DataError, match="not found"):
        load_speech_commands(tmp_path / "absent")


@pytest.mark.slow
def test_script_saves_and_publishes(commands, tmp_path):
    from datasets import load_dataset

    out = tmp_path / "saved"
    result = run_script(sys.executable, "datasets_scripts/speech_commands.py", "--data-dir", str(commands),
                        "--output-dir", str(out), "--push_to_hub", "--hub_dataset_id", "test-org/commands-tiny")
    assert result.returncode == 0, result.stderr[-3000:]
    assert load_speech_commands(out)["test"].num_rows == 10
    pulled = load_dataset("test-org/commands-tiny")
    assert pulled["train"].num_rows == 20 and pulled["train"].features["label"].names == WORDS
