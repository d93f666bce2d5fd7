"""Spoken commands as an HF DatasetDict split by speaker, in the 12 classes of the standard benchmark (Warden 2018,
"v2-12"): the ten command words (yes, no, up, down, left, right, on, off, stop, go), `unknown` (every other word) and
`silence` (background noise, no speech).

Layouts read:
- Speech Commands: `<word>/<speaker>_nohash_<n>.wav|.flac`; every other word folder is `unknown`; `_silence_/*`
  (one-second noise clips) and one-second cuts of `_background_noise_/*.wav` are `silence`. When
  `validation_list.txt` / `testing_list.txt` are present they define the splits (official protocol); otherwise
  speakers are split 80/10/10 with a fixed seed, so no speaker is in two splits, whatever word they said. Noise has
  no speaker: `_silence_` clips are split clip by clip, cuts of one background recording stay in one split.
- the course's layout: `Train/`, `Validation/` and an unlabelled `Test/` (graded on Kaggle: predict it with
  `python -m dlhub.predict commands Test/ --csv submission.csv`). Labels come from word subfolders
  (`Train/<word>/*.wav`) or from a CSV beside the folder and named after it (`train.csv`, `validation.csv`): a file
  column (ID, file, filename, …: the name with or without its extension) and a label column (Label, word, class, …:
  a word, or its index 0–11 in LABELS order; `_unknown_`/`_silence_` as Kaggle spells them). Validation is the validation split as given; the test split is 10% of
  Train's speakers held out (a labelled Test/ instead, when there is one). Without Validation/ (`Train/` +
  `train.csv`), Train is split 80/10/10. Names without a speaker are split clip by clip: said in a warning.
- a Hub dataset id with audio and label columns, through `datasets.load_dataset` (Parquet; no loading scripts).
Columns: audio (16 kHz mono, decoded by torchcodec), label (ClassLabel over LABELS), speaker (empty for noise).
A dataset saved with other label names (a Hub copy of Speech Commands with its 35 words) is mapped onto LABELS.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np

from dlhub import audio
from dlhub.cache import CACHE_DIR
from dlhub.data import is_hub_id, load_saved_or_hub
from dlhub.errors import DataError

WORDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
UNKNOWN, SILENCE = "unknown", "silence"
LABELS = [*WORDS, UNKNOWN, SILENCE]
NOISE_FOLDERS = ("_silence_", "_background_noise_")
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")
SAMPLING_RATE = 16_000
SPLIT_SEED = 0
HELD_OUT = 0.1  # the share of speakers held out for each of validation and test
# CSV headers recognised (case-insensitive), first match wins
FILE_COLUMNS = ("id", "file", "filename", "file_name", "fname", "path")
LABEL_COLUMNS = ("label", "word", "class", "target", "command")
log = logging.getLogger("dlhub")


def speaker_of(path: str) -> str:
    name = Path(path).name
    return name.split("_nohash_")[0] if "_nohash_" in name else ""


def list_speech_commands(root: Path, folder: Path | None = None) -> list[tuple[str, int, str]]:
    """(path relative to root, label, speaker) for every clip in `folder`'s word subfolders: the ten words, every other
    word as unknown, `_silence_/` as silence (`_background_noise_/` is cut into clips by `background_clips`)."""
    folder = folder or root
    rows = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and p.name != "_background_noise_"):
        word = sub.name.lower()
        label = (LABELS.index(word) if word in WORDS else LABELS.index(SILENCE) if word == "_silence_"
                 else LABELS.index(UNKNOWN) if not word.startswith((".", "_")) else None)
        if label is not None:
            rows += [((sub / f.name).relative_to(root).as_posix(), label, speaker_of(f.name))
                     for f in sorted(sub.iterdir()) if f.suffix.lower() in AUDIO_SUFFIXES]
    return rows


def background_clips(root: Path) -> list[tuple[str, int, str]]:
    """One-second cuts of `_background_noise_/*` as silence rows, written once as WAV files into the cache (the
    recordings are minutes long; a dataset row is one clip)."""
    folder = root / "_background_noise_"
    recordings = sorted(f for f in folder.iterdir() if f.suffix.lower() in AUDIO_SUFFIXES) if folder.is_dir() else []
    rows = []
    for f in recordings:
        stat = f.stat()
        cuts = CACHE_DIR / "background_cuts" / f"{f.stem}-{stat.st_size}-{int(stat.st_mtime)}"
        if not (cuts / "done").is_file():
            x, rate, _ = audio.load_audio_file(f)
            x = audio.resample(x, rate)
            cuts.mkdir(parents=True, exist_ok=True)
            for k in range(len(x) // SAMPLING_RATE):
                audio.write_wav(cuts / f"{k:04d}.wav", x[k * SAMPLING_RATE:(k + 1) * SAMPLING_RATE])
            (cuts / "done").touch()
        rows += [(str(c), LABELS.index(SILENCE), "") for c in sorted(cuts.glob("*.wav"))]
    return rows


def group_of(row: tuple[str, int, str]) -> str:
    """What must not be in two splits: the speaker, else the background recording a cut comes from, else the clip."""
    path, _, speaker = row
    if speaker:
        return speaker
    return str(Path(path).parent) if "background_cuts" in Path(path).parts else path


def clip_groups(split) -> list[str]:
    """group_of each clip of a dataset split (its `audio` paths and `speaker`): what speaker-grouped cross-validation
    keeps together."""
    from datasets import Audio

    paths = [a["path"] for a in split.cast_column("audio", Audio(decode=False))["audio"]]
    return [group_of((path, 0, speaker)) for path, speaker in zip(paths, split["speaker"])]


def child(root: Path, name: str, folder: bool) -> Path | None:
    """root/name with its case ignored (Train/ or train/, train.csv or Train.csv)."""
    for p in sorted(root.iterdir()):
        if p.name.lower() == name and (p.is_dir() if folder else p.is_file()):
            return p
    return None


def label_index(value: str, where: str) -> int:
    """A label of LABELS (any case; Kaggle's `_unknown_`/`_silence_` too) or its index."""
    text = value.strip()
    if text.lower().strip("_") in LABELS:
        return LABELS.index(text.lower().strip("_"))
    try:
        label = int(text)
    except ValueError:
        raise DataError(f"{where} {text!r} is neither one of {', '.join(LABELS)} nor an index 0–{len(LABELS) - 1}"
                        ) from None
    if not 0 <= label < len(LABELS):
        raise DataError(f"{where} {label} is outside 0–{len(LABELS) - 1} (the indices of {', '.join(LABELS)})")
    return label


def clip_path(root: Path, folder: Path, name: str) -> str:
    """A CSV's file entry (with or without its extension, relative to its folder or to root) → path relative to root."""
    names = [name] if Path(name).suffix.lower() in AUDIO_SUFFIXES else [name + s for s in AUDIO_SUFFIXES]
    for base in (folder, root):
        for n in names:
            if (base / n).is_file():
                return (base / n).relative_to(root).as_posix()
    return (folder / names[0]).relative_to(root).as_posix()  # reported as missing by the caller


def list_csv(root: Path, folder: Path, table_path: Path) -> list[tuple[str, int, str]] | None:
    """Rows of a labels CSV for the clips in `folder`; None when it has a file column and no label column (a list of
    unlabelled test ids)."""
    with open(table_path, newline="", encoding="utf-8-sig") as f:  # utf-8-sig: the byte-order mark Excel writes
        reader = csv.DictReader(f)
        columns = {c.strip().lower(): c for c in reader.fieldnames or []}
        table = list(reader)
    file_column = next((columns[c] for c in FILE_COLUMNS if c in columns), None)
    label_column = next((columns[c] for c in LABEL_COLUMNS if c in columns), None)
    if file_column is None:
        raise DataError(f"{table_path}: expected a file column ({', '.join(FILE_COLUMNS)}) and a label column "
                        f"({', '.join(LABEL_COLUMNS)}); found {', '.join(reader.fieldnames or ['nothing'])}")
    if label_column is None:
        return None
    rows = []
    for line, r in enumerate(table, start=2):  # line 1 is the header
        path = clip_path(root, folder, (r[file_column] or "").strip())
        rows.append((path, label_index(r[label_column] or "", f"{table_path} line {line}: {label_column}"),
                     speaker_of(path)))
    if not rows:
        raise DataError(f"{table_path} lists no clips")
    missing = [p for p, _, _ in rows if not (root / p).is_file()]
    if missing:
        raise DataError(f"{table_path}: {len(missing)} listed clips are missing, e.g. {missing[0]}")
    return rows


def list_split(root: Path, folder: Path) -> tuple[list[tuple[str, int, str]] | None, str]:
    """The labelled clips of one course folder and where their labels came from; (None, "") when it is unlabelled.
    A CSV named after the folder wins over word subfolders."""
    table_path = child(root, f"{folder.name.lower()}.csv", folder=False)
    if table_path is not None:
        rows = list_csv(root, folder, table_path)
        if rows is not None:
            return rows, table_path.name
    rows = list_speech_commands(root, folder)
    return (rows, f"{folder.name}/<word>/") if rows else (None, "")


def split_by_speaker(rows, root: Path, seed: int = SPLIT_SEED) -> dict[str, list]:
    """Official lists when given, else 80/10/10 of the speakers (clips without a speaker are split one by one)."""
    lists = {split: root / f"{split}_list.txt" for split in ("validation", "testing")}
    if all(p.is_file() for p in lists.values()):
        named = {split: set(p.read_text().split()) for split, p in lists.items()}
        listed = named["validation"] | named["testing"]
        # the lists name speech only: noise is held out as hold_out_speakers does it, so every split has some
        noise = [r for r in rows if r[1] == LABELS.index(SILENCE) and r[0] not in listed]
        noise_split = split_groups([group_of(r) for r in noise], ("validation", "test"), seed + 1)
        noise_paths = {r[0] for r in noise}
        return {"train": [r for r in rows if r[0] not in listed and r[0] not in noise_paths]
                + [r for r in noise if noise_split[group_of(r)] == "train"],
                "validation": [r for r in rows if r[0] in named["validation"]]
                + [r for r in noise if noise_split[group_of(r)] == "validation"],
                "test": [r for r in rows if r[0] in named["testing"]]
                + [r for r in noise if noise_split[group_of(r)] == "test"]}
    return hold_out_speakers(rows, root, ("validation", "test"), seed)


def split_groups(keys: list[str], held: tuple[str, ...], seed: int) -> dict[str, str]:
    """group → split: 10% of the groups (at least one) to each of `held`, with a fixed seed; the rest to train."""
    groups = sorted(set(keys))
    order = np.random.default_rng(seed).permutation(len(groups))
    n_held = max(1, round(HELD_OUT * len(groups)))
    return {groups[g]: held[rank // n_held] if rank < n_held * len(held) else "train" for rank, g in enumerate(order)}


def hold_out_speakers(rows, root: Path, held: tuple[str, ...], seed: int = SPLIT_SEED) -> dict[str, list]:
    """{"train": …, each of `held`: 10% of the speakers (at least one)}, whatever word they said; noise clips (no
    speaker) are held out the same way, by background recording or clip by clip."""
    keys = [group_of(r) for r in rows]
    if not all(r[2] for r in rows if r[1] != LABELS.index(SILENCE)):
        log.warning("dlhub: some clips name no speaker: they are split clip by clip, so a speaker may appear in "
                    "two splits")
    speech = sorted({k for r, k in zip(rows, keys) if r[1] != LABELS.index(SILENCE)})
    noise = sorted(set(keys) - set(speech))
    if len(speech) < len(held) + 1:
        raise DataError(f"{root}: {len(speech)} speakers are too few for {'/'.join(('train',) + held)} splits")
    split_of = {**split_groups(speech, held, seed), **split_groups(noise, held, seed + 1)}  # each 80/10/10
    return {split: [r for r, k in zip(rows, keys) if split_of[k] == split] for split in ("train",) + held}


def course_splits(root: Path, folders: dict[str, Path | None], train: list, train_labels: str) -> dict[str, list]:
    """Validation/ as given; a labelled Test/, else Train's held-out speakers, as the test split (one log line)."""
    validation, validation_labels = list_split(root, folders["validation"])
    if validation is None:
        raise DataError(f"{folders['validation']} has no labels: expected {folders['validation'].name}/<word>/*.wav "
                        f"or {folders['validation'].name.lower()}.csv beside it (a file and a label column)")
    test, test_labels = list_split(root, folders["test"]) if folders["test"] is not None else (None, "")
    if test is None:
        held = hold_out_speakers(train, root, ("test",))
        train, test = held["train"], held["test"]
        n_speakers = len({s for _, _, s in test if s})
        test_used = (f"{len(test)} clips of {n_speakers} speakers held out from {folders['train'].name}/"
                     if n_speakers else f"{len(test)} clips held out from {folders['train'].name}/")
    else:
        test_used = f"{folders['test'].name}/ ({len(test)} clips, labels from {test_labels})"
    shared = {s for _, _, s in train if s} & {s for _, _, s in validation if s}
    if shared:
        log.warning("dlhub: %d speakers are in both %s/ and %s/: validation accuracy will read high", len(shared),
                    folders["train"].name, folders["validation"].name)
    unlabelled = (f"; {folders['test'].name}/ is unlabelled: predict it with `python -m dlhub.predict commands "
                  f"{folders['test']}`" if folders["test"] is not None and test_labels == "" else "")
    log.info("dlhub: %s: train = %s/ (%d clips, labels from %s), validation = %s/ as given (%d clips, labels from "
             "%s), test = %s%s", root, folders["train"].name, len(train), train_labels, folders["validation"].name,
             len(validation), validation_labels, test_used, unlabelled)
    return {"train": train, "validation": validation, "test": test}


def load_speech_commands(source):
    """DatasetDict train/validation/test with audio (16 kHz), label (ClassLabel over LABELS) and speaker."""
    from datasets import Audio, ClassLabel, Dataset, DatasetDict, Features, Value

    saved = load_saved_or_hub(source)
    if saved is not None:
        if is_hub_id(source):  # a Hub dataset may hold audio at another rate: resample when decoding
            saved = saved.cast_column("audio", Audio(sampling_rate=SAMPLING_RATE))
        return to_twelve_classes(saved)
    path = Path(str(source))
    if not path.is_dir():
        raise DataError(f"{source} {'is a file' if path.exists() else 'not found'}: pass a Speech Commands folder, "
                        "the course's folder of Train/ and Validation/ (or Train/ + train.csv), or a Hub dataset id")
    folders = {split: child(path, split, folder=True) for split in ("train", "validation", "test")}
    if folders["train"] is not None:
        rows, train_labels = list_split(path, folders["train"])
        if rows is None:
            raise DataError(f"{folders['train']} has no labels: expected {folders['train'].name}/<word>/*.wav or "
                            f"{folders['train'].name.lower()}.csv beside it (a file and a label column)")
        splits = (course_splits(path, folders, rows, train_labels) if folders["validation"] is not None
                  else split_by_speaker(rows, path))
    else:
        rows = list_speech_commands(path) + background_clips(path)
        if not any(label < len(WORDS) for _, label, _ in rows):
            raise DataError(f"{path} holds no clips: expected <word>/<speaker>_nohash_<n>.wav|.flac for the words "
                            f"{', '.join(WORDS)}, or Train/ and Validation/ (word subfolders or train.csv)")
        splits = split_by_speaker(rows, path)
    log_class_counts(path, splits)
    features = Features({"audio": Audio(sampling_rate=SAMPLING_RATE), "label": ClassLabel(names=LABELS),
                         "speaker": Value("string")})
    return DatasetDict({
        split: Dataset.from_dict({"audio": [str(path / p) for p, _, _ in items], "label": [c for _, c, _ in items],
                                  "speaker": [s for _, _, s in items]}, features=features)
        for split, items in splits.items()})


def log_class_counts(root, splits: dict[str, list]) -> None:
    """One line per split: clips of the ten words, of other words (unknown) and of noise (silence)."""
    def counts(items):
        labels = np.bincount([c for _, c, _ in items], minlength=len(LABELS))
        return (f"{labels[:len(WORDS)].sum()} command clips ({labels[:len(WORDS)].min()}–{labels[:len(WORDS)].max()} "
                f"a word), {labels[LABELS.index(UNKNOWN)]} unknown, {labels[LABELS.index(SILENCE)]} silence")

    for split, items in splits.items():
        log.info("dlhub: %s %s: %s", root, split, counts(items))


def to_twelve_classes(data):
    """A saved or Hub dataset whose label names are not LABELS (e.g. the 35 words of Speech Commands, `_silence_`)
    mapped onto them: the ten words kept, noise → silence, every other word → unknown."""
    from datasets import ClassLabel

    names = next(iter(data.values())).features["label"].names
    if names == LABELS or names == WORDS:  # ten-word datasets saved before the 12 classes stay as they were
        return data
    lookup = [label_index(n, "label") if n.lower().strip("_") in LABELS else
              LABELS.index(SILENCE) if "noise" in n.lower() else LABELS.index(UNKNOWN) for n in names]
    features = next(iter(data.values())).features.copy()
    features["label"] = ClassLabel(names=LABELS)
    return data.map(lambda batch: {"label": [lookup[c] for c in batch["label"]]}, batched=True, features=features)
