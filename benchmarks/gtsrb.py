"""Inference speed of the bundled traffic-sign model on this CPU, beside timm's resnet18 at the same input size.

    python benchmarks/gtsrb.py                       # prints a Markdown table
    python benchmarks/gtsrb.py --json results.json   # and writes the numbers

Throughput: batches of --batch_size random images through the network (no preprocessing). Latency: one PIL image
through `model.predict` (preprocessing included) for the bundled model, and one tensor through resnet18.
The resnet18 is randomly initialised: its weights do not change its speed.

The Space answers "Not sure this is a traffic sign" when the top probability is under `dlhub.signs.UNSURE`: how often
that happens to GTSRB's signs and to images with no sign (HELEN's 224×224 face crops, --photos-dir), with 95% Wilson
intervals: on the validation signs and HELEN's training split, where it is chosen, and on both test splits.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import timm
import torch

import dlhub
from dlhub.metrics.intervals import estimate, proportion_fields
from dlhub.signs import UNSURE
from timing import Report, add_card_argument, latency_ms, throughput  # benchmarks/timing.py (run from its folder)
from dlhub.sign_drawings import draw_sign

ROOT = Path(__file__).resolve().parent.parent


THRESHOLDS = (0.3, 0.35, 0.4, 0.45, 0.5)  # the choices for UNSURE, shown on the data it is chosen on


def top_probabilities(model, dataset, batch_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(top probability, predicted class, true class) of every image of a GTSRB split, decoded once and cached."""
    from dlhub.cache import CACHE_DIR
    from dlhub.data.gtsrb import to_tensors

    images, labels = to_tensors(dataset, model.input_size, CACHE_DIR / "gtsrb")
    with torch.inference_mode():
        top, predicted = torch.cat([torch.softmax(model(images[i:i + batch_size].float() / 255), 1)
                                    for i in range(0, len(images), batch_size)]).max(1)
    return top, predicted, labels


def accuracy_and_unsure_rule(model, data_dir: str, photos_dir: str, batch_size: int) -> dict:
    """Accuracy on the whole official test set (12,630 images), and how the tab's "Not sure" rule (top probability
    under UNSURE) splits real inputs: each GTSRB split's signs (the share answered "Not sure", the accuracy on the
    others) and images with no sign (the *.jpg of photos_dir's trainset/ and testset/), each opened as the Space opens
    an upload and sent through `predict`. UNSURE is chosen on the validation signs and the trainset/ images."""
    from dlhub.data.gtsrb import load_gtsrb
    from dlhub.space.common import open_image

    found, data, tops = {"unsure_below": UNSURE}, load_gtsrb(data_dir), {}
    for split in ("validation", "test"):
        top, predicted, labels = tops[split] = top_probabilities(model, data[split], batch_size)
        if split == "test":
            found.update(test_images=len(labels), test_accuracy=float((predicted == labels).float().mean()))
        sure = top >= UNSURE
        found.update(rate_fields(f"{split}_signs_unsure", int((~sure).sum()), len(labels)))
        if sure.any():
            found.update(rate_fields(f"{split}_accuracy_when_sure", int((predicted == labels)[sure].sum()),
                                     int(sure.sum())))
    for split in ("trainset", "testset"):
        photos = sorted((Path(photos_dir) / split).glob("*.jpg"))
        if photos:
            top = tops[split] = torch.tensor([max(model.predict([open_image(str(path)).convert("RGB")])[0].values())
                                              for path in photos])
            found.update(rate_fields(f"photos_{split}_unsure", int((top < UNSURE).sum()), len(photos)))
    if "trainset" in tops:
        share = lambda top, t: int((top < t).sum()) / len(top)  # noqa: E731
        found["thresholds"] = {str(t): {"validation_signs_unsure": share(tops["validation"][0], t),
                                        "photos_trainset_unsure": share(tops["trainset"], t)} for t in THRESHOLDS}
    return found


def rate_fields(name: str, k: int, n: int) -> dict:
    """k of n as the JSON records it: the rate, its Wilson 95% interval and n (dlhub.metrics.intervals)."""
    return {name: k / n, **proportion_fields(name, k, n)}


def rate_with_interval(results: dict, key: str) -> str:
    """The recorded rate in percent with its interval, read back as dlhub.metrics.intervals.estimate reads it."""
    e = estimate(results, key)
    return f"{e.value:.1%} (95% CI {e.low:.1%}–{e.high:.1%}, n = {e.n:,})"


def main() -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="a model folder or Hub repo id (default: dlhub.load('signs'))")
    p.add_argument("--batch_size", type=int, default=256)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--repeats", type=int, default=100)
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "gtsrb"),
                   help="GTSRB with its official Test/ (for the accuracy column; skipped when absent)")
    p.add_argument("--photos-dir", default=str(ROOT.parent / "shared" / "data" / "landmarks" / "helen"),
                   help="images with no traffic sign, in trainset/ and testset/ (*.jpg; default HELEN's face crops) "
                        "for the 'Not sure' rule (skipped when absent)")
    p.add_argument("--photos-name", default="HELEN's face crops (224×224, no sign)", help="those images in the report")
    p.add_argument("--json", default=None)
    add_card_argument(p)
    args = p.parse_args()
    report = Report("gtsrb.py")

    ours = dlhub.load("signs", args.model).eval()
    size = ours.input_size
    reference = timm.create_model("resnet18", pretrained=False, num_classes=len(ours.labels)).eval()
    batch = torch.rand(args.batch_size, 3, size, size)
    image, tensor = draw_sign(14, 64), torch.rand(1, 3, size, size)
    with torch.inference_mode():
        results = {
            "threads": torch.get_num_threads(),
            "input_size": size,
            "ours_params": sum(p.numel() for p in ours.parameters()),
            "resnet18_params": sum(p.numel() for p in reference.parameters()),
            "ours_images_per_s": throughput(ours, batch, args.seconds),
            "resnet18_images_per_s": throughput(reference, batch, args.seconds),
        }
        results["ours_latency_ms"], results["ours_latency_p95_ms"] = latency_ms(lambda: ours.predict([image]),
                                                                                args.repeats)
        results["resnet18_latency_ms"], results["resnet18_latency_p95_ms"] = latency_ms(lambda: reference(tensor),
                                                                                        args.repeats)
    results["throughput_ratio"] = results["ours_images_per_s"] / results["resnet18_images_per_s"]
    results["latency_ratio"] = results["resnet18_latency_ms"] / results["ours_latency_ms"]
    if Path(args.data_dir).is_dir():
        results.update(accuracy_and_unsure_rule(ours, args.data_dir, args.photos_dir, args.batch_size))
    report(f"Traffic signs, {size}×{size} input, {results['threads']} CPU threads, batch {args.batch_size}\n")
    report("| model | parameters | throughput (images/s) | latency, one image (ms, median / p95) |")
    report("|---|---|---|---|")
    report(f"| bundled SignClassifier | {results['ours_params'] / 1e6:.2f} M | {results['ours_images_per_s']:,.0f} | "
          f"{results['ours_latency_ms']:.2f} / {results['ours_latency_p95_ms']:.2f} (PIL in, predict) |")
    report(f"| timm resnet18 | {results['resnet18_params'] / 1e6:.2f} M | {results['resnet18_images_per_s']:,.0f} | "
          f"{results['resnet18_latency_ms']:.2f} / {results['resnet18_latency_p95_ms']:.2f} (tensor in) |")
    report(f"\nthroughput ratio (ours / resnet18): {results['throughput_ratio']:.2f}×; "
          f"latency ratio (resnet18 / ours): {results['latency_ratio']:.2f}×")
    if "test_accuracy" in results:
        report(f"official test set ({results['test_images']:,} images): accuracy {results['test_accuracy']:.4f}")
    if "test_signs_unsure" in results:
        report(f"\n*Not sure this is a traffic sign* (top probability under {UNSURE:g}, the Space's note):\n")
        report("| input | answered \"Not sure\" | accuracy of the other answers |\n|---|---|---|")
        for split, name in (("validation", "GTSRB validation signs (the rule is chosen here)"),
                            ("test", "GTSRB official test signs")):
            accuracy = f"{split}_accuracy_when_sure"
            report(f"| {name} | {rate_with_interval(results, f'{split}_signs_unsure')} | "
                   f"{rate_with_interval(results, accuracy) if accuracy in results else '–'} |")
        for split, which in (("trainset", "training split (the rule is chosen here)"), ("testset", "test split")):
            if f"photos_{split}_unsure" in results:
                report(f"| {args.photos_name}, {which} | {rate_with_interval(results, f'photos_{split}_unsure')} | – |")
        if "thresholds" in results:
            report("\nThe threshold's choices, on the data it is chosen on (answered \"Not sure\": validation signs / "
                   "training-split images with no sign): " + "; ".join(
                       f"{t}: {e['validation_signs_unsure']:.1%} / {e['photos_trainset_unsure']:.1%}"
                       for t, e in results["thresholds"].items()) + ".")
    return report.finish(args.card, args.json, results)


if __name__ == "__main__":
    main()
