"""GTSRB (Kaggle or official INI layout, or a Hub dataset id) as an HF DatasetDict, saved and optionally published.

    python datasets_scripts/gtsrb.py --dataset ../shared/data/gtsrb                       # writes data/gtsrb
    python datasets_scripts/gtsrb.py --dataset GTSRB/ --push_to_hub --hub_dataset_id ORG/NAME
    python datasets_scripts/gtsrb.py --dataset tanganke/gtsrb                                 # a public Hub copy

Splits: train and validation (10% of each class's tracks, whole tracks: `<class>_<track>_<frame>` file names) and
the official test set. Columns: image, label (ClassLabel with the 43 names from signnames.csv), track. A Hub copy
without track ids (tanganke/gtsrb) has no track column, and its validation split is 10% of each class's images.
"""

from __future__ import annotations

import argparse

from dlhub.cli import add_data_arguments, add_hub_arguments, check_hub_arguments, one_line_errors
from dlhub.data.gtsrb import load_gtsrb


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_arguments(p, required=True, output_dir="data/gtsrb",
                       dataset_help="a GTSRB folder (Kaggle or INI layout) or a Hub dataset id")
    add_hub_arguments(p, "dataset")
    args = p.parse_args(argv)
    check_hub_arguments(args, "dataset")
    data = load_gtsrb(args.dataset)
    data.save_to_disk(args.output_dir)
    print(f"{data}\nsaved to {args.output_dir}")
    if args.push_to_hub:
        data.push_to_hub(args.hub_dataset_id, private=args.private)  # embeds the image bytes as Parquet
        print(f"pushed to {args.hub_dataset_id}")


if __name__ == "__main__":
    with one_line_errors(__file__):
        main()
