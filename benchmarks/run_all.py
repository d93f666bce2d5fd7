"""Every task's benchmark in one run, and one Markdown table of them (the README shows it).

    python benchmarks/run_all.py                          # writes benchmarks/RESULTS.md and prints it
    python benchmarks/run_all.py --only commands denoiser # re-measures those; the others from benchmarks/results/
    python benchmarks/run_all.py --only                   # re-measures none: the table from benchmarks/results/
    python benchmarks/run_all.py --cards                  # measures the bundled models and writes each report into
                                                          # its model card (checkpoints/<task>/README.md) too

The whole Space under load is benchmarks/load.py (it writes benchmarks/LOAD.md); scripts/fill_readme.py copies these
files into the README.

Each row: the task, its metric measured here on the real data in ../shared/data, the single-item latency of the
bundled model, its throughput where measured, the side-by-side reference and the ratio. The numbers come from each
script's --json output, kept in benchmarks/results/<script>.json (so a model retrained alone is re-measured alone);
run a script alone for its full table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ["regression", "denoiser", "gtsrb", "landmarks", "commands", "commands_recordings"]
BUNDLED = {"regression": "regression", "denoiser": "denoiser", "gtsrb": "signs", "landmarks": "landmarks",
           "commands": "commands", "commands_recordings": "commands"}  # script → its task's bundled model folder
# what a card's report needs beyond the defaults: the denoiser card has a BM3D column and a leave-one-source-out
# table (the held-out runs are the README's train/dae.py commands; a missing one is skipped with a note)
CARD_ARGUMENTS = {"denoiser": ["--bm3d", "pytorch_tutorial_faces", "olivetti_faces.npy", "helen"]}
HELD_OUT_RUNS = {"denoiser": ["outputs/denoiser-no-helen", "outputs/denoiser-no-olivetti"]}


RESULTS = HERE / "results"


def run(name: str, folder: Path, cards: bool = False) -> dict:
    out = folder / f"{name}.json"
    start = time.perf_counter()
    bundled = str(HERE.parent / "checkpoints" / BUNDLED[name])
    extra = ["--model", bundled, "--card", bundled, *CARD_ARGUMENTS.get(name, [])] if cards else []
    if cards and name in HELD_OUT_RUNS:
        runs = [r for r in HELD_OUT_RUNS[name] if (HERE.parent / r / "metrics.json").exists()]
        for missing in sorted(set(HELD_OUT_RUNS[name]) - set(runs)):
            print(f"run_all.py: {missing} is not there: the {name} card's leave-one-source-out table leaves it out "
                  "(train it with the README's command)", file=sys.stderr)
        extra += ["--held_out_runs", *runs] if runs else []
    done = subprocess.run([sys.executable, str(HERE / f"{name}.py"), "--json", str(out), *extra], cwd=HERE.parent,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"run_all.py: benchmarks/{name}.py failed:\n{done.stderr[-2000:]}")
    print(f"benchmarks/{name}.py: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return json.loads(out.read_text())


nan = float("nan")


def olivetti(d: dict) -> dict:
    """The denoiser benchmark's entry for the Olivetti test people (the course's faces)."""
    return next(e for name, e in d["sources"].items() if name.startswith("olivetti"))


def olivetti_gain_over_tv(d: dict) -> float:
    e, s = olivetti(d), d["sigma"]
    return e[f"psnr_ours_{s}"] - e[f"psnr_tv_{s}"]


def denoiser_cell(d: dict, method: str = "ours") -> str:
    """PSNR noisy → denoised at the benchmark's σ on each source's test faces."""
    s = d["sigma"]
    return "; ".join(f"{name} {e[f'psnr_noisy_{s}']:.2f} → " + (f"**{e[f'psnr_{method}_{s}']:.2f} dB**" if method ==
                                                                 "ours" else f"{e[f'psnr_{method}_{s}']:.2f} dB")
                     for name, e in d["sources"].items()) + (f" (σ = {s})" if method == "ours" else "")


def rows(r: dict) -> list[str]:
    g, d, reg, lm, c, rec = (r[k] for k in ("gtsrb", "denoiser", "regression", "landmarks", "commands",
                                           "commands_recordings"))
    return [
        f"| regression (Task 1) | validation MSE **{reg['val_mse_irls']:.5f}**; logistic test accuracy "
        f"{reg['test_accuracy_logistic_decay']:.3f} | {reg['latency_ms']:.3f} ms (1,000 points) | – | ordinary least "
        f"squares: MSE {reg['val_mse_ols']:.5f} | {reg['mse_ratio_ols_over_irls']:.1f}× lower MSE |",
        f"| face denoising (Task 2) | {denoiser_cell(d)} | {d['ours_latency_ms']:.1f} ms (64 × 64) | – | total "
        f"variation (weight chosen on validation), same faces: {denoiser_cell(d, 'tv')}; {d['tv_latency_ms']:.1f} ms "
        f"| {olivetti_gain_over_tv(d):+.2f} dB (Olivetti) |",
        f"| traffic signs (Task 3) | GTSRB test accuracy **{g.get('test_accuracy', float('nan')):.4f}** "
        f"({g.get('test_images', 0):,} images) | {g['ours_latency_ms']:.2f} ms | {g['ours_images_per_s']:,.0f} "
        f"images/s | timm resnet18: {g['resnet18_latency_ms']:.2f} ms, {g['resnet18_images_per_s']:,.0f} images/s | "
        f"{g['latency_ratio']:.1f}× faster per image |",
        f"| face landmarks (Task 4) | HELEN test MSE **{lm.get('test_mse_px2', float('nan')):.1f} px²**, NME "
        f"**{lm.get('test_nme', float('nan')):.4f}**" + "".join(
            f"; {name} NME {e['nme']:.4f}" for name, e in lm.get("sources", {}).items() if not name.startswith("helen"))
        + f" | {lm['ours_latency_ms']:.1f} ms (one crop); "
        f"{lm['photo_latency_ms']:.0f} ms (whole photo) | – | timm resnet50 at 224: {lm['resnet50_latency_ms']:.1f} ms "
        f"| {lm['latency_ratio']:.1f}× faster |",
        f"| voice commands (Task 5) | validation speakers: ten words **{c.get('val_command_accuracy_clean', nan):.4f}**"
        f", other words rejected {c.get('val_unknown_rejected_clean', nan):.4f}, noise rejected "
        f"{c.get('val_silence_rejected_clean', nan):.4f} | {c['latency_ms']:.1f} ms (1-s clip) | "
        f"{c['clips_per_s']:.0f} clips/s | Whisper's 30 s padding: {c['whisper_30s_latency_ms']:.0f} ms | "
        f"{c['speedup_vs_30s']:.1f}× faster |",
        f"| voice commands in recordings (Task 5) | {rec.get('speakers', '?')} {rec.get('split', 'test')} speakers and "
        "that split's noise (cross-validated over the training and validation speakers: the models table): "
        + "; ".join(
            f"{what} answered right **{e['rate']:.3f}** (95% CI {e['ci95'][0]:.3f}–{e['ci95'][1]:.3f}, n = {e['n']})"
            for what, e in ((w, rec[k]) for w, k in (("commands", "command"), ("other words", "other_word"),
                                                     ("noise", "noise")))) +
        f" | {rec['latency_ms']:.0f} ms (3-s recording; the tab with its plot {rec['tab_latency_ms']:.0f} ms) | – | – | – |",
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output", default=str(HERE / "RESULTS.md"))
    p.add_argument("--cards", action="store_true",
                   help="measure the bundled models and write each script's report into its model card")
    p.add_argument("--only", nargs="*", default=None, metavar="SCRIPT",
                   help="re-measure only these (default: all; none named: only rewrite the table from the saved "
                        "results, e.g. after running a script alone with its own options)")
    args = p.parse_args()
    measured = SCRIPTS if args.only is None else args.only
    if set(measured) - set(SCRIPTS):
        p.error(f"--only takes {', '.join(SCRIPTS)}")
    RESULTS.mkdir(exist_ok=True)
    missing = [n for n in SCRIPTS if n not in measured and not (RESULTS / f"{n}.json").is_file()]
    if missing:
        p.error(f"no saved results of {', '.join(missing)} in {RESULTS}: run them too")
    folder = Path(tempfile.mkdtemp(prefix="dlhub-bench-"))
    for name in measured:
        (RESULTS / f"{name}.json").write_text(json.dumps(run(name, folder, args.cards), indent=2) + "\n")
    results = {name: json.loads((RESULTS / f"{name}.json").read_text()) for name in SCRIPTS}
    lines = ["| task | metric (real data, ../shared/data) | latency, bundled | throughput | reference | ratio |",
             "|---|---|---|---|---|---|", *rows(results)]
    threads = results["gtsrb"]["threads"]
    text = (f"Measured by `python benchmarks/run_all.py` (last run {time.strftime('%Y-%m-%d')}), {threads} CPU "
            "threads.\n\n"
            + "\n".join(lines) + "\n")
    Path(args.output).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
