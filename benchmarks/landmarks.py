"""Face landmarks: single-image latency on this CPU of the bundled model beside timm's resnet50 (the course's
backbone) in the same run, and the bundled model's accuracy per source: the HELEN test faces and the PyTorch tutorial's
faces (another source, never trained on, cropped by the training rule; their points come from dlib).

    python benchmarks/landmarks.py                       # prints a Markdown table
    python benchmarks/landmarks.py --json results.json

Latency: one 224 × 224 face crop (PIL) through `model.predict` (resize, normalise, network in ONNX Runtime; again
with DLHUB_ONNX=0, in PyTorch), and one tensor at the same size through resnet50 with a 136-output head (randomly
initialised: weights do not change its speed). Also the whole-photo path (`detect_and_predict`: Haar detection, two
crops and predictions) on scikit-image's astronaut.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import timm
import torch
from PIL import Image
from timing import Report, add_card_argument, in_pytorch, latency_ms  # benchmarks/timing.py (run from its folder)

import dlhub
from dlhub.evaluation import LANDMARK_FAILURE_NME as FAILURE_NME
from dlhub.landmarks import crop_like_training, nme

ROOT = Path(__file__).resolve().parent.parent


def helen_faces(folder: Path) -> list[tuple[Image.Image, np.ndarray]]:
    """HELEN's stored test crops (224 × 224 .jpg + .pts, already cropped by the training rule)."""
    from dlhub.data.landmarks import list_pts_folder

    return [(Image.open(path).convert("RGB"), points) for path, points in list_pts_folder(folder)]


def other_faces(folder: Path) -> list[tuple[Image.Image, np.ndarray]]:
    """Every face of another annotated source (the PyTorch tutorial's photos), cropped by the training rule."""
    from dlhub.data.landmarks import load_landmarks

    data = load_landmarks(folder)
    return [crop_like_training(row["image"], np.asarray(row["landmarks"], np.float32))
            for split in data for row in data[split]]


def accuracy(model, faces: list) -> dict:
    """MSE (px² at 224) and NME of `predict` on (crop, points) pairs, as a user calls it."""
    predicted, true = [], []
    for i in range(0, len(faces), 32):
        batch = faces[i:i + 32]
        predicted += model.predict([face for face, _ in batch])
        true += [points for _, points in batch]
    predicted, true = np.stack(predicted), np.stack(true)
    errors = nme(predicted, true)
    return {"faces": len(true), "mse_px2": float(((predicted - true) ** 2).mean()), "nme": float(errors.mean()),
            f"failure_rate_nme_{FAILURE_NME:.2f}": float((errors > FAILURE_NME).mean())}


def main() -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="a model folder or Hub repo id (default: dlhub.load('landmarks'))")
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "landmarks" / "helen" / "testset"))
    p.add_argument("--other-dir", default=str(ROOT.parent / "shared" / "data" / "landmarks" / "pytorch_tutorial_faces"),
                   help="faces from another source (a folder load_landmarks reads), cropped by the training rule")
    p.add_argument("--repeats", type=int, default=200,
                   help="calls per latency median: this shared host's speed drifts by up to 1.5× from one second to "
                        "the next, so a median over a few seconds is steadier than one over 50 calls")
    p.add_argument("--json", default=None)
    add_card_argument(p)
    args = p.parse_args()
    report = Report("landmarks.py")

    from skimage import data

    ours = dlhub.load("landmarks", args.model).eval()
    reference = timm.create_model("resnet50", pretrained=False, num_classes=136).eval()
    crop = Image.fromarray(data.astronaut()).crop((150, 20, 340, 210)).resize((224, 224))
    photo = Image.fromarray(data.astronaut())
    tensor = torch.rand(1, 3, 224, 224)
    with torch.inference_mode():
        results = {"threads": torch.get_num_threads(), "input_size": ours.input_size,
                   "ours_params": sum(p.numel() for p in ours.parameters()),
                   "resnet50_params": sum(p.numel() for p in reference.parameters())}
        results["ours_latency_ms"], results["ours_latency_p95_ms"] = latency_ms(lambda: ours.predict([crop]),
                                                                                args.repeats)
        if ours.flip_test:  # what the mirrored pass costs: the same model, one pass (a graph of its own)
            ours.flip_test = False
            try:
                results["one_pass_latency_ms"], results["one_pass_latency_p95_ms"] = latency_ms(
                    lambda: ours.predict([crop]), args.repeats)
            finally:
                ours.flip_test = True
        with in_pytorch():  # the same predict with the network in PyTorch: what ONNX Runtime saves
            results["pytorch_latency_ms"], results["pytorch_latency_p95_ms"] = latency_ms(
                lambda: ours.predict([crop]), args.repeats)
        results["resnet50_latency_ms"], results["resnet50_latency_p95_ms"] = latency_ms(lambda: reference(tensor),
                                                                                        args.repeats)
        results["photo_latency_ms"], results["photo_latency_p95_ms"] = latency_ms(
            lambda: ours.detect_and_predict(photo), max(5, args.repeats // 5))
        results["sources"] = {}
        if Path(args.data_dir).is_dir():
            helen = results["sources"]["helen testset"] = accuracy(ours, helen_faces(Path(args.data_dir)))
            results.update({f"test_{k}": v for k, v in helen.items()})
        if Path(args.other_dir).is_dir():
            results["sources"][Path(args.other_dir).name] = accuracy(ours, other_faces(Path(args.other_dir)))
    results["latency_ratio"] = results["resnet50_latency_ms"] / results["ours_latency_ms"]
    report(f"Face landmarks, one face, {results['threads']} CPU threads\n")
    report("| model | parameters | latency, one face (ms, median / p95) |\n|---|---|---|")
    report(f"| bundled {ours.backbone} at {ours.input_size} px | {results['ours_params'] / 1e6:.2f} M | "
          f"{results['ours_latency_ms']:.1f} / {results['ours_latency_p95_ms']:.1f} (PIL crop in, predict; "
          "ONNX Runtime" + (", with the mirrored pass" if ours.flip_test else "") + ") |")
    if "one_pass_latency_ms" in results:
        report(f"| the same without the mirrored pass (`flip_test` off), ONNX Runtime | | "
               f"{results['one_pass_latency_ms']:.1f} / {results['one_pass_latency_p95_ms']:.1f} |")
    report(f"| the same in PyTorch | | {results['pytorch_latency_ms']:.1f} / {results['pytorch_latency_p95_ms']:.1f} |")
    report(f"| timm resnet50 at 224 px | {results['resnet50_params'] / 1e6:.2f} M | "
          f"{results['resnet50_latency_ms']:.1f} / {results['resnet50_latency_p95_ms']:.1f} (tensor in) |")
    report(f"\nresnet50 / bundled latency: {results['latency_ratio']:.1f}×; whole photo (512 × 512, detection + two "
          f"passes): {results['photo_latency_ms']:.0f} ms; target: at most 15 ms per face")
    if results["sources"]:
        report("\nAccuracy per source, through `predict` on crops made by the training rule (a square 1.5× the "
               "landmark box, nudged up; 224 × 224), MSE in px² at 224, NME by the outer eye corners; targets: NME "
               "≤ 0.046 on HELEN's test set, ≤ 0.060 on another source\n")
        report(f"| faces | images | MSE (px²) | NME | failures (NME > {FAILURE_NME}) |\n|---|---|---|---|---|")
        for name, row in results["sources"].items():
            label = {"helen testset": "HELEN test set (the training source's held-out photos)",
                     "pytorch_tutorial_faces": "PyTorch tutorial faces (never trained on; their points come from "
                                               "dlib, not from human annotators)"}.get(name, name)
            report(f"| {label} | {row['faces']} | {row['mse_px2']:.1f} | {row['nme']:.4f} | "
                   f"{row[f'failure_rate_nme_{FAILURE_NME:.2f}']:.3f} |")
    return report.finish(args.card, args.json, results)


if __name__ == "__main__":
    main()
