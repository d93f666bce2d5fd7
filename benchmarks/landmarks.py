"""Face landmarks: single-image latency on this CPU of the bundled model beside timm's resnet50 (the course's
backbone) in the same run, and the bundled model's accuracy on the HELEN test faces.

    python benchmarks/landmarks.py                       # prints a Markdown table
    python benchmarks/landmarks.py --json results.json

Latency: one 224 × 224 face crop (PIL) through `model.predict` (resize, normalise, network in ONNX Runtime; again
with DLHUB_ONNX=0, in PyTorch), and one tensor at the same size through resnet50 with a 136-output head (randomly
initialised: weights do not change its speed). Also the whole-photo path (`detect_and_predict`: Haar detection, two
crops and predictions) on scikit-image's astronaut.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import timm
import torch
from PIL import Image
from timing import Report, add_card_argument, latency_ms  # benchmarks/timing.py (run from its folder)

import dlhub
from dlhub.landmarks import nme

ROOT = Path(__file__).resolve().parent.parent


def test_accuracy(model, folder: Path) -> dict:
    """MSE (px² at 224) and NME of `predict` on the HELEN test crops (224 × 224 .jpg + .pts)."""
    from dlhub.data.landmarks import list_pts_folder

    items = list_pts_folder(folder)
    predicted, true = [], []
    for i in range(0, len(items), 32):
        batch = items[i:i + 32]
        predicted += model.predict([Image.open(p).convert("RGB") for p, _ in batch])
        true += [pts for _, pts in batch]
    predicted, true = np.stack(predicted), np.stack(true)
    return {"test_faces": len(true), "test_mse_px2": float(((predicted - true) ** 2).mean()),
            "test_nme": float(nme(predicted, true).mean())}


def main() -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="a model folder or Hub repo id (default: dlhub.load('landmarks'))")
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "landmarks" / "helen" / "testset"))
    p.add_argument("--repeats", type=int, default=50)
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
        os.environ["DLHUB_ONNX"] = "0"  # the same predict with the network in PyTorch: what ONNX Runtime saves
        results["pytorch_latency_ms"], results["pytorch_latency_p95_ms"] = latency_ms(lambda: ours.predict([crop]),
                                                                                      args.repeats)
        os.environ.pop("DLHUB_ONNX")
        results["resnet50_latency_ms"], results["resnet50_latency_p95_ms"] = latency_ms(lambda: reference(tensor),
                                                                                        args.repeats)
        results["photo_latency_ms"], results["photo_latency_p95_ms"] = latency_ms(
            lambda: ours.detect_and_predict(photo), max(5, args.repeats // 5))
        if Path(args.data_dir).is_dir():
            results.update(test_accuracy(ours, Path(args.data_dir)))
    results["latency_ratio"] = results["resnet50_latency_ms"] / results["ours_latency_ms"]
    report(f"Face landmarks, one face, {results['threads']} CPU threads\n")
    report("| model | parameters | latency, one face (ms, median / p95) |\n|---|---|---|")
    report(f"| bundled {ours.backbone} at {ours.input_size} px | {results['ours_params'] / 1e6:.2f} M | "
          f"{results['ours_latency_ms']:.1f} / {results['ours_latency_p95_ms']:.1f} (PIL crop in, predict; "
          "ONNX Runtime) |")
    report(f"| the same in PyTorch | | {results['pytorch_latency_ms']:.1f} / {results['pytorch_latency_p95_ms']:.1f} |")
    report(f"| timm resnet50 at 224 px | {results['resnet50_params'] / 1e6:.2f} M | "
          f"{results['resnet50_latency_ms']:.1f} / {results['resnet50_latency_p95_ms']:.1f} (tensor in) |")
    report(f"\nresnet50 / bundled latency: {results['latency_ratio']:.1f}×; whole photo (512 × 512, detection + two "
          f"passes): {results['photo_latency_ms']:.0f} ms; target: at most 15 ms per face")
    if "test_nme" in results:
        report(f"HELEN test ({results['test_faces']} faces): MSE {results['test_mse_px2']:.1f} px², "
              f"NME {results['test_nme']:.4f}")
    return report.finish(args.card, args.json, results)


if __name__ == "__main__":
    main()
