"""GTSRB (Kaggle or official INI layout, or a Hub dataset id) as an HF DatasetDict, saved and optionally published.

    python datasets_scripts/gtsrb.py --data-dir ../shared/data/gtsrb                       # writes data/gtsrb
    python datasets_scripts/gtsrb.py --data-dir GTSRB/ --push_to_hub --hub_dataset_id ORG/NAME

Splits: train and validation (10% of each class's tracks, whole tracks: `<class>_<track>_<frame>` file names) and
the official test set. Columns: image, label (ClassLabel with the 43 names from signnames.csv), track.
"""

from __future__ import annotations

import argparse

from dlhub.cli import one_line_errors
from dlhub.data.gtsrb import load_gtsrb
from dlhub.errors import DataError


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", required=True, help="a GTSRB folder (Kaggle or INI layout) or a Hub dataset id")
    p.add_argument("--output-dir", default="data/gtsrb")
    p.add_argument("--push_to_hub", action="store_true")
    p.add_argument("--hub_dataset_id", default=None)
    p.add_argument("--private", action="store_true")
    args = p.parse_args(argv)
    if args.push_to_hub and not args.hub_dataset_id:
        raise DataError("--push_to_hub needs --hub_dataset_id ORG/NAME")
    data = load_gtsrb(args.data_dir)
    data.save_to_disk(args.output_dir)
    print(f"{data}\nsaved to {args.output_dir}")
    if args.push_to_hub:
        data.push_to_hub(args.hub_dataset_id, private=args.private)  # embeds the image bytes as Parquet
        print(f"pushed to {args.hub_dataset_id}")


if __name__ == "__main__":
    with one_line_errors(__file__):
        main()
