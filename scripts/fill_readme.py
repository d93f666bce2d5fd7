"""Fill the README's measured blocks from the files the benchmark scripts wrote: no number is copied by hand.

    python scripts/fill_readme.py            # rewrites README.md in place
    python scripts/fill_readme.py --check    # exit 1 if README.md is not what the files say

A block is the text between `<!-- BEGIN path -->` and `<!-- END path -->`; it is replaced by the file at `path`
(relative to the repository root), for example benchmarks/RESULTS.md (benchmarks/run_all.py), benchmarks/LOAD.md
(benchmarks/load.py) and benchmarks/CONCURRENCY.md (benchmarks/concurrency.py). The block `models` is the table of
bundled models, made here from the metrics.json that each training run wrote beside its weights, each headline
figure with its 95% interval and sample size n (dlhub.metrics.intervals: `<metric>_ci95` and `<metric>_n` as the runs
and `python -m dlhub.evaluate … --write-intervals` recorded them, or Wilson from a proportion's recorded count). For
the voice commands, the speaker-grouped cross-validation (`cross_validation` in its metrics.json) is the headline when
the run recorded one, the test split being small.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from dlhub.cards import BLOCK, fill_blocks  # noqa: E402  (the same blocks as the model cards')
from dlhub.metrics.intervals import Estimate, command_estimates, estimate  # noqa: E402
from dlhub.tasks import TASKS  # noqa: E402


def ci(found: Estimate | None, digits: int, unit: str = "", what: str = "") -> str:
    """The interval column: "0.971–0.985 (n = 1,325)", or "–" when the figure has none recorded."""
    if found is None:
        return "–"
    return f"{found.low:.{digits}f}–{found.high:.{digits}f}{unit} (n = {found.n:,}{what})"


def models_table(root: Path = ROOT) -> str:
    """One row per measured figure of each bundled model, from checkpoints/<task>/metrics.json."""
    def metrics(folder: str) -> dict:
        path = root / "checkpoints" / folder / "metrics.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    rows = []
    r = metrics("regression")
    if r:
        rows += [f"| regression (1.1) | `{TASKS['regression'].hub_repo}` | course `Task1_1.npz` | validation MSE, OLS → "
                 f"reweighted (σ = {r['irls_sigma']:.2f}, iteration {r['irls_iteration']}) | {r['ols_val_mse']:.5f} → "
                 f"**{r['irls_val_mse']:.5f}** | {ci(estimate(r, 'irls_val_mse', mean=True), 5, what=' points')} |",
                 f"| regression (1.2) | same repo | course `Task1_2.npz` | test accuracy, constant lr → lr decay | "
                 f"{r['logistic_test_accuracy']:.3f} → **{r['logistic_decay_test_accuracy']:.3f}** | "
                 f"{ci(estimate(r, 'logistic_decay_test_accuracy'), 3, what=' points')} |"]
    d = metrics("denoiser")
    if d:
        rows.append(f"| denoiser (bundled, `conv`) | `{TASKS['denoiser'].hub_repo}` | Olivetti test split (people never "
                    f"seen), σ = 0.2 | PSNR noisy → denoised | {d['test_psnr_noisy_0.2']:.2f} → "
                    f"**{d['test_psnr_denoised_0.2']:.2f} dB** ({d['test_psnr_gain_0.2']:+.1f}) | "
                    f"{psnr_ci(d, 'test_')} |")
        for name, source in d.get("sources", {}).items():  # per source: test split, or all of a held-out source
            if name.startswith("olivetti"):
                continue  # the row above
            seen = "trained on its training split" if source["role"] == "training" else "never trained on"
            rows.append(f"| denoiser (bundled, `conv`) | same repo | {source['images']['test']} faces of "
                        f"`{name}` ({seen}), σ = 0.2 | PSNR noisy → denoised | {source['psnr_noisy_0.2']:.2f} → "
                        f"**{source['psnr_denoised_0.2']:.2f} dB** ({source['psnr_gain_0.2']:+.1f}) | "
                        f"{psnr_ci(source)} |")
        if "extra_test_psnr_denoised" in d and "sources" not in d:
            rows.append(f"| denoiser (bundled, `conv`) | same repo | {d['extra_test_images']} HELEN faces (another "
                        f"source), σ = 0.2 | PSNR noisy → denoised | {d['extra_test_psnr_noisy']:.2f} → "
                        f"**{d['extra_test_psnr_denoised']:.2f} dB** "
                        f"({d['extra_test_psnr_denoised'] - d['extra_test_psnr_noisy']:+.1f}) | – |")
        measured = root / "benchmarks" / "results" / "denoiser.json"  # benchmarks/denoiser.py --held_out_runs
        bench = json.loads(measured.read_text()) if measured.is_file() else {}
        for run, row in bench.get("held_out_runs", {}).items():  # leave one source out: the source never seen
            unseen = [name for name in row if name != "trained_on" and name not in (row["trained_on"] or [name])]
            for name in unseen:
                faces = bench["sources"][name]["images"]
                rows.append(f"| denoiser (leave one source out, not bundled) | `outputs/{run}` (trained on "
                            f"{', '.join(row['trained_on'])}) | {faces} faces of `{name}` (never trained on), "
                            f"σ = {bench['sigma']} | PSNR gain | **{row[name]:+.2f} dB** | – |")
        for name, e in bench.get("unseen_vs_bm3d", {}).items():  # the yardstick: BM3D given the true σ
            where = "bundled" if e["model"] == "bundled" else f"`outputs/{e['model']}`"
            low, high = e["margin_ci95"]
            repo = "same repo" if e["model"] == "bundled" else "not bundled"
            rows.append(f"| denoiser ({where}) against BM3D | {repo} | {e['images']} faces of `{name}` (never trained "
                        f"on), σ = {bench['sigma']} | PSNR margin over BM3D (true σ given); gains: model "
                        f"{e['gain']:+.2f}, BM3D {e['bm3d_gain']:+.2f} dB | **{e['margin']:+.2f} dB** | {low:+.2f} to "
                        f"{high:+.2f} (n = {e['images']} faces) |")
    m = metrics("denoiser-mlp")
    if m and "test_psnr_denoised_0.2" in m:
        rows.append(f"| denoiser (course baseline, Table 3 `mlp`) | bundled in `checkpoints/denoiser-mlp` | Olivetti "
                    f"test split, σ = 0.2 | PSNR noisy → denoised | {m['test_psnr_noisy_0.2']:.2f} → "
                    f"**{m['test_psnr_denoised_0.2']:.2f} dB** ({m['test_psnr_gain_0.2']:+.1f}) | "
                    f"{psnr_ci(m, 'test_')} |")
    g = metrics("signs")
    if g:
        rows.append(f"| signs (bundled) | `{TASKS['signs'].hub_repo}` | GTSRB official test set, all "
                    f"{g['test_images']:,} images | accuracy | **{g['test_accuracy']:.4f}** ({g['test_errors']} errors) | "
                    f"{ci(estimate(g, 'test_accuracy', 'test_images'), 4)} |")
    lm = metrics("landmarks")
    if lm:
        rows.append(f"| landmarks (bundled, `{lm['backbone']}`) | `{TASKS['landmarks'].hub_repo}` | HELEN test set, "
                    f"{lm['test_faces']} faces | MSE (px² at 224) / NME (outer eye corners) | "
                    f"**{lm['test_mse_px2']:.2f}** / **{lm['test_nme']:.4f}** | {landmarks_ci(lm)} |")
        measured = root / "benchmarks" / "results" / "landmarks.json"  # benchmarks/landmarks.py: other sources
        for name, source in (json.loads(measured.read_text()).get("sources", {}) if measured.is_file() else {}).items():
            if name.startswith("helen"):
                continue  # the row above
            caveat = "; their points come from dlib" if name == "pytorch_tutorial_faces" else ""
            rows.append(f"| landmarks (bundled, `{lm['backbone']}`) | same repo | {source['faces']} faces of `{name}` "
                        f"(never trained on{caveat}), cropped by the training rule | MSE (px² at 224) / NME | "
                        f"**{source['mse_px2']:.2f}** / **{source['nme']:.4f}** | {landmarks_ci(source, '')} |")
    c = metrics("commands")
    if c:
        rows += commands_rows(c)
    return "\n".join(["| task | Hub repo | data | metric | value | 95% interval (n) |", "|---|---|---|---|---|---|",
                      *rows])


def psnr_ci(metrics: dict, prefix: str = "", sigma: float = 0.2) -> str:
    """The interval column of a PSNR row: denoised, and the gain (per image, paired)."""
    denoised = estimate(metrics, f"{prefix}psnr_denoised_{sigma}", mean=True)
    gain = estimate(metrics, f"{prefix}psnr_gain_{sigma}", mean=True)
    if denoised is None or gain is None:
        return "–"
    return (f"{denoised.low:.2f}–{denoised.high:.2f} dB; gain {gain.low:+.2f} to {gain.high:+.2f} "
            f"(n = {denoised.n:,} faces)")


def landmarks_ci(metrics: dict, prefix: str = "test_") -> str:
    mse, nme = estimate(metrics, f"{prefix}mse_px2", mean=True), estimate(metrics, f"{prefix}nme", mean=True)
    if mse is None or nme is None:
        return "–"
    return f"{mse.low:.2f}–{mse.high:.2f} / {nme.low:.4f}–{nme.high:.4f} (n = {nme.n:,} faces)"


def commands_rows(c: dict) -> list[str]:
    """The voice-commands rows: the speaker-grouped cross-validation first (the headline) when the run recorded one,
    then the test split, with Wilson intervals."""
    rows = []
    repo = f"`{TASKS['commands'].hub_repo}`"
    expected, where = command_estimates(c)
    cv = c.get("cross_validation") if isinstance(c.get("cross_validation"), dict) else None
    if cv and "command_accuracy" in expected:
        data = (f"Speech Commands, the training and validation speakers ({cv.get('speakers', '?')}), speaker-grouped "
                f"{cv.get('folds', '?')}-fold cross-validation")
        for key, what in (("command_accuracy", "ten-word accuracy"),
                          ("unknown_rejected", "other words rejected (top label not a command)"),
                          ("silence_rejected", "noise rejected"),
                          ("recording_command_accuracy", "commands in recordings (2–5 s, 44.1/48 kHz, room noise, "
                                                         "quiet or clipped, WAV/WebM/MP3) answered with their word"),
                          ("recording_unknown_right", "other words in recordings answered \"Not a command word\""),
                          ("recording_silence_right", "noise recordings answered \"No command heard\"")):
            if key in expected:
                e, items = expected[key], " recordings" if key.startswith("recording") else " clips"
                rows.append(f"| commands (bundled) | {repo if not rows else 'same repo'} | {data} | {what} | "
                            f"**{e.value:.3f}** | {ci(e, 3, what=items)} |")
    bold = "" if rows else "**"
    first = repo if not rows else "same repo"
    if "test_command_accuracy" in c:  # the 12-class model: ten words, other words, noise
        speakers = f"{c['test_speakers']} test speakers never heard"
        rows += [f"| commands (bundled) | {first} | Speech Commands, {c['test_command_clips']} "
                 f"command clips of {speakers} | ten-word accuracy | {bold}{c['test_command_accuracy']:.3f}{bold} | "
                 f"{ci(estimate(c, 'test_command_accuracy', 'test_command_clips'), 3)} |",
                 f"| commands (bundled) | same repo | {c['test_unknown_clips']} clips of other words, same speakers "
                 f"| other words rejected (top label not a command) | {bold}{c['test_unknown_rejected']:.3f}{bold} | "
                 f"{ci(estimate(c, 'test_unknown_rejected', 'test_unknown_clips'), 3)} |",
                 f"| commands (bundled) | same repo | {c['test_silence_clips']} background-noise clips held out | noise "
                 f"rejected | {bold}{c['test_silence_rejected']:.3f}{bold} | "
                 f"{ci(estimate(c, 'test_silence_rejected', 'test_silence_clips'), 3)} |",
                 f"| commands (bundled) | same repo | all {c['test_clips']} test clips, 12 classes (v2-12) | accuracy | "
                 f"{bold}{c['test_accuracy']:.3f}{bold} ({c['test_errors']} errors) | "
                 f"{ci(estimate(c, 'test_accuracy', 'test_clips'), 3)} |",
                 f"| commands (bundled) | same repo | {c['val_clips']} validation clips (speakers never in training; "
                 f"used to choose the epoch) | accuracy, 12 classes | {c['val_accuracy']:.3f} | "
                 f"{ci(estimate(c, 'val_accuracy', 'val_clips'), 3)} |"]
    else:
        rows += [f"| commands (bundled) | {first} | Speech Commands, {c['test_clips']} clips of "
                 f"{c['test_speakers']} test speakers never heard | accuracy | {bold}{c['test_accuracy']:.3f}{bold} "
                 f"({c['test_errors']} errors) | {ci(estimate(c, 'test_accuracy', 'test_clips'), 3)} |",
                 f"| commands (bundled) | same repo | {c['val_clips']} validation clips (speakers never in training; "
                 f"used to choose the epoch) | accuracy | {c['val_accuracy']:.3f} | "
                 f"{ci(estimate(c, 'val_accuracy', 'val_clips'), 3)} |"]
    return rows


def filled(text: str, root: Path = ROOT) -> str:
    blocks = {}
    for name in {m["name"] for m in BLOCK.finditer(text)}:
        if name == "models":
            blocks[name] = models_table(root)
            continue
        source = root / name
        if not source.is_file():
            raise SystemExit(f"fill_readme.py: {name} does not exist: run the script that writes it first")
        blocks[name] = source.read_text()
    return fill_blocks(text, blocks)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true")
    p.add_argument("--readme", default=str(ROOT / "README.md"))
    args = p.parse_args()
    readme = Path(args.readme)
    text = readme.read_text()
    new = filled(text)
    if args.check:
        sys.exit(0 if new == text else "fill_readme.py: README.md differs from the benchmark files: run "
                                        "python scripts/fill_readme.py")
    readme.write_text(new)


if __name__ == "__main__":
    main()
