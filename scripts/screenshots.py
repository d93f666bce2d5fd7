"""Take the README's screenshots of the Space: start it (`python app.py`, the bundled models: the Hub is switched off),
open each tab in Debian's Chromium driven by Playwright, fill it with its first bundled example, wait for the answer,
and save the page as docs/screenshots/<tab>.jpg. docs/screenshots/manifest.json records, per tab, the sha256 of the
model.safetensors and metrics.json of the bundled model it shows, so that `python scripts/render_cards.py --check`
fails once a bundled model changes after its screenshot (the header of each tab shows the model's metrics).

    python scripts/screenshots.py                      # every tab
    python scripts/screenshots.py signs landmarks      # only these (the others' screenshots and entries are kept)

Tabs: regression, denoising, signs, landmarks, commands, exercises. Needs Debian's chromium (packages-dev.txt) and the
playwright package (requirements-dev.txt); no browser is downloaded. The commands tab's examples are spoken by
espeak-ng (packages.txt).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from dlhub.cards import MANIFEST_NAME, SCREENSHOTS_DIR, model_digests  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
VIEWPORT = {"width": 1300, "height": 1000}
WIDTH = 866  # the README shows them two to a row
QUALITY = 85


# tab → (its name in the Space, the bundled checkpoints it shows, the output that says the example was answered:
# (selector, text it must contain or "" for any text))
TABS = {
    "regression": ("Regression", ["regression"], ("#fit-summary", "OLS validation MSE")),
    "denoising": ("Face denoising", ["denoiser"], ("#denoise-psnr", "dB")),
    "signs": ("Traffic signs", ["signs"], ("#signs-label", "")),
    "landmarks": ("Face landmarks", ["landmarks"], ("#landmarks-summary", "face")),
    "commands": ("Voice commands", ["commands"], ("#commands-verdict", "")),
    "exercises": ("Exercises", [], ("#mlp-result", "Check against torch autograd")),
}
EXAMPLES = {"denoising", "signs", "landmarks", "commands"}  # tabs whose input is filled from their gr.Examples


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_space(log: Path) -> tuple[subprocess.Popen, str]:
    """`python app.py` on a free port, with the bundled models (HF_HUB_OFFLINE): (process, URL)."""
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1", "HF_HUB_OFFLINE": "1",
           "GRADIO_ANALYTICS_ENABLED": "False"}
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url, start = f"http://127.0.0.1:{port}/", time.time()
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return proc, url
        except OSError:
            if proc.poll() is not None or time.time() > start + 180:
                proc.kill()
                sys.exit(f"screenshots.py: the Space did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)


def fill_with_example(page, tab: str) -> None:
    """Click the first sample of the tab's examples (gr.Examples: a gallery or a table of samples)."""
    panel = page.locator("[role=tabpanel]:visible").first
    sample = panel.locator("button.gallery-item, .gallery-item, tr.tr-body, table tbody tr").first
    sample.wait_for(timeout=60_000)
    sample.click()


def wait_for_answer(page, selector: str, text: str) -> None:
    page.wait_for_function(
        "([selector, text]) => { const e = document.querySelector(selector);"
        " return e && e.innerText.trim().length > 0 && e.innerText.includes(text); }",
        arg=[selector, text], timeout=180_000)


def as_jpeg(png: bytes) -> bytes:
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    if image.width > WIDTH:
        image = image.resize((WIDTH, round(image.height * WIDTH / image.width)), Image.LANCZOS)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=QUALITY, optimize=True)
    return out.getvalue()


def take(page, url: str, tab: str, out: Path) -> Path:
    name, _, (selector, text) = TABS[tab]
    page.goto(url)
    page.get_by_role("tab", name=name).first.click()
    if tab in EXAMPLES:
        fill_with_example(page, tab)
    wait_for_answer(page, selector, text)
    page.wait_for_timeout(1500)  # images and plots that arrive with the answer
    for close in page.locator(".toast-close").all():
        close.click()
    path = out / f"{tab}.jpg"
    path.write_bytes(as_jpeg(page.screenshot(full_page=True)))
    return path


def write_manifest(out: Path, taken: list[str]) -> Path:
    """Record, for each tab just taken, the digests of the bundled models it shows; other tabs' entries are kept."""
    path = out / MANIFEST_NAME
    manifest = json.loads(path.read_text()) if path.is_file() else {}
    tabs = manifest.setdefault("tabs", {})
    for tab in taken:
        tabs[tab] = {"file": f"{tab}.jpg", "taken": date.today().isoformat(),
                     "models": {folder: model_digests(ROOT / "checkpoints" / folder) for folder in TABS[tab][1]}}
    manifest["tabs"] = dict(sorted(tabs.items()))
    manifest["made_by"] = "python scripts/screenshots.py"
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("tabs", nargs="*", help=f"tabs to capture (default: all): {', '.join(TABS)}")
    p.add_argument("--out", default=str(SCREENSHOTS_DIR), help="default: docs/screenshots")
    args = p.parse_args()
    unknown = [t for t in args.tabs if t not in TABS]
    if unknown:
        p.error(f"unknown tab {', '.join(unknown)}: choose from {', '.join(TABS)}")
    tabs = args.tabs or list(TABS)
    if not Path(CHROMIUM).exists():
        sys.exit("screenshots.py: Debian's chromium is not installed: run `make install-dev` (packages-dev.txt)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sys.exit("screenshots.py: playwright is not installed: run `make install-dev` (requirements-dev.txt)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = Path(tempfile.mkdtemp(prefix="dlhub-screenshots-")) / "app.log"
    proc, url = start_space(log)
    taken = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport=VIEWPORT)
                for tab in tabs:
                    path = take(page, url, tab, out)
                    taken.append(tab)
                    print(f"{tab}: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
            finally:
                browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        if taken:
            print(f"wrote {write_manifest(out, taken)}")
    if len(taken) < len(tabs):
        sys.exit(f"screenshots.py: {', '.join(t for t in tabs if t not in taken)} not taken (Space log: {log})")


if __name__ == "__main__":
    main()
