"""Face denoising: the bundled model's PSNR on the test faces of every source (the Olivetti test people, the HELEN test
set, the PyTorch tutorial's faces, which no training split holds), against σ from 0.05 to 0.5, beside classical
references on the same noisy faces: total-variation denoising (scikit-image; its weight chosen per σ on the validation
faces) and, with --bm3d, BM3D (the PyPI `bm3d` package, given the true σ; seconds per face on a CPU core, so it runs
on the sources named); its latency on one 64 × 64 face; and, with
--held_out_runs, a leave-one-source-out table: models trained by train/dae.py without one source, measured on it.
With both, every source BM3D ran on is denoised by a model that never trained on it (the bundled model for the
tutorial faces, a leave-one-source-out run for the others) and compared with BM3D face by face: the margin in dB with
a bootstrap 95% interval.

    python benchmarks/denoiser.py                       # prints Markdown tables
    python benchmarks/denoiser.py --bm3d pytorch_tutorial_faces olivetti_faces.npy helen \\
        --held_out_runs outputs/denoiser-no-helen outputs/denoiser-no-olivetti \\
        --card checkpoints/denoiser                     # also writes them and the σ plot into the model card

Every source's faces are read as train/dae.py reads them (dlhub.data.faces.load_faces: landmark folders cropped by the
landmark rule, grayscale 64 × 64) and measured on dlhub.data.faces.held_out_faces: its own test split where it
defines one (Olivetti's test people, HELEN's testset/), else all its faces (the tutorial faces); the noise is the training script's fixed draw, so the numbers match its metrics.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from timing import Report, add_card_argument, in_pytorch, latency_ms  # benchmarks/timing.py (run from its folder)

import dlhub
from dlhub.data.faces import faces_array, held_out_faces, load_faces
from dlhub.denoise import add_noise
from dlhub.metrics import psnr
from dlhub.metrics.intervals import bootstrap_interval

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
SOURCES = [DATA / "faces" / "olivetti_faces.npy", DATA / "landmarks" / "helen",
           DATA / "landmarks" / "pytorch_tutorial_faces"]
EVAL_NOISE_SEED = 1234  # as train/dae.py: the same noisy test faces
SIGMAS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5)
TV_WEIGHTS = (0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.7)
PLOT_FILE = "psnr_vs_sigma.png"


def noisy(clean: np.ndarray, sigma: float) -> np.ndarray:
    """train/dae.py's noisy_pairs draw: one generator seeded by σ over the whole stack of a source's faces."""
    generator = torch.Generator().manual_seed(EVAL_NOISE_SEED + int(sigma * 1000))
    return add_noise(torch.from_numpy(clean)[:, None], sigma, generator).numpy()[:, 0]


@torch.inference_mode()
def run_model(model, images: np.ndarray) -> np.ndarray:
    return np.concatenate([model(torch.from_numpy(images[i:i + 64])[:, None]).clamp(0, 1).numpy()[:, 0]
                           for i in range(0, len(images), 64)])


def mean_psnr(images: np.ndarray, clean: np.ndarray) -> float:
    return psnr(images, clean)["psnr"]


def face_psnr(images: np.ndarray, clean: np.ndarray) -> np.ndarray:
    """PSNR (dB) of each face."""
    return np.asarray(psnr(images, clean)["psnr_per_image"])


def main() -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="a model folder or Hub repo id (default: dlhub.load('denoiser'))")
    p.add_argument("--sources", nargs="+", default=[str(s) for s in SOURCES],
                   help="face sources, as train/dae.py takes them (a .npy, a folder, a landmark-annotated folder)")
    p.add_argument("--sigma", type=float, default=0.2, choices=SIGMAS, help="σ of the main table and of BM3D")
    p.add_argument("--bm3d", nargs="*", default=[], metavar="SOURCE",
                   help="also run BM3D at --sigma on these sources (their folder or file names; slow: seconds per face)")
    p.add_argument("--held_out_runs", nargs="*", default=[], metavar="FOLDER",
                   help="models trained by train/dae.py without one source (their metrics.json says which sources "
                        "they trained on): the leave-one-source-out table")
    p.add_argument("--repeats", type=int, default=200,
                   help="calls per latency median: this shared host's speed drifts by up to 1.5× from one second to "
                        "the next, so a median over a few seconds is steadier than one over 50 calls")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (default: torch's own); 1 gives steadier latencies on a CPU shared with others")
    p.add_argument("--json", default=None)
    add_card_argument(p)
    args = p.parse_args()
    report = Report("denoiser.py")
    if args.threads:
        torch.set_num_threads(args.threads)
    from skimage.restoration import denoise_tv_chambolle

    model = dlhub.load("denoiser", args.model).eval()
    test, validation_of = {}, {}
    for source in args.sources:
        faces = load_faces(source)
        test[Path(source).name] = held_out_faces(source)
        if "test" in faces and len(test[Path(source).name]) == faces["test"].num_rows:
            # a source with its own test split: its validation faces choose the TV weight and measure flip averaging
            validation_of[Path(source).name] = faces_array(faces["validation"])
    validation = np.concatenate(list(validation_of.values()))
    unknown = set(args.bm3d) - set(test)
    if unknown:
        p.error(f"--bm3d names {sorted(unknown)}, which are not among the sources {list(test)}")

    def tv(images: np.ndarray, weight: float) -> np.ndarray:
        return np.stack([denoise_tv_chambolle(x, weight=weight) for x in images])

    results = {"sigma": args.sigma, "threads": torch.get_num_threads(), "sources": {}, "tv_weight": {}}
    bm3d_faces = {}  # source → BM3D's PSNR per face at --sigma
    model_faces = {}  # (model, source) → its PSNR per face at --sigma: the tables and the BM3D margins share them
    for sigma in SIGMAS:
        val_noisy = noisy(validation, sigma)
        results["tv_weight"][sigma] = max(TV_WEIGHTS, key=lambda w: mean_psnr(tv(val_noisy, w), validation))
    for name, clean in test.items():
        entry = results["sources"][name] = {"images": len(clean)}
        for sigma in SIGMAS:
            x = noisy(clean, sigma)
            entry[f"psnr_noisy_{sigma}"] = mean_psnr(x, clean)
            faces = face_psnr(run_model(model, x), clean)
            entry[f"psnr_ours_{sigma}"] = float(faces.mean())
            if sigma == args.sigma:
                model_faces["bundled", name] = faces
            entry[f"psnr_tv_{sigma}"] = mean_psnr(tv(x, results["tv_weight"][sigma]), clean)
        if name in args.bm3d:
            import bm3d

            x = noisy(clean, args.sigma).astype(np.float64)
            bm3d_faces[name] = face_psnr(np.stack(
                [bm3d.bm3d(face, sigma_psd=args.sigma, profile="np") for face in x]).astype(np.float32), clean)
            entry[f"psnr_bm3d_{args.sigma}"] = float(bm3d_faces[name].mean())

    one = torch.from_numpy(noisy(test[next(iter(test))][:1], args.sigma))[:, None]
    face = Image.fromarray(np.round(one.numpy()[0, 0] * 255).astype(np.uint8))
    # what a user calls: denoise() on a PIL face (the network in ONNX Runtime), then the same in PyTorch
    results["ours_latency_ms"], results["ours_latency_p95_ms"] = latency_ms(lambda: model.denoise([face]),
                                                                            args.repeats)
    with in_pytorch():
        results["pytorch_latency_ms"], results["pytorch_latency_p95_ms"] = latency_ms(
            lambda: model.denoise([face]), args.repeats)
    weight = results["tv_weight"][args.sigma]
    results["tv_latency_ms"], results["tv_latency_p95_ms"] = latency_ms(
        lambda: denoise_tv_chambolle(one.numpy()[0, 0], weight=weight), args.repeats)
    if args.bm3d:
        import bm3d

        results["bm3d_latency_ms"], results["bm3d_latency_p95_ms"] = latency_ms(
            lambda: bm3d.bm3d(one.numpy()[0, 0].astype(np.float64), sigma_psd=args.sigma, profile="np"), 3)

    held_out, runs = {}, {"bundled": model}
    bundled_trained = trained_sources(getattr(model, "folder", None))  # the loaded model's own run, where it says
    for folder in args.held_out_runs:
        run_name = Path(folder).name
        run = runs[run_name] = dlhub.load("denoiser", folder).eval()
        row = held_out[run_name] = {"trained_on": trained_sources(folder)}
        for name, clean in test.items():
            model_faces[run_name, name] = face_psnr(run_model(run, noisy(clean, args.sigma)), clean)
            row[name] = float(model_faces[run_name, name].mean()) - results["sources"][name][f"psnr_noisy_{args.sigma}"]
    results["held_out_runs"] = held_out
    # flip averaging (Denoiser.flip_average), the models' default: what it adds on each source's validation faces
    results["flip_average_gain"] = {}
    for run_name, run in runs.items():
        if getattr(run, "flip_average", False):
            gains = results["flip_average_gain"][run_name] = {}
            for name, clean in validation_of.items():
                x = noisy(clean, args.sigma)
                gains[name] = mean_psnr(run_model(run, x), clean) - mean_psnr(run_model(run.net, x), clean)
    # each source BM3D ran on, denoised by a model that never trained on it (the bundled model or a leave-one-source-
    # out run), against BM3D on the same noisy faces: the margin per face, with a bootstrap interval over the faces
    unseen_by = never_trained_on(bm3d_faces, {"bundled": bundled_trained,
                                              **{name: row["trained_on"] for name, row in held_out.items()}})
    results["unseen_vs_bm3d"] = {}
    results["not_compared_with_bm3d"] = sorted(set(bm3d_faces) - set(unseen_by))
    for name, run_name in unseen_by.items():
        margin = model_faces[run_name, name] - bm3d_faces[name]
        noisy_db = results["sources"][name][f"psnr_noisy_{args.sigma}"]
        results["unseen_vs_bm3d"][name] = {
            "model": run_name, "images": len(test[name]), "gain": float(model_faces[run_name, name].mean() - noisy_db),
            "bm3d_gain": float(bm3d_faces[name].mean() - noisy_db), "margin": float(margin.mean()),
            "margin_ci95": list(bootstrap_interval(margin))}

    # Tables
    s = args.sigma
    references = ["tv"] + (["bm3d"] if args.bm3d else [])
    label = {"tv": f"total variation (weight {weight}, chosen on validation)",
             "bm3d": "BM3D (`bm3d`, profile 'np', true σ given)"}
    n_params = sum(t.numel() for t in model.parameters())
    report(f"Face denoising at σ = {s}: PSNR (dB) of the noisy faces and of each denoiser, per source; gain = "
           f"denoised − noisy. Bundled model: {model.arch}, {n_params:,} parameters.")
    report()
    header = "| faces | images | noisy | bundled model (gain) | " + " | ".join(
        f"{label[r]} (gain) | model gain ÷ {r.upper()} gain" for r in references) + " |"
    report(header)
    report("|" + "---|" * (4 + 2 * len(references)))
    for name, e in results["sources"].items():
        gain = e[f"psnr_ours_{s}"] - e[f"psnr_noisy_{s}"]
        cells = [name, str(e["images"]), f"{e[f'psnr_noisy_{s}']:.2f}", f"{e[f'psnr_ours_{s}']:.2f} ({gain:+.2f})"]
        for r in references:
            if f"psnr_{r}_{s}" not in e:  # BM3D runs only on the sources --bm3d names
                cells += ["not run", ""]
                continue
            ref_gain = e[f"psnr_{r}_{s}"] - e[f"psnr_noisy_{s}"]
            e[f"gain_ratio_{r}_{s}"] = gain / ref_gain
            cells += [f"{e[f'psnr_{r}_{s}']:.2f} ({ref_gain:+.2f})", f"{gain / ref_gain:.2f}"]
        report("| " + " | ".join(cells) + " |")
    if bundled_trained:
        report()
        report(f"The bundled model trained on the training splits of {', '.join(bundled_trained)}: their rows are its "
               "test faces (people or photos it never saw, from a source it knows); the last table compares each source "
               f"with BM3D through a model that never trained on the source at all. BM3D runs at σ = {s} only.")
    report()
    report("PSNR gain (dB) of the bundled model against σ (total variation in brackets), one model for every σ:")
    report()
    report("| faces | " + " | ".join(f"σ = {sigma}" for sigma in SIGMAS) + " |")
    report("|---|" + "---|" * len(SIGMAS))
    for name, e in results["sources"].items():
        report(f"| {name} | " + " | ".join(
            f"{e[f'psnr_ours_{sigma}'] - e[f'psnr_noisy_{sigma}']:+.2f} ({e[f'psnr_tv_{sigma}'] - e[f'psnr_noisy_{sigma}']:+.2f})"
            for sigma in SIGMAS) + " |")
    report()
    if held_out:
        report(f"Leave one source out, PSNR gain (dB) at σ = {s}; **bold**: the source the model never saw; †: "
               "measured on faces the model trained on (a source without a test split of its own joins training "
               "whole, and its faces here are those same faces)")
        report()
        names = list(test)
        report("| model | trained on | " + " | ".join(names) + " |")
        report("|---|---|" + "---|" * len(names))
        rows = {"bundled": {"trained_on": bundled_trained, **{
            n: e[f"psnr_ours_{s}"] - e[f"psnr_noisy_{s}"] for n, e in results["sources"].items()}}, **held_out}
        folders = {"bundled": getattr(model, "folder", None), **{Path(f).name: f for f in args.held_out_runs}}
        for run_name, row in rows.items():
            trained, seen = row["trained_on"], trained_whole(folders[run_name])
            cells = [f"**{row[n]:+.2f}**" if trained is not None and n not in trained else
                     f"{row[n]:+.2f} †" if n in seen else f"{row[n]:+.2f}" for n in names]
            report(f"| {run_name} | {', '.join(trained) if trained else 'unknown'} | " + " | ".join(cells) + " |")
        report()
    if results["not_compared_with_bm3d"]:
        report(f"Not compared with BM3D through a model that never trained on them (no such model given: train one "
               f"without them and pass it to --held_out_runs): {', '.join(results['not_compared_with_bm3d'])}.")
        report()
    if results["unseen_vs_bm3d"]:
        report(f"Each face source against BM3D (true σ given), at σ = {s}, denoised by a model that never trained on "
               "it; margin = model PSNR − BM3D PSNR on the same noisy faces, its 95% interval a bootstrap over the "
               "faces (paired)")
        report()
        report("| faces | images | model (never saw them) | model gain | BM3D gain | margin over BM3D (95% CI) |")
        report("|---|---|---|---|---|---|")
        for name, e in results["unseen_vs_bm3d"].items():
            low, high = e["margin_ci95"]
            report(f"| {name} | {e['images']} | {e['model']} | {e['gain']:+.2f} | {e['bm3d_gain']:+.2f} | "
                   f"**{e['margin']:+.2f} dB** ({low:+.2f} to {high:+.2f}) |")
        report()
    if results["flip_average_gain"]:
        names = list(validation_of)
        report(f"Flip averaging (each of these models answers with the mean of its outputs for the face and for the "
               f"face mirrored): PSNR gained over the network's output alone at σ = {s}, on each source's validation "
               f"faces ({', '.join(f'{n}: {len(validation_of[n])}' for n in names)}), dB")
        report()
        report("| model | " + " | ".join(names) + " |")
        report("|---|" + "---|" * len(names))
        for run_name, gains in results["flip_average_gain"].items():
            report(f"| {run_name} | " + " | ".join(f"{gains[n]:+.3f}" for n in names) + " |")
        report()
    report(f"Latency, one 64 × 64 face ({results['threads']} threads; median / p95 ms): bundled model "
           f"{results['ours_latency_ms']:.2f} / {results['ours_latency_p95_ms']:.2f} (`denoise()` on a PIL face, the "
           f"network in ONNX Runtime; in PyTorch {results['pytorch_latency_ms']:.2f} / "
           f"{results['pytorch_latency_p95_ms']:.2f}; target ≤ 10); total variation "
           f"{results['tv_latency_ms']:.2f} / {results['tv_latency_p95_ms']:.2f}"
           + (f"; BM3D {results['bm3d_latency_ms']:.0f} / {results['bm3d_latency_p95_ms']:.0f}" if args.bm3d else "")
           + ".")
    if args.card:
        plot_vs_sigma(results).savefig(Path(args.card) / PLOT_FILE, dpi=100, bbox_inches="tight")
        report()
        report(f"![PSNR against σ]({PLOT_FILE})")
    return report.finish(args.card, args.json, results)


def never_trained_on(sources, trained_on: dict[str, list[str] | None]) -> dict[str, str]:
    """source → the first model (in the order given) whose training sources are known and leave it out; sources that
    every model trained on, or whose models' training sources are unknown, are left out."""
    return {source: next(name for name, trained in trained_on.items() if trained is not None and source not in trained)
            for source in sources
            if any(trained is not None and source not in trained for trained in trained_on.values())}


def run_sources(folder) -> dict:
    """The `sources` entry of a train/dae.py run's metrics.json: each source's role and image counts per split ({}:
    not a run folder that says so)."""
    metrics = Path(folder or "") / "metrics.json"
    return json.loads(metrics.read_text()).get("sources", {}) if folder and metrics.is_file() else {}


def trained_sources(folder) -> list[str] | None:
    """The sources a train/dae.py run trained on (None: not a run folder that says so)."""
    return [name for name, entry in run_sources(folder).items() if entry["role"] == "training"] or None


def trained_whole(folder) -> set[str]:
    """The sources a train/dae.py run trained on with no test split kept apart (all their faces in training and
    validation)."""
    return {name for name, entry in run_sources(folder).items()
            if entry["role"] == "training" and "test" not in entry.get("images", {"test": None})}


def plot_vs_sigma(results: dict):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 4))
    ax = fig.add_subplot()
    for k, (name, e) in enumerate(results["sources"].items()):
        color = f"C{k}"
        ax.plot(SIGMAS, [e[f"psnr_ours_{s}"] - e[f"psnr_noisy_{s}"] for s in SIGMAS], "o-", color=color,
                label=f"{name}: bundled model")
        ax.plot(SIGMAS, [e[f"psnr_tv_{s}"] - e[f"psnr_noisy_{s}"] for s in SIGMAS], "s--", color=color, alpha=0.6,
                label=f"{name}: total variation")
    ax.set(xlabel="noise σ", ylabel="PSNR gain (dB)", title="PSNR gain against σ (one model for every σ)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return fig


if __name__ == "__main__":
    main()
