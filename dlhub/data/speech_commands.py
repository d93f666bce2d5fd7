"""Spoken commands (yes, no, up, down, left, right, on, off, stop, go) as an HF DatasetDict split by speaker.

Layouts read:
- Speech Commands: `<word>/<speaker>_nohash_<n>.wav|.flac`; other word folders (and `_background_noise_`) are
  skipped. When `validation_list.txt` / `testing_list.txt` are present they define the splits (official protocol);
  otherwise speakers are split 80/10/10 with a fixed seed, so no speaker is in two splits.
- the course's Kaggle layout: `Train/*.wav` + `train.csv` (columns ID, Label; Label 0–9 in WORDS order). File names
  carry no speaker, so that split is by clip: said in a warning.
- a Hub dataset id with audio and label columns, through `datasets.load_dataset` (Parquet; no loading scripts).
Columns: audio (16 kHz mono, decoded by torchcodec), label (ClassLabel over WORDS), speaker.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np

from dlhub.data import is_hub_id, load_saved_or_hub
from dlhub.errors import DataError

WORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
AUDIO_SUFFIXES = (".wav", ".flac")
SAMPLING_RATE = 16_000
SPLIT_SEED = 0
log = logging.getLogger("dlhub")


def speaker_of(path: str) -> str:
    name = Path(path).name
    return name.split("_nohash_")[0] if "_nohash_" in name else ""


def list_speech_commands(root: Path) -> list[tuple[str, int, str]]:
    """(path relative to root, label, speaker) for every clip of the ten words."""
    rows = []
    for label, word in enumerate(WORDS):
        folder = root / word
        if folder.is_dir():
            rows += [(f"{word}/{f.name}", label, speaker_of(f.name)) for f in sorted(folder.iterdir())
                     if f.suffix.lower() in AUDIO_SUFFIXES]
    return rows


def list_kaggle(root: Path) -> list[tuple[str, int, str]]:
    with open(root / "train.csv", newline="") as f:
        table = list(csv.DictReader(f))
    if not table or not {"ID", "Label"} <= set(table[0]):
        raise DataError(f"{root / 'train.csv'}: expected columns ID and Label")
    rows = []
    for r in table:
        label = int(r["Label"])
        if not 0 <= label < len(WORDS):
            raise DataError(f"{root / 'train.csv'}: Label {label} is outside 0–{len(WORDS) - 1}")
        name = r["ID"] if Path(r["ID"]).suffix else f"{r['ID']}.wav"
        rows.append((f"Train/{name}", label, speaker_of(name)))
    return rows


def split_by_speaker(rows, root: Path, seed: int = SPLIT_SEED) -> dict[str, list]:
    """Official lists when given, else 80/10/10 of the speakers (clips without a speaker are split one by one)."""
    lists = {split: root / f"{split}_list.txt" for split in ("validation", "testing")}
    if all(p.is_file() for p in lists.values()):
        named = {split: set(p.read_text().split()) for split, p in lists.items()}
        return {"train": [r for r in rows if r[0] not in named["validation"] | named["testing"]],
                "validation": [r for r in rows if r[0] in named["validation"]],
                "test": [r for r in rows if r[0] in named["testing"]]}
    keys = [r[2] or r[0] for r in rows]  # speaker, or the clip itself when the speaker is unknown
    if not all(r[2] for r in rows):
        log.warning("dlhub: some clips name no speaker: they are split clip by clip, so a speaker may appear in "
                    "two splits")
    groups = sorted(set(keys))
    order = np.random.default_rng(seed).permutation(len(groups))
    n_val, n_test = max(1, round(0.1 * len(groups))), max(1, round(0.1 * len(groups)))
    if len(groups) < 3:
        raise DataError(f"{root}: {len(groups)} speakers are too few for train/validation/test splits")
    split_of = {}
    for rank, g in enumerate(order):
        split_of[groups[g]] = "validation" if rank < n_val else "test" if rank < n_val + n_test else "train"
    return {split: [r for r, k in zip(rows, keys) if split_of[k] == split] for split in ("train", "validation", "test")}


def load_speech_commands(source):
    """DatasetDict train/validation/test with audio (16 kHz), label (ClassLabel over WORDS) and speaker."""
    from datasets import Audio, ClassLabel, Dataset, DatasetDict, Features, Value

    saved = load_saved_or_hub(source)
    if saved is not None:
        if is_hub_id(source):  # a Hub dataset may hold audio at another rate: resample when decoding
            saved = saved.cast_column("audio", Audio(sampling_rate=SAMPLING_RATE))
        return saved
    path = Path(str(source))
    if not path.exists():
        raise DataError(f"{source} not found: pass a Speech Commands folder, a Kaggle Train/ + train.csv folder, "
                        "or a Hub dataset id")
    if (path / "train.csv").is_file() and (path / "Train").is_dir():
        rows = list_kaggle(path)
    else:
        rows = list_speech_commands(path)
    if not rows:
        raise DataError(f"{path} holds no clips: expected <word>/<speaker>_nohash_<n>.wav|.flac for the words "
                        f"{', '.join(WORDS)}, or Train/ + train.csv")
    missing = [p for p, _, _ in rows if not (path / p).is_file()]
    if missing:
        raise DataError(f"{path}: {len(missing)} listed clips are missing, e.g. {missing[0]}")
    features = Features({"audio": Audio(sampling_rate=SAMPLING_RATE), "label": ClassLabel(names=WORDS),
                         "speaker": Value("string")})
    splits = split_by_speaker(rows, path)
    return DatasetDict({
        split: Dataset.from_dict({"audio": [str(path / p) for p, _, _ in items], "label": [c for _, c, _ in items],
                                  "speaker": [s for _, _, s in items]}, features=features)
        for split, items in splits.items()})
