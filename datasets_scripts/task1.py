"""The course's Task 1 files as HF datasets: saved with save_to_disk, and published with --push_to_hub.

    python datasets_scripts/task1.py --dataset ../shared/data/task1 --output_dir data/task1
    python datasets_scripts/task1.py --dataset ../shared/data/task1 --push_to_hub --hub_dataset_id ORG/NAME --private

Writes <output_dir>/regression (train/validation: x, y) and <output_dir>/classification (train/test: x1, x2, label).
On the Hub they are two configurations of one dataset repo. The course's data is for teaching use: publish it
privately unless you hold the rights.
"""

from __future__ import annotations

import argparse

from dlhub.cli import add_data_arguments, add_hub_arguments, check_hub_arguments, one_line_errors
from dlhub.data.task1 import load_task1


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_arguments(p, required=True, output_dir="data/task1", dataset_help="folder with Task1_1.npz and Task1_2.npz")
    add_hub_arguments(p, "dataset")
    args = p.parse_args(argv)
    check_hub_arguments(args, "dataset")

    regression, classification = load_task1(args.dataset)
    for name, dataset in (("regression", regression), ("classification", classification)):
        dataset.save_to_disk(f"{args.output_dir}/{name}")
        print(f"{name}: {dataset} → {args.output_dir}/{name}")
        if args.push_to_hub:
            dataset.push_to_hub(args.hub_dataset_id, config_name=name, private=args.private)
            print(f"pushed {name} to {args.hub_dataset_id}")


if __name__ == "__main__":
    with one_line_errors(__file__):
        main()
