"""Face denoising: the bundled model's PSNR on the Olivetti test people (σ = 0.2, the training script's fixed noise)
and its latency on one 64 × 64 face, beside a classical reference (total-variation denoising, scikit-image) on the
same noisy faces, its smoothing strength chosen on the validation people.

    python benchmarks/denoiser.py                       # prints a Markdown table
    python benchmarks/denoiser.py --json results.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from timing import Report, add_card_argument, latency_ms  # benchmarks/timing.py (run from its folder)

import dlhub
from dlhub.data.faces import faces_array, load_faces
from dlhub.denoise import add_noise
from dlhub.metrics import psnr

ROOT = Path(__file__).resolve().parent.parent
EVAL_NOISE_SEED = 1234  # as train/dae.py: the same noisy test faces


def main() -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="a model folder or Hub repo id (default: dlhub.load('denoiser'))")
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "faces" / "olivetti_faces.npy"))
    p.add_argument("--sigma", type=float, default=0.2)
    p.add_argument("--repeats", type=int, default=50)
    p.add_argument("--json", default=None)
    add_card_argument(p)
    args = p.parse_args()
    report = Report("denoiser.py")
    from skimage.restoration import denoise_tv_chambolle

    model = dlhub.load("denoiser", args.model).eval()
    faces = load_faces(args.data)
    clean, noisy = {}, {}
    for split in ("validation", "test"):
        clean[split] = torch.from_numpy(faces_array(faces[split]))[:, None]
        generator = torch.Generator().manual_seed(EVAL_NOISE_SEED + int(args.sigma * 1000))
        noisy[split] = add_noise(clean[split], args.sigma, generator)
    tv_psnr = lambda split, w: psnr(np.stack([denoise_tv_chambolle(x, weight=w) for x in noisy[split].numpy()[:, 0]]),  # noqa: E731
        clean[split].numpy()[:, 0])["psnr"]
    args.tv_weight = max((0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5), key=lambda w: tv_psnr("validation", w))
    clean, noisy = clean["test"], noisy["test"]
    with torch.inference_mode():
        ours = model(noisy).clamp(0, 1).numpy()[:, 0]
        tv = np.stack([denoise_tv_chambolle(x, weight=args.tv_weight) for x in noisy.numpy()[:, 0]])
        one = noisy[:1]
        results = {"test_images": len(clean), "sigma": args.sigma, "threads": torch.get_num_threads(),
                   "psnr_noisy": psnr(noisy.numpy()[:, 0], clean.numpy()[:, 0])["psnr"],
                   "psnr_ours": psnr(ours, clean.numpy()[:, 0])["psnr"],
                   "psnr_tv": psnr(tv, clean.numpy()[:, 0])["psnr"]}
        results["ours_latency_ms"], results["ours_latency_p95_ms"] = latency_ms(lambda: model(one), args.repeats)
        results["tv_latency_ms"], results["tv_latency_p95_ms"] = latency_ms(
            lambda: denoise_tv_chambolle(one.numpy()[0, 0], weight=args.tv_weight), args.repeats)
    report(f"Face denoising, Olivetti test people ({len(clean)} faces, 64 × 64), σ = {args.sigma}\n")
    report("| method | PSNR (dB) | latency, one face (ms, median / p95) |\n|---|---|---|")
    report(f"| noisy input | {results['psnr_noisy']:.2f} | |")
    report(f"| bundled {model.arch} denoiser | {results['psnr_ours']:.2f} | {results['ours_latency_ms']:.2f} / "
          f"{results['ours_latency_p95_ms']:.2f} |")
    report(f"| total variation (scikit-image, weight {args.tv_weight}) | {results['psnr_tv']:.2f} | "
          f"{results['tv_latency_ms']:.2f} / {results['tv_latency_p95_ms']:.2f} |")
    return report.finish(args.card, args.json, results)


if __name__ == "__main__":
    main()
