"""Spoken commands in 12 classes (the ten words, unknown, silence) as an HF DatasetDict (train/validation/test by
speaker), saved and optionally published.

    python datasets_scripts/speech_commands.py --dataset ../shared/data/speech_commands --output_dir data/commands
    python datasets_scripts/speech_commands.py --dataset course_folder/      # Train/, Validation/ (+ unlabelled Test/)
    python datasets_scripts/speech_commands.py --dataset kaggle_folder/      # Train/*.wav + train.csv (ID, Label)
    python datasets_scripts/speech_commands.py --dataset ORG/NAME             # a Hub dataset (Parquet)
    python datasets_scripts/speech_commands.py --dataset ... --push_to_hub --hub_dataset_id ORG/NAME

The course's folder: labels from word subfolders (Train/<word>/*.wav) or from train.csv / validation.csv (a file and a
label column; words or indices 0–11); Validation/ is kept as the validation split and the test split is held out from
Train/'s speakers. Test/ is unlabelled and not saved: predict it with `python -m dlhub.predict commands Test/`.
Columns: audio (16 kHz mono), label (yes, no, up, down, left, right, on, off, stop, go, unknown, silence), speaker.
"""

from __future__ import annotations

import argparse

from dlhub.cli import add_data_arguments, add_hub_arguments, check_hub_arguments, one_line_errors, setup_logging
from dlhub.data.speech_commands import load_speech_commands


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_arguments(p, required=True, output_dir="data/commands",
                       dataset_help="a Speech Commands folder, the course's folder (Train/, Validation/) or a Kaggle "
                       "one (Train/ + train.csv), or a Hub dataset id")
    add_hub_arguments(p, "dataset")
    args = p.parse_args(argv)
    check_hub_arguments(args, "dataset")
    setup_logging()
    data = load_speech_commands(args.dataset)
    data.save_to_disk(args.output_dir)
    print(f"{data}\nsaved to {args.output_dir}")
    if args.push_to_hub:
        data.push_to_hub(args.hub_dataset_id, private=args.private)  # embeds the audio as Parquet
        print(f"pushed to {args.hub_dataset_id}")


if __name__ == "__main__":
    with one_line_errors(__file__):
        main()
