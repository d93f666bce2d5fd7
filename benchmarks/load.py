"""The whole Space under load: requests across all tabs from concurrent `gradio_client` clients on 127.0.0.1.

    python benchmarks/load.py                        # starts app.py on a free port, 200 requests, 8 clients
    python benchmarks/load.py --url http://127.0.0.1:7860/ --requests 400 --clients 16
    python benchmarks/load.py --json results.json

Reports per tab: requests, errors (must be 0), latency p50/p95 (from the client: queueing included); overall
throughput and the server's peak memory (VmHWM of the app process, when this script started it).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def example_files(folder: Path) -> dict[str, str]:
    """One input file per tab, made here (nothing from ../shared/data travels with the Space)."""
    from PIL import Image
    from skimage import data

    sys.path.insert(0, str(ROOT))
    from dlhub.sign_drawings import draw_sign

    files = {"sign": folder / "sign.png", "face": folder / "face.png", "photo": folder / "astronaut.png",
             "command": folder / "stop.wav"}
    draw_sign(14, 96, seed=1).save(files["sign"])
    astronaut = Image.fromarray(data.astronaut())
    astronaut.save(files["photo"])
    astronaut.crop((140, 10, 340, 210)).save(files["face"])
    spoken = subprocess.run(["espeak-ng", "-v", "en", "--stdout", "stop"], check=True, capture_output=True).stdout
    with wave.open(io.BytesIO(spoken)) as w:
        rate, samples = w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), np.int16)
    with wave.open(str(files["command"]), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.concatenate([np.zeros(rate // 4, np.int16), samples, np.zeros(rate // 4, np.int16)]))
    return {k: str(v) for k, v in files.items()}


def requests_by_tab(files: dict[str, str]):
    """(tab, endpoint, argument builder) for each tab's main request."""
    from gradio_client import handle_file

    from dlhub.exercises import COURSE_WEIGHTS
    from spaces.exercises import DEFAULTS

    mlp = [str(v) for v in DEFAULTS.values()] + [str(v) for v in COURSE_WEIGHTS.values()]
    return [
        ("regression", "/regression_refit", lambda: [20.0]),
        ("denoising", "/denoise", lambda: [handle_file(files["face"]), 0.2, 0, False]),
        ("traffic signs", "/classify_sign", lambda: [handle_file(files["sign"])]),
        ("face landmarks", "/face_landmarks", lambda: [handle_file(files["photo"]), True, True, False]),
        ("voice commands", "/recognise_command", lambda: [handle_file(files["command"])]),
        ("exercises (MLP)", "/mlp_exercise", lambda: mlp),
        ("exercises (z)", "/z_composed", lambda: [1000]),
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_space(log_path: Path) -> tuple[subprocess.Popen, str, float]:
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1"}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=open(log_path, "w"),
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return proc, url, time.perf_counter() - start
        except OSError:
            if proc.poll() is not None or time.perf_counter() - start > 120:
                proc.kill()
                raise SystemExit(f"load.py: the Space did not start; see {log_path}") from None
            time.sleep(0.2)


def peak_memory_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def main() -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default=None, help="a running Space (default: start app.py here)")
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    from gradio_client import Client

    folder = Path(tempfile.mkdtemp(prefix="dlhub-load-"))
    files = example_files(folder)
    proc, startup_s = None, None
    url = args.url
    if url is None:
        proc, url, startup_s = start_space(folder / "app.log")
    try:
        plan = requests_by_tab(files)
        clients = [Client(url, verbose=False) for _ in range(args.clients)]
        first_ms = {}
        for tab, endpoint, make in plan:  # each tab's first request, alone: is it much slower than later ones?
            t = time.perf_counter()
            clients[0].predict(*make(), api_name=endpoint)
            first_ms[tab] = (time.perf_counter() - t) * 1000
        jobs = [(i % args.clients, plan[i % len(plan)]) for i in range(args.requests)]
        results: dict[str, list] = {tab: [] for tab, _, _ in plan}
        errors: dict[str, list] = {tab: [] for tab, _, _ in plan}

        def send(job):
            client_index, (tab, endpoint, make) = job
            t = time.perf_counter()
            try:
                clients[client_index].predict(*make(), api_name=endpoint)
                results[tab].append(time.perf_counter() - t)
            except Exception as err:  # every failure is counted and shown, none stops the run
                errors[tab].append(f"{type(err).__name__}: {err}"[:200])

        start = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            list(pool.map(send, jobs))
        wall = time.perf_counter() - start
    finally:
        memory = peak_memory_mb(proc.pid) if proc else None
        if proc:
            proc.terminate()
            proc.wait(timeout=30)
    summary = {"requests": args.requests, "clients": args.clients, "wall_s": wall,
               "requests_per_s": args.requests / wall, "errors": sum(len(v) for v in errors.values()),
               "startup_s": startup_s, "peak_memory_mb": memory, "threads": os.cpu_count(), "tabs": {}}
    print(f"{args.requests} requests from {args.clients} concurrent clients in {wall:.1f} s "
          f"({summary['requests_per_s']:.1f} requests/s), errors: {summary['errors']}")
    if startup_s is not None:
        print(f"Space ready {startup_s:.1f} s after `python app.py`; peak memory {memory:.0f} MB")
    print("\n| tab | first request alone (ms) | requests | errors | p50 (ms) | p95 (ms) |\n|---|---|---|---|---|---|")
    for tab, times in results.items():
        ms = sorted(t * 1000 for t in times)
        p50 = statistics.median(ms) if ms else float("nan")
        p95 = ms[int(0.95 * (len(ms) - 1))] if ms else float("nan")
        summary["tabs"][tab] = {"first_ms": first_ms[tab], "requests": len(ms) + len(errors[tab]),
                                "errors": errors[tab], "p50_ms": p50, "p95_ms": p95}
        print(f"| {tab} | {first_ms[tab]:.0f} | {len(ms) + len(errors[tab])} | {len(errors[tab])} | {p50:.0f} | "
              f"{p95:.0f} |")
    for tab, messages in errors.items():
        for m in messages[:3]:
            print(f"error in {tab}: {m}")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
