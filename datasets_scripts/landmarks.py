"""68-point face landmarks as an HF DatasetDict (image, landmarks 68 × 2 pixels), saved and optionally published.

    python datasets_scripts/landmarks.py --dataset ../shared/data/landmarks/helen --output_dir data/landmarks
    python datasets_scripts/landmarks.py --dataset ../shared/data/landmarks/pytorch_tutorial_faces
    python datasets_scripts/landmarks.py --dataset face_landmark.npz                  # the course's arrays
    python datasets_scripts/landmarks.py --dataset ... --push_to_hub --hub_dataset_id ORG/NAME

Validation = 10% of the training photos (fixed seed); a testset/ folder or the npz test arrays become the test split.
"""

from __future__ import annotations

import argparse

from dlhub.cli import add_data_arguments, add_hub_arguments, check_hub_arguments, one_line_errors, setup_logging
from dlhub.data.landmarks import load_landmarks


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_arguments(p, required=True, output_dir="data/landmarks",
                       dataset_help="an iBUG .pts folder, a tutorial folder, a .npz or a Hub id")
    add_hub_arguments(p, "dataset")
    args = p.parse_args(argv)
    check_hub_arguments(args, "dataset")
    setup_logging()
    data = load_landmarks(args.dataset)
    data.save_to_disk(args.output_dir)
    print(f"{data}\nsaved to {args.output_dir}")
    if args.push_to_hub:
        data.push_to_hub(args.hub_dataset_id, private=args.private)
        print(f"pushed to {args.hub_dataset_id}")


if __name__ == "__main__":
    with one_line_errors(__file__):
        main()
