"""The course's Task 5 layout: Train/, Validation/ and an unlabelled Test/ (labels from word subfolders or a CSV), and
`python -m dlhub.predict commands Test/ --csv submission.csv` for Kaggle, on a tree spoken by espeak-ng."""

import csv
import logging
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import run_script
from espeak import VOICES, speak, write_wav

from dlhub import audio
from dlhub.data.speech_commands import LABELS, WORDS, load_speech_commands
from dlhub.errors import DataError

# Two speakers per voice (the word with less or more silence around it); the held-out test takes Train's speakers
TRAIN_SPEAKERS = {f"v{v}{pad}": (VOICES[v], silence) for v in range(3) for pad, silence in (("a", 0.1), ("b", 0.4))}
VALIDATION_SPEAKERS = {f"v3{pad}": (VOICES[3], silence) for pad, silence in (("a", 0.1), ("b", 0.4))}
TEST_VOICES = ("en-us", "en+f3")


def build_tree(root: Path, labels_in_csv: bool) -> dict[str, str]:
    """Train/ and Validation/ (word subfolders, or flat files + train.csv with indices and validation.csv with words)
    and an unlabelled Test/; returns {path relative to root: the word said} of the labelled clips."""
    said = {}
    for folder, speakers in (("Train", TRAIN_SPEAKERS), ("Validation", VALIDATION_SPEAKERS)):
        table = []
        for speaker, (voice, silence) in speakers.items():
            for w, word in enumerate(WORDS):
                name = f"{speaker}_nohash_{w}.wav"
                path = Path(folder, name) if labels_in_csv else Path(folder, word, name)
                (root / path).parent.mkdir(parents=True, exist_ok=True)
                write_wav(root / path, *speak(word, voice, silence))
                said[path.as_posix()] = word
                table.append((Path(name).stem, w) if folder == "Train" else (name, word))
        if labels_in_csv:
            header = "ID,Label" if folder == "Train" else "file,word"
            lines = [header] + [f"{name},{label}" for name, label in table]
            (root / f"{folder.lower()}.csv").write_text("\n".join(lines) + "\n")
    (root / "Test").mkdir()
    write_wav(root / "Test" / "0.wav", *speak("yes", TEST_VOICES[0]))
    if labels_in_csv:  # Kaggle's sample list of test ids: no label column, so Test/ stays unlabelled
        (root / "test.csv").write_text("ID\n0\n")
    return said


def relative_files(split, root: Path) -> list[str]:
    from datasets import Audio

    paths = [a["path"] for a in split.cast_column("audio", Audio(decode=False))["audio"]]
    return [Path(p).relative_to(root).as_posix() for p in paths]


@pytest.mark.parametrize("labels_in_csv", [False, True], ids=["word-folders", "csv"])
def test_validation_as_given_and_test_held_out_by_speaker(tmp_path, caplog, labels_in_csv):
    said = build_tree(tmp_path, labels_in_csv)
    with caplog.at_level(logging.INFO, logger="dlhub"):
        data = load_speech_commands(tmp_path)
    files = {split: relative_files(data[split], tmp_path) for split in ("train", "validation", "test")}
    validation_files = sorted(p for p in said if p.startswith("Validation/"))
    train_files = sorted(p for p in said if p.startswith("Train/"))
    assert sorted(files["validation"]) == validation_files
    assert sorted(files["train"] + files["test"]) == train_files and not set(files["train"]) & set(files["test"])
    speakers = {split: set(data[split]["speaker"]) for split in files}
    assert speakers["validation"] == set(VALIDATION_SPEAKERS)
    assert len(speakers["test"]) == 1 and speakers["train"] | speakers["test"] == set(TRAIN_SPEAKERS)
    assert not speakers["train"] & speakers["test"]
    assert data["train"].features["label"].names == LABELS
    for split in files:  # every clip keeps the word it says, whichever way the label was given
        assert [WORDS[c] for c in data[split]["label"]] == [said[p] for p in files[split]]
    lines = [r.getMessage() for r in caplog.records if "validation = Validation/ as given" in r.getMessage()]
    assert len(lines) == 1 and "held out from Train/" in lines[0] and "Test/ is unlabelled" in lines[0], lines
    samples = data["validation"][0]["audio"].get_all_samples()
    assert samples.sample_rate == 16000 and samples.data.abs().max() > 0.05  # espeak's 22 kHz speech, resampled


def test_a_labelled_test_folder_is_the_test_split(tmp_path, caplog):
    said = build_tree(tmp_path, labels_in_csv=False)
    shutil.rmtree(tmp_path / "Test")
    shutil.copytree(tmp_path / "Validation", tmp_path / "Test")
    with caplog.at_level(logging.INFO, logger="dlhub"):
        data = load_speech_commands(tmp_path)
    assert sorted(relative_files(data["train"], tmp_path)) == sorted(p for p in said if p.startswith("Train/"))
    assert sorted(relative_files(data["test"], tmp_path)) == sorted(
        p.replace("Validation/", "Test/") for p in said if p.startswith("Validation/"))
    assert any("test = Test/ (20 clips" in r.getMessage() for r in caplog.records)


def tone_tree(root: Path, train_csv: str, validation_csv: str | None) -> None:
    """Flat Train/ and Validation/ of three tone clips each (a speaker apiece), labelled by the CSVs given."""
    t = np.arange(16000) / 16000
    for folder in ("Train", "Validation"):
        (root / folder).mkdir()
        for i in range(3):
            tone = (8000 * np.sin(2 * np.pi * (200 + 50 * i) * t)).astype(np.int16)
            write_wav(root / folder / f"s{i}_nohash_0.wav", tone, 16000)
    (root / "train.csv").write_text(train_csv)
    if validation_csv is not None:
        (root / "validation.csv").write_text(validation_csv)


@pytest.mark.parametrize("train_csv, validation_csv, message", [
    ("ID,Label\ns0_nohash_0,yes\ns1_nohash_0,bed\n", None, r"line 3: Label 'bed' is neither one of yes"),
    ("ID,Label\ns0_nohash_0,12\n", None, r"Label 12 is outside 0–11"),
    ("name,Label\ns0_nohash_0,1\n", None, "expected a file column"),
    ("file,word\ns0_nohash_0.wav,up\ns7_nohash_0.wav,up\n", None, "1 listed clips are missing, e.g. Train/s7_nohash_0"),
    ("file,word\ns0_nohash_0.wav,up\n", None, "Validation has no labels: expected Validation/<word>/"),
    ("file,word\ns0_nohash_0.wav,up\n", "ID\ns0_nohash_0\n", "Validation has no labels"),
])
def test_bad_course_folders_name_the_fix(tmp_path, train_csv, validation_csv, message):
    tone_tree(tmp_path, train_csv, validation_csv)
    with pytest.raises(DataError, match=message):
        load_speech_commands(tmp_path)


def test_csv_labels_of_either_kind_and_case(tmp_path):
    tone_tree(tmp_path, "ID,Label\ns0_nohash_0,0\ns1_nohash_0,Stop\ns2_nohash_0.wav,9\n",
              "\ufeffFile,Word\ns0_nohash_0,left\ns1_nohash_0,2\ns2_nohash_0,GO\n")  # with Excel's byte-order mark
    data = load_speech_commands(tmp_path)
    assert sorted(data["validation"]["label"]) == [WORDS.index("up"), WORDS.index("left"), WORDS.index("go")]
    assert sorted([*data["train"]["label"], *data["test"]["label"]]) == [0, WORDS.index("stop"), 9]


@pytest.fixture(scope="module")
def test_folder(tmp_path_factory):
    """Test/ as the course hands it out: numbered clips, no labels; one in a subfolder, one at 44.1 kHz stereo.
    Returns {id: word said}."""
    root = tmp_path_factory.mktemp("course") / "Test"
    order = np.random.default_rng(0).permutation(len(TEST_VOICES) * len(WORDS))
    said = {}
    for i, k in enumerate(order):
        voice, word = TEST_VOICES[k // len(WORDS)], WORDS[k % len(WORDS)]
        x, rate = speak(word, voice)
        if i == 0:
            x = np.round(np.stack([audio.resample(x / 32768, rate, 44100)] * 2, 1) * 32767).astype(np.int16)
            rate = 44100
        folder = root / "part2" if i >= 15 else root
        folder.mkdir(parents=True, exist_ok=True)
        write_wav(folder / f"{i}.wav", x, rate)
        said[str(i)] = word
    (root / "README.txt").write_text("not audio: not read\n")
    return root, said


def read_submission(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


@pytest.mark.slow
def test_predict_writes_a_kaggle_submission_in_words_and_indices(test_folder, tmp_path):
    root, said = test_folder
    rows = {}
    for label_format in ("word", "index"):
        out = tmp_path / f"{label_format}.csv"
        result = run_script(sys.executable, "-m", "dlhub.predict", "commands", str(root), "--csv", str(out),
                            "--label_format", label_format, "--batch_size", "8")
        assert result.returncode == 0, result.stderr[-3000:]
        table = read_submission(out)
        assert table[0] == ["id", "label"]
        rows[label_format] = table[1:]
    ids = [file_id for file_id, _ in rows["word"]]
    assert ids == [str(i) for i in range(len(said))]  # every file once, numbers in order (2 before 10)
    assert [file_id for file_id, _ in rows["index"]] == ids
    assert {label for _, label in rows["word"]} <= set(LABELS)  # the bundled model's labels (tests/test_commands.py)
    assert [LABELS[int(label)] for _, label in rows["index"]] == [label for _, label in rows["word"]]
    right = sum(label == said[file_id] for file_id, label in rows["word"])
    assert right >= len(said) - 2, rows["word"]  # voices it never heard: allow two misses in twenty


@pytest.mark.slow
def test_predict_skips_unreadable_files_and_fails_at_the_end(test_folder, tmp_path):
    root, said = test_folder
    folder = tmp_path / "Test"
    folder.mkdir()
    for file_id in ("1", "2"):
        shutil.copy(root / f"{file_id}.wav", folder)
    (folder / "3.wav").write_bytes(b"RIFF, but not audio" * 50)
    out = tmp_path / "out.csv"
    result = run_script(sys.executable, "-m", "dlhub.predict", "commands", str(folder), "--csv", str(out))
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert f"skipped {folder / '3.wav'}" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"predict.py: error: 1 of 3 files could not be read and have no row in {out}: {folder / '3.wav'}")
    assert [r[0] for r in read_submission(out)] == ["id", "1", "2"]


def test_predict_bad_path_is_one_line(tmp_path):
    result = run_script(sys.executable, "-m", "dlhub.predict", "commands", str(tmp_path / "absent"), "--csv",
                        str(tmp_path / "out.csv"))
    assert result.returncode != 0 and not (tmp_path / "out.csv").exists()
    assert result.stderr.strip().splitlines() == [
        f"predict.py: error: {tmp_path / 'absent'} not found: pass a folder of wav, flac, mp3, ogg files or one file"]
