"""The memory of the Space's model cache: three models per task loaded at once, as a busy Space keeps them.

    python benchmarks/model_cache.py                 # writes benchmarks/MODEL_CACHE.md and prints it

In one fresh process: the tabs' modules are imported (the baseline), then each task's cache (dlhub/space/models.py, at most
DLHUB_SPACE_MODELS_PER_TASK = 3 models per task) is filled with three different models (the bundled checkpoints and
copies of them in other folders: each copy is a model of its own in memory, as three Hub repos would be), each loaded
and warmed up as the tab does it. Resident memory (VmRSS) is read after each task's first and third model, and the
process's peak (VmHWM) at the end. No Hub is asked.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def memory_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise SystemExit(f"model_cache.py: no {field} in /proc/self/status (Linux only)")


def sources(task: str, folder: Path) -> list[str]:
    """Three models of `task`: its bundled checkpoints, then copies of the first in other folders, each with its
    weights nudged so that it is a model of its own everywhere (ONNX graphs are named by a digest of the weights)."""
    import safetensors.torch

    from dlhub.hub import bundled_folders

    found = [str(f) for f in bundled_folders(task)]
    for i in range(3 - len(found)):
        copy = folder / f"{task}-copy{i}"
        shutil.copytree(bundled_folders(task)[0], copy)
        weights = safetensors.torch.load_file(str(copy / "model.safetensors"))
        name = next(k for k, v in weights.items() if v.is_floating_point())
        weights[name] = weights[name] * (1 + 1e-6 * (i + 1))
        safetensors.torch.save_file(weights, str(copy / "model.safetensors"))
        found.append(str(copy))
    return found[:3]


def main() -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output", default=str(ROOT / "benchmarks" / "MODEL_CACHE.md"))
    args = p.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"  # the models are folders: nothing to ask the Hub

    import torch

    from dlhub.space import commands, denoising, landmarks, models, regression, signs  # noqa: F401  (the tabs' warm-ups)

    torch.set_num_threads(os.cpu_count() or 1)
    baseline = memory_mb()
    folder = Path(tempfile.mkdtemp(prefix="dlhub-model-cache-"))
    os.environ["DLHUB_SPACE_MODEL_DIRS"] = str(folder)  # the Space offers only folders it is told of: the copies
    rows, start = [], time.perf_counter()
    try:
        for task in ("regression", "denoiser", "signs", "landmarks", "commands"):
            before = memory_mb()
            loaded = []
            for i, source in enumerate(sources(task, folder)):
                models.get_model(task, source)
                loaded.append(memory_mb())
            assert len(models.cache(task).keys()) == 3
            rows.append({"task": task, "before": before, "first": loaded[0], "third": loaded[-1]})
            print(f"{task}: {loaded[0] - before:.0f} MB for the first model, {loaded[-1] - loaded[0]:.0f} MB for two "
                  "more", file=sys.stderr)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    summary = {"baseline_mb": baseline, "rows": rows, "rss_mb": memory_mb(), "peak_mb": memory_mb("VmHWM"),
               "seconds": time.perf_counter() - start, "threads": os.cpu_count(), "per_task": models.CACHE_SIZE}
    text = markdown(summary)
    Path(args.output).write_text(text)
    print(text)
    return summary


def markdown(s: dict) -> str:
    lines = [f"Measured by `python benchmarks/model_cache.py` on {time.strftime('%Y-%m-%d')}, {s['threads']} CPU "
             f"threads: the Space's model cache filled with {s['per_task']} models per task "
             f"(DLHUB_SPACE_MODELS_PER_TASK), each loaded and warmed up as its tab does it, in "
             f"{s['seconds']:.0f} s.", "",
             f"The tabs' code imported: **{s['baseline_mb']:.0f} MB** resident.", "",
             "| task | first model (MB) | two more (MB) | resident after the task (MB) |", "|---|---|---|---|"]
    lines += [f"| {r['task']} | {r['first'] - r['before']:.0f} | {r['third'] - r['first']:.0f} | {r['third']:.0f} |"
              for r in s["rows"]]
    lines += ["", f"With {s['per_task']} models of every task loaded: **{s['rss_mb']:.0f} MB** resident, peak "
              f"**{s['peak_mb']:.0f} MB** (VmHWM). The voice-command models share one PyTorch speech encoder "
              "(dlhub.commands.get_encoder), but on the CPU each runs as its own ONNX Runtime graph (encoder, pooling "
              "and head, dlhub/onnx.py), which holds its own copy of the encoder's weights."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
