"""Grayscale faces as an HF DatasetDict (train/validation/test 60/20/20): saved to disk, or published.

    python datasets_scripts/faces.py --dataset ../shared/data/faces/olivetti_faces.npy --output_dir data/faces
    python datasets_scripts/faces.py --dataset my_face_photos/ --size 64 --output_dir data/my-faces
    python datasets_scripts/faces.py --dataset face_data.npy --push_to_hub --hub_dataset_id ORG/NAME --private

--data: a .npy of shape (N, H, W) (the course's face_data.npy layout) or a folder of face images of any size and mode
(converted to grayscale, centre-cropped square, resized to --size). The split uses a fixed seed. It is by person with
--people (a .npy of one person id per face) and for the Olivetti layout (400 × 64 × 64: 40 people × 10 photos), or set
--person_block yourself (0 = by image).

    python datasets_scripts/faces.py --dataset face_data.npy --people face_people.npy --output_dir data/faces
"""

from __future__ import annotations

import argparse

from dlhub.cli import add_data_arguments, add_hub_arguments, check_hub_arguments, one_line_errors
from dlhub.data.faces import load_faces
from dlhub.errors import DataError


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_arguments(p, required=True, output_dir="data/faces",
                       dataset_help=".npy of faces (N, H, W) or a folder of face images")
    p.add_argument("--size", type=int, default=64, help="side of the square images made from a folder")
    p.add_argument("--person_block", type=int, default=None,
                   help="images per person, in consecutive blocks (default: 10 for Olivetti, else 0)")
    p.add_argument("--people", default=None,
                   help=".npy of one person id per face (for a folder: in sorted file-name order): split by person")
    add_hub_arguments(p, "dataset")
    args = p.parse_args(argv)
    check_hub_arguments(args, "dataset")
    if args.size < 8:
        raise DataError(f"--size must be at least 8, got {args.size}")

    faces = load_faces(args.dataset, size=args.size, person_block=args.person_block, people=args.people)
    faces.save_to_disk(args.output_dir)
    print(f"{faces}\nsaved to {args.output_dir}")
    if args.push_to_hub:
        faces.push_to_hub(args.hub_dataset_id, private=args.private)
        print(f"pushed to {args.hub_dataset_id}")


if __name__ == "__main__":
    with one_line_errors(__file__):
        main()
