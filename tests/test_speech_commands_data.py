"""Spoken-command data: the Speech Commands and Kaggle layouts, the 12 classes (ten words, unknown, silence),
speaker-disjoint splits across all of them, the official lists."""

import sys

import numpy as np
import pytest
from datasets import Audio, Features
from conftest import run_script
from scipy.io import wavfile

from dlhub.data.speech_commands import LABELS, WORDS, load_speech_commands, to_twelve_classes
from dlhub.errors import DataError


def clip(seed: int) -> np.ndarray:
    t = np.arange(16000) / 16000
    return (8000 * np.sin(2 * np.pi * (200 + 40 * seed) * t)).astype(np.int16)


SPEAKERS = ["aaaa1111", "bbbb2222", "cccc3333", "dddd4444"]


@pytest.fixture
def commands(tmp_path):
    """4 speakers × (10 words + "bed" and "cat", other words), 4 `_silence_` clips, a 3.5 s background recording."""
    for s, speaker in enumerate(SPEAKERS):
        for w, word in enumerate(WORDS + ["bed", "cat"]):
            (tmp_path / word).mkdir(exist_ok=True)
            wavfile.write(tmp_path / word / f"{speaker}_nohash_0.wav", 16000, clip(12 * s + w))
    (tmp_path / "_silence_").mkdir()
    (tmp_path / "_background_noise_").mkdir()
    for n in range(4):
        wavfile.write(tmp_path / "_silence_" / f"{n}.wav", 16000, clip(50 + n) // 8)
    wavfile.write(tmp_path / "_background_noise_" / "hum.wav", 16000, np.tile(clip(60) // 8, 4)[:56000])
    return tmp_path


def test_twelve_classes_split_by_speaker(commands):
    data = load_speech_commands(commands)
    assert data["train"].features["label"].names == LABELS == [*WORDS, "unknown", "silence"]
    speakers = {k: set(v["speaker"]) - {""} for k, v in data.items()}
    assert not (speakers["train"] & speakers["validation"] or speakers["train"] & speakers["test"]
                or speakers["validation"] & speakers["test"])
    assert all(speakers.values())  # each split has speakers of its own
    for split in data.values():  # every word a speaker said, commands and other words alike, is in their split
        for speaker in set(split["speaker"]) - {""}:
            said = [label for label, s in zip(split["label"], split["speaker"]) if s == speaker]
            assert sorted(said) == sorted(list(range(10)) + [LABELS.index("unknown")] * 2)
    paths = {k: v.cast_column("audio", Audio(decode=False))["audio"] for k, v in data.items()}
    silence = {k: [a["path"] for a, label in zip(paths[k], v["label"]) if label == LABELS.index("silence")]
               for k, v in data.items()}
    assert sum(map(len, silence.values())) == 4 + 3  # four clips and three 1-s cuts of the 3.5 s recording
    assert sum(any("background_cuts" in p for p in paths) for paths in silence.values()) == 1  # one recording, one split
    item = next(row for row in data["test"] if LABELS[row["label"]] in WORDS)
    samples = item["audio"].get_all_samples()
    assert samples.sample_rate == 16000 and samples.data.shape == (1, 16000)
    expected = clip(12 * SPEAKERS.index(item["speaker"]) + item["label"]) / 32768.0
    assert np.allclose(samples.data[0].numpy(), expected, atol=1e-4)


def test_a_dataset_with_every_word_maps_onto_the_twelve_classes():
    from datasets import ClassLabel, Dataset, DatasetDict

    names = ["bed", "yes", "_silence_", "go", "marvin", "_background_noise_"]
    data = DatasetDict({"train": Dataset.from_dict({"label": list(range(6))},
                                                   features=Features({"label": ClassLabel(names=names)}))})
    mapped = to_twelve_classes(data)["train"]
    assert mapped.features["label"].names == LABELS
    assert [LABELS[c] for c in mapped["label"]] == ["unknown", "yes", "silence", "go", "unknown", "silence"]


def test_official_lists_are_honoured(commands):
    (commands / "validation_list.txt").write_text("yes/aaaa1111_nohash_0.wav\nno/bbbb2222_nohash_0.wav\n")
    (commands / "testing_list.txt").write_text("up/cccc3333_nohash_0.wav\n")
    data = load_speech_commands(commands)
    speech = {k: [LABELS[c] for c in v["label"] if LABELS[c] != "silence"] for k, v in data.items()}
    assert sorted(speech["validation"]) == ["no", "yes"] and speech["test"] == ["up"] and len(speech["train"]) == 4 * 12 - 3
    silence = {k: v["label"].count(LABELS.index("silence")) for k, v in data.items()}
    assert all(silence.values()) and sum(silence.values()) == 4 + 3  # the lists name speech only: noise held out too


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
    saved = load_speech_commands(out)
    assert {k: v.num_rows for k, v in saved.items()} == {k: v.num_rows for k, v in load_speech_commands(commands).items()}
    pulled = load_dataset("test-org/commands-tiny")
    assert pulled["train"].num_rows == saved["train"].num_rows and pulled["train"].features["label"].names == LABELS
