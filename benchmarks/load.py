"""The whole Space under load from concurrent `gradio_client` clients on 127.0.0.1, in two phases.

    python benchmarks/load.py                        # starts app.py on a free port; both phases
    python benchmarks/load.py --url http://127.0.0.1:7860/ --requests 400 --clients 16
    python benchmarks/load.py --json results.json --markdown benchmarks/LOAD.md

Mixed phase: `--requests` requests spread over all tabs. Per tab: requests, errors (must be 0), latency p50/p95 (from
the client: queueing included); overall throughput and the server's peak memory (VmHWM of the app process, when this
script started it).
Per-endpoint phase: each endpoint that takes user input alone, `--clients` clients × `--calls` calls each, on a few
different inputs at once: failed calls, answers that differ from the serial answer for the same input, p50/p95. A mix
rarely puts two requests on one endpoint at the same time; this phase always does.
Both phases count the tracebacks in the server's log (when this script started the server) and check that it is
still up at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
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


def spoken_wav(path: Path, word: str, voice: str = "en") -> None:
    """espeak-ng saying `word`, with 0.25 s of silence before and after."""
    spoken = subprocess.run(["espeak-ng", "-v", voice, "--stdout", word], check=True, capture_output=True).stdout
    with wave.open(io.BytesIO(spoken)) as w:
        rate, samples = w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), np.int16)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.concatenate([np.zeros(rate // 4, np.int16), samples, np.zeros(rate // 4, np.int16)]))


def example_files(folder: Path) -> dict[str, str]:
    """Input files for every tab, made here (nothing from ../shared/data travels with the Space)."""
    from PIL import Image
    from skimage import data

    sys.path.insert(0, str(ROOT))
    from dlhub.sign_drawings import draw_sign

    files = {}
    for c in (14, 1, 17):
        files[f"sign{c}"] = folder / f"sign{c}.png"
        draw_sign(c, 96, seed=1).save(files[f"sign{c}"])
    files["sign"] = files["sign14"]
    astronaut = Image.fromarray(data.astronaut())
    files["photo"], files["face"] = folder / "astronaut.png", folder / "face.png"
    astronaut.save(files["photo"])
    astronaut.crop((140, 10, 340, 210)).save(files["face"])
    for word in ("stop", "left"):
        files[f"command_{word}"] = folder / f"{word}.wav"
        spoken_wav(files[f"command_{word}"], word)
    files["command"] = files["command_stop"]
    return {k: str(v) for k, v in files.items()}


def requests_by_tab(files: dict[str, str]):
    """(tab, endpoint, argument builder) for each tab's main request."""
    from gradio_client import handle_file

    mlp = mlp_inputs(1.0, 2.0, 0.0)
    return [
        ("regression", "/regression_refit", lambda: [20.0]),
        ("denoising", "/denoise", lambda: [handle_file(files["face"]), 0.2, 0, False]),
        ("traffic signs", "/classify_sign", lambda: [handle_file(files["sign"])]),
        ("face landmarks", "/face_landmarks", lambda: [handle_file(files["photo"]), True, True, False]),
        ("voice commands", "/recognise_command", lambda: [handle_file(files["command"])]),
        ("exercises (MLP)", "/mlp_exercise", lambda: mlp),
        ("exercises (z)", "/z_composed", lambda: [1000]),
        ("models", "/list_models", lambda: ["signs"]),
    ]


def mlp_inputs(x1: float, x2: float, y: float, lr: float = 0.1) -> list[str]:
    sys.path.insert(0, str(ROOT))
    from dlhub.exercises import COURSE_WEIGHTS

    return [str(v) for v in (x1, x2, y, lr, *COURSE_WEIGHTS.values())]


def endpoint_inputs(files: dict[str, str]) -> dict[str, list]:
    """Every endpoint that takes user input, with a few different inputs each: a request that picked up another
    request's state (a hook, a shared metric object, a cache) answers wrongly only when their inputs differ."""
    from gradio_client import handle_file

    image = lambda key: handle_file(files[key])  # noqa: E731
    return {
        "/regression_refit": [[20.0], [60.0]],
        "/choose_sigma": [[]],
        "/denoise": [[image("face"), sigma, 0, False] for sigma in (0.1, 0.2, 0.3)],
        "/classify_sign": [[image(f"sign{c}")] for c in (14, 1, 17)],
        "/face_landmarks": [[image("photo"), True, True, False], [image("photo"), True, False, True],
                            [image("face"), True, True, True]],
        "/recognise_command": [[image("command_stop")], [image("command_left")]],
        "/mlp_exercise": [mlp_inputs(1.0, 2.0, 0.0), mlp_inputs(1.0, 1.0, 1.0), mlp_inputs(-0.5, 3.0, 1.0, 0.5)],
        "/z_composed": [[3], [1000]],
        "/list_models": [["signs", "main metric"], ["denoiser", "main metric"], ["landmarks", "likes"]],
    }


def fingerprint(value):
    """An answer in a form that can be compared: files (images, CSV) by their content, floats to 9 digits."""
    if isinstance(value, (list, tuple)):
        return [fingerprint(v) for v in value]
    if isinstance(value, dict):
        out = {k: fingerprint(v) for k, v in value.items() if k not in ("path", "url", "orig_name")}
        if isinstance(value.get("path"), str):
            out["file"] = fingerprint(value["path"])
        return out
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, str) and len(value) < 4096 and os.path.isfile(value):
        try:
            from PIL import Image

            with Image.open(value) as image:  # pixels, not bytes: an encoder may write metadata differently
                return "image:" + hashlib.sha256(np.asarray(image).tobytes()).hexdigest()
        except Exception:  # not an image: compare the bytes
            return "file:" + hashlib.sha256(Path(value).read_bytes()).hexdigest()
    return value


def count_tracebacks(log_path: Path | None) -> int:
    return log_path.read_text(errors="replace").count("Traceback (most recent call last)") if log_path else 0


def endpoint_phase(url: str, endpoint: str, variants: list, clients: int, calls: int) -> dict:
    """`clients` clients call `endpoint` alone, `calls` times each, cycling through `variants`; every answer is
    compared with the serial answer for the same input."""
    from gradio_client import Client

    pool_clients = [Client(url, verbose=False) for _ in range(clients)]
    expected = [fingerprint(pool_clients[0].predict(*v, api_name=endpoint)) for v in variants]
    times, failed, wrong = [], [], []

    def send(job):
        client_index, call_index = job
        k = (client_index + call_index) % len(variants)
        t = time.perf_counter()
        try:
            answer = pool_clients[client_index].predict(*variants[k], api_name=endpoint)
        except Exception as err:  # every failure is counted and shown, none stops the run
            failed.append(f"{type(err).__name__}: {err}"[:200])
            return
        times.append(time.perf_counter() - t)
        if fingerprint(answer) != expected[k]:
            wrong.append(f"input {k}: {str(fingerprint(answer))[:150]}")

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(send, [(c, i) for i in range(calls) for c in range(clients)]))
    wall = time.perf_counter() - start
    ms = sorted(t * 1000 for t in times)
    return {"calls": clients * calls, "failed": failed, "wrong": wrong, "wall_s": wall,
            "calls_per_s": clients * calls / wall, "p50_ms": statistics.median(ms) if ms else float("nan"),
            "p95_ms": ms[math.ceil(0.95 * len(ms)) - 1] if ms else float("nan")}


def server_up(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=10)
        return True
    except OSError:
        return False


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
    p.add_argument("--requests", type=int, default=200, help="mixed phase: requests over all tabs")
    p.add_argument("--clients", type=int, default=8, help="concurrent clients in both phases")
    p.add_argument("--calls", type=int, default=32, help="per-endpoint phase: calls per client")
    p.add_argument("--skip_endpoints", action="store_true", help="the mixed phase only")
    p.add_argument("--json", default=None)
    p.add_argument("--markdown", default=None, help="also write the two tables here (the README shows them)")
    args = p.parse_args()
    from gradio_client import Client

    folder = Path(tempfile.mkdtemp(prefix="dlhub-load-"))
    files = example_files(folder)
    proc, startup_s, log_path = None, None, None
    url = args.url
    if url is None:
        log_path = folder / "app.log"
        proc, url, startup_s = start_space(log_path)
    endpoints = {}
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
        mixed_tracebacks = count_tracebacks(log_path)
        if not args.skip_endpoints:
            for endpoint, variants in endpoint_inputs(files).items():
                before = count_tracebacks(log_path)
                endpoints[endpoint] = endpoint_phase(url, endpoint, variants, args.clients, args.calls)
                endpoints[endpoint]["tracebacks"] = count_tracebacks(log_path) - before
                e = endpoints[endpoint]
                print(f"{endpoint}: {e['calls']} calls, {len(e['failed'])} failed, {len(e['wrong'])} wrong, "
                      f"{e['tracebacks']} tracebacks, {e['calls_per_s']:.1f} calls/s", file=sys.stderr)
        still_up = server_up(url)
    finally:
        memory = peak_memory_mb(proc.pid) if proc else None
        if proc:
            proc.terminate()
            proc.wait(timeout=30)
    summary = {"requests": args.requests, "clients": args.clients, "wall_s": wall,
               "requests_per_s": args.requests / wall, "errors": sum(len(v) for v in errors.values()),
               "mixed_tracebacks": mixed_tracebacks, "startup_s": startup_s, "peak_memory_mb": memory,
               "threads": os.cpu_count(), "server_up_after": still_up, "tabs": {}, "endpoints": endpoints,
               "calls_per_client": args.calls}
    for tab, times in results.items():
        ms = sorted(t * 1000 for t in times)
        summary["tabs"][tab] = {"first_ms": first_ms[tab], "requests": len(ms) + len(errors[tab]),
                                "errors": errors[tab], "p50_ms": statistics.median(ms) if ms else float("nan"),
                                "p95_ms": ms[math.ceil(0.95 * len(ms)) - 1] if ms else float("nan")}
    text = markdown(summary)
    print(text)
    for tab, messages in errors.items():
        for m in messages[:3]:
            print(f"error in {tab}: {m}")
    for endpoint, e in endpoints.items():
        for m in (e["failed"] + e["wrong"])[:3]:
            print(f"{endpoint}: {m}")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
    if args.markdown:
        Path(args.markdown).write_text(text)
    return summary


def markdown(s: dict) -> str:
    """Both phases as the README shows them."""
    ready = (f" Ready {s['startup_s']:.1f} s after `python app.py`; peak memory {s['peak_memory_mb']:.0f} MB."
             if s["startup_s"] is not None else "")
    lines = [f"Measured by `python benchmarks/load.py` on {time.strftime('%Y-%m-%d')}, {s['threads']} CPU threads.{ready}"
             f" Server still up afterwards: **{'yes' if s['server_up_after'] else 'NO'}**.", "",
             f"**Mixed phase**: {s['requests']} requests from {s['clients']} concurrent clients across all tabs in "
             f"{s['wall_s']:.1f} s ({s['requests_per_s']:.1f} requests/s), **{s['errors']} errors**, "
             f"**{s['mixed_tracebacks']} tracebacks** in the server log.", "",
             "| tab | first request alone (ms) | requests | errors | p50 (ms) | p95 (ms) |", "|---|---|---|---|---|---|"]
    lines += [f"| {tab} | {t['first_ms']:.0f} | {t['requests']} | {len(t['errors'])} | {t['p50_ms']:.0f} | "
              f"{t['p95_ms']:.0f} |" for tab, t in s["tabs"].items()]
    if s["endpoints"]:
        lines += ["", f"**Per-endpoint phase**: each endpoint alone, {s['clients']} clients × {s['calls_per_client']} "
                  "calls on a few different inputs at once; every answer compared with the serial answer for the same "
                  "input.", "",
                  "| endpoint | calls | failed | differ from serial | server tracebacks | calls/s | p50 (ms) | p95 (ms) |",
                  "|---|---|---|---|---|---|---|---|"]
        lines += [f"| `{name}` | {e['calls']} | {len(e['failed'])} | {len(e['wrong'])} | {e['tracebacks']} | "
                  f"{e['calls_per_s']:.1f} | {e['p50_ms']:.0f} | {e['p95_ms']:.0f} |" for name, e in s["endpoints"].items()]
    # what went wrong, as the client saw it: a failure's message, and whether the server logged anything for it
    problems = [f"- {tab} (mixed phase): {m}" for tab, t in s["tabs"].items() for m in t["errors"][:3]]
    problems += [f"- `{name}`: {m}" for name, e in s["endpoints"].items() for m in (e["failed"] + e["wrong"])[:3]]
    if problems:
        lines += ["", "Failed or differing calls (the first three of each row; the tracebacks column says whether "
                  "the server logged one):", "", *problems]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
