"""Predictions for a folder of files, written as the CSV Kaggle grades: one row per file.

    python -m dlhub.predict commands Test/ --csv submission.csv                        # the bundled model
    python -m dlhub.predict commands Test/ --csv submission.csv --source ORG/NAME      # a Hub repo or a local folder
    python -m dlhub.predict commands clip.wav --csv out.csv --label_format index

PATH is one file or a folder, read recursively (commands: wav, flac, mp3, ogg). The CSV has the header `id,label` and
one row per file, sorted by id (numerically when the ids are numbers): the id is the file name without its extension,
as Kaggle expects (`Test/00042.wav` → `00042`), so two files with the same name in different subfolders are refused;
the label is the most likely class, as its name (`--label_format word`) or as its index in the model's `labels`
(`--label_format index`). A file that cannot be read is named in a warning and gets no row; the other files are still
predicted and written, and the command then ends with status 2, listing the skipped files (Kaggle rejects a
submission with rows missing, so it must not pass silently).

Each task says which files it reads and how one file becomes one input of its model's `predict` (PREDICTORS); a task
whose model returns one {label: probability} per input can be added there.
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tqdm.auto import tqdm

from dlhub.cli import one_line_errors, setup_logging
from dlhub.data.speech_commands import AUDIO_SUFFIXES
from dlhub.errors import DataError


@dataclass(frozen=True)
class Predictor:
    suffixes: tuple[str, ...]  # the files read in a folder (lower case, with the dot)
    read: Callable[[Path], object]  # one file → one model input; DataError when it cannot be read
    predict: Callable[[object, list], list[dict[str, float]]]  # (model, inputs) → {label: probability}, best first


def read_command_clip(path: Path):
    """Any audio file → 16 kHz mono float32: files of different rates then share one `predict` call."""
    from dlhub import audio

    samples, rate, _ = audio.load_audio_file(path)
    return audio.prepare(samples, rate, path.name)


def predict_commands(model, clips: list) -> list[dict[str, float]]:
    from dlhub.audio import SAMPLING_RATE

    return model.predict(clips, SAMPLING_RATE)


PREDICTORS = {
    "commands": Predictor(AUDIO_SUFFIXES, read_command_clip, predict_commands),
}


def list_inputs(path: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    """{id: file}: `path` itself, or every file with one of `suffixes` under it."""
    kinds = ", ".join(s.lstrip(".") for s in suffixes)
    if not path.exists():
        raise DataError(f"{path} not found: pass a folder of {kinds} files or one file")
    if path.is_file():
        files = [path]
    else:  # names starting with a dot are hidden files (macOS "._x.wav" resource forks), not inputs
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes
                       and not p.name.startswith("."))
    if not files:
        raise DataError(f"{path} holds no {kinds} files")
    inputs: dict[str, Path] = {}
    for f in files:
        if f.stem in inputs:
            raise DataError(f"{inputs[f.stem]} and {f} would both be id {f.stem}: rename one (ids are file names "
                            "without extension)")
        inputs[f.stem] = f
    return inputs


def id_order(file_id: str):
    """Numbers by value (2 before 10), then names."""
    return (0, int(file_id), file_id) if file_id.isdigit() else (1, 0, file_id)


def predict_files(task: str, model, inputs: dict[str, Path], batch_size: int = 16
                  ) -> tuple[dict[str, str], dict[Path, str]]:
    """({id: most likely label}, {unreadable file: why}), in batches, with a progress bar."""
    predictor = PREDICTORS[task]
    predicted, failed = {}, {}
    items = list(inputs.items())
    with tqdm(total=len(items), desc=f"predicting {task}", unit="file") as bar:
        for start in range(0, len(items), batch_size):
            ids, batch = [], []
            for file_id, path in items[start:start + batch_size]:
                try:
                    batch.append(predictor.read(path))
                    ids.append(file_id)
                except DataError as err:
                    failed[path] = str(err)
                    tqdm.write(f"warning: skipped {path}: {err}", file=sys.stderr)
            for file_id, probs in zip(ids, predictor.predict(model, batch)):
                predicted[file_id] = next(iter(probs))
            bar.update(len(items[start:start + batch_size]))
    return predicted, failed


def write_submission(csv_path: Path, predicted: dict[str, str], labels: list[str], label_format: str = "word") -> None:
    """`id,label` rows sorted by id; index labels are positions in `labels` (the model's order)."""
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with open(csv_path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "label"])
        for file_id in sorted(predicted, key=id_order):
            label = predicted[file_id]
            writer.writerow([file_id, labels.index(label) if label_format == "index" else label])


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m dlhub.predict", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("task", choices=sorted(PREDICTORS))
    p.add_argument("path", help="a folder (read recursively) or one file")
    p.add_argument("--csv", default="submission.csv", help="the CSV written (id,label)")
    p.add_argument("--source", default=None,
                   help="ORG/NAME on the Hub or a local model folder; default: dlhub.load(task) (the bundled model "
                        "when the Hub is out of reach)")
    p.add_argument("--label_format", choices=("word", "index"), default="word",
                   help="word: the label's name; index: its position in the model's labels")
    p.add_argument("--batch_size", type=int, default=16)
    args = p.parse_args(argv)
    if args.batch_size < 1:
        raise DataError(f"--batch_size {args.batch_size}: pass 1 or more")
    setup_logging()
    inputs = list_inputs(Path(args.path), PREDICTORS[args.task].suffixes)  # before the model: a bad path fails at once

    import dlhub

    model = dlhub.load(args.task, args.source)
    predicted, failed = predict_files(args.task, model, inputs, args.batch_size)
    write_submission(Path(args.csv), predicted, list(model.labels), args.label_format)
    print(f"wrote {len(predicted)} rows to {args.csv}")
    if failed:
        raise DataError(f"{len(failed)} of {len(inputs)} files could not be read and have no row in {args.csv}: "
                        f"{', '.join(map(str, failed))}")


if __name__ == "__main__":
    with one_line_errors(__file__):
        main()
