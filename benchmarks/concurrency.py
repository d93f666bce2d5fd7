"""How many requests of each endpoint should run at once on this machine: the measurement behind `concurrency_limit`.

    python benchmarks/concurrency.py                      # writes benchmarks/CONCURRENCY.md and prints it
    python benchmarks/concurrency.py --calls 24 --limits 1 2 4

Each endpoint's handler is called in this process by a pool of 1, 2, 4 threads (what Gradio does with
`concurrency_limit` = 1, 2, 4), with figures rendered to PNG and images encoded as Gradio would. Per limit: throughput
and the 95th-percentile time of one request. More threads than cores only help while a handler waits (file reads,
Python code holding no core); torch already uses every core for one request. The chosen limit is the smallest one
within 10% of the best throughput: a higher limit adds no throughput, only memory and a longer wait for each
request once it has started.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import re
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def materialise(value):
    """What Gradio does with an answer before sending it: figures to PNG, image files read."""
    from matplotlib.figure import Figure

    if isinstance(value, (list, tuple)):
        return [materialise(v) for v in value]
    if isinstance(value, Figure):
        buffer = io.BytesIO()
        value.savefig(buffer, format="png")
        return buffer.getvalue()
    if isinstance(value, str) and len(value) < 4096 and os.path.isfile(value):
        return Path(value).read_bytes()
    return value


def handlers(files: dict[str, str]) -> dict:
    """Endpoint → a call of its handler (the same inputs as benchmarks/load.py's per-endpoint phase)."""
    from load import mlp_inputs

    from dlhub.space import commands, denoising, exercises, landmarks, models, regression, signs

    data = regression.example_data()
    return {
        "/regression_refit": lambda: regression.refit(data, 20.0),
        "/choose_sigma": lambda: regression.choose_sigma(data),
        "/denoise": lambda: denoising.run(files["face"], 0.2, 0, False),
        "/classify_sign": lambda: signs.classify(files["sign14"]),
        "/face_landmarks": lambda: landmarks.run(files["photo"], True, True, False),
        "/recognise_command": lambda: commands.recognise(files["command_stop"]),
        "/mlp_exercise": lambda: exercises.explain(*mlp_inputs(1.0, 2.0, 0.0)),
        "/z_composed": lambda: exercises.z_view(1000),
        "/list_models": lambda: models.list_models("signs"),
    }


def measure(call, limit: int, calls: int) -> dict:
    times = []

    def one(_):
        t = time.perf_counter()
        materialise(call())
        times.append(time.perf_counter() - t)

    start = time.perf_counter()
    with ThreadPoolExecutor(limit) as pool:
        list(pool.map(one, range(calls)))
    wall = time.perf_counter() - start
    times.sort()
    return {"per_s": calls / wall, "p95_ms": 1000 * times[math.ceil(0.95 * len(times)) - 1]}


def merge_rows(old: list[str], new: list[str], calls: int) -> list[str]:
    """The earlier table with the rows just measured replaced or added, and a line saying when they were measured
    (earlier such lines stay, unless every row they name is measured again now)."""
    rows = {line.split("|")[1].strip(): line for line in new if line.startswith("| `")}
    measured = set(rows)
    merged = [rows.pop(line.split("|")[1].strip(), line) if line.startswith("| `") else line for line in old]
    merged += list(rows.values())
    note = f"Rows of {', '.join(sorted(measured))} measured again by `python benchmarks/concurrency.py --endpoints … " \
           f"--calls {calls}` on {time.strftime('%Y-%m-%d')}."
    first, *notes = merged[0].split(" Rows of ")
    kept = [n for n in notes if not set(re.findall(r"`/\w+`", n.split(" measured again")[0])) <= measured]
    return [" Rows of ".join([first, *kept]) + " " + note, *merged[1:]]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=16, help="calls per endpoint and limit")
    p.add_argument("--limits", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--output", default=str(ROOT / "benchmarks" / "CONCURRENCY.md"))
    p.add_argument("--endpoints", nargs="+", default=None,
                   help="measure only these (e.g. /list_models): their rows in --output are replaced or added")
    args = p.parse_args()
    from load import example_files

    files = example_files(Path(tempfile.mkdtemp(prefix="dlhub-concurrency-")))
    head = " | ".join(f"limit {n}: requests/s, p95 ms" for n in args.limits)
    lines = [f"Measured by `python benchmarks/concurrency.py` on {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPU "
             f"threads, {args.calls} calls per endpoint and limit.", "",
             f"| endpoint | {head} | chosen limit |", "|---|" + "---|" * (len(args.limits) + 1)]
    calls = handlers(files)
    unknown = sorted(set(args.endpoints or []) - set(calls))
    if unknown:
        p.error(f"unknown endpoints {unknown}: choose from {sorted(calls)}")
    for endpoint, call in calls.items():
        if args.endpoints and endpoint not in args.endpoints:
            continue
        materialise(call())  # warm-up: models loaded, caches filled
        results = {n: measure(call, n, args.calls) for n in args.limits}
        best = max(r["per_s"] for r in results.values())
        chosen = min(n for n, r in results.items() if r["per_s"] >= 0.9 * best)
        cells = " | ".join(f"{r['per_s']:.1f}, {r['p95_ms']:.0f}" for r in results.values())
        lines.append(f"| `{endpoint}` | {cells} | **{chosen}** |")
        print(lines[-1], file=sys.stderr)
    if args.endpoints and Path(args.output).is_file():
        lines = merge_rows(Path(args.output).read_text().splitlines(), lines, args.calls)
    text = "\n".join(lines) + "\n"
    Path(args.output).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
