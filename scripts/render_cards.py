"""Re-render the bundled model cards (checkpoints/<name>/README.md) and the Spaces' folders (spaces/<name>/README.md and
app.py) from the templates in hub_cards/, without training.

    python scripts/render_cards.py                # rewrites every bundled card
    python scripts/render_cards.py signs landmarks
    python scripts/render_cards.py --check        # exit 1 if a card is not what the templates give, if a card's
                                                  # headline figure has no 95% interval or sample size, or if a
                                                  # screenshot was taken with other bundled models

A card is made of what its training run left beside the weights: metrics.json, and the training command recorded in
the card itself, read by the train script's own argument parser (so an argument the command did not give takes the
script's default). The data facts a card states (split sizes) are read again from that command's --dataset. Blocks
that the benchmark scripts filled keep what they measured. Weights, config.json and metrics.json are not touched.

Each card's headline figures (the ones under "What to expect") must come with a 95% interval and its sample size n,
from metrics.json (`<metric>_ci95`, `<metric>_n`, which the train scripts and `python -m dlhub.evaluate …
--write-intervals` write) or, for a proportion, from its recorded item count. A card whose headline lacks them is
reported in one line naming the card and the figure, and --check fails on it. --check also fails when a bundled
model's model.safetensors or metrics.json differs from what docs/screenshots/manifest.json says its screenshot was
taken with (scripts/screenshots.py).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from dlhub.cards import (SPACES, SPACES_DIR, keep_blocks, render_space_card, space_app,  # noqa: E402
                         stale_screenshots, write_card)
from dlhub.errors import DLHubError  # noqa: E402

COMMAND = re.compile(r"^## Training\n.*?```bash\n(?P<command>.+?)\n```", re.S | re.M)


def recorded_command(card_text: str) -> str:
    match = COMMAND.search(card_text)
    if match is None:
        raise DLHubError("the card records no training command (a ```bash block under '## Training')")
    return match["command"].strip()


def train_script(command: str):
    """(the train script's module, its arguments) of a recorded `accelerate launch train/x.py …` command."""
    words = shlex.split(command)
    at = next((i for i, word in enumerate(words) if re.fullmatch(r"train/\w+\.py", word)), None)
    if at is None:
        raise DLHubError(f"the recorded command runs no train/*.py script: {command}")
    path = ROOT / words[at]
    spec = importlib.util.spec_from_file_location(f"train_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, words[at + 1:]


def card_facts(script: str, args) -> tuple:
    """The arguments after (args, metrics) that the script's model_card takes: the data it was trained on, loaded
    again from --dataset as the script loads it."""
    if script == "regression":
        from dlhub.data.task1 import load_task1

        return load_task1(args.dataset)
    if script == "dae":
        from dlhub.data.faces import load_faces

        faces = load_faces(args.dataset, people=args.people)
        return ({split: (faces[split].num_rows, len(set(faces[split]["person"]) - {-1})) for split in faces},)
    if script == "gtsrb":
        from dlhub.data.gtsrb import default_source, load_gtsrb

        return args.dataset or default_source(), load_gtsrb(args.dataset)
    return ()


def render(folder: Path) -> str:
    """The card of a bundled model folder as its train script writes it, with the old card's benchmark blocks."""
    return render_card(folder)[0]


def interval_gaps(folder: Path, names: list[str]) -> list[str]:
    """One line per headline figure of the card in `folder` that has no 95% interval or no sample size."""
    return [f"render_cards.py: checkpoints/{folder.name}/README.md: the headline figure '{name}' has no 95% interval "
            f"or sample size n in metrics.json: run python -m dlhub.evaluate … {folder} --write-intervals"
            for name in names]


def render_card(folder: Path) -> tuple[str, list[str]]:
    """(the card, what interval_gaps says of it)."""
    old = (folder / "README.md").read_text()
    command = recorded_command(old)
    module, argv = train_script(command)
    args = module.parse_args(argv)
    metrics = json.loads((folder / "metrics.json").read_text())
    # a default that changed since the run would put a setting in the card that the run did not use
    changed = [f"--{key} {value} (metrics.json: {metrics[key]})" for key, value in sorted(vars(args).items())
               if key in metrics and value is not None and value != metrics[key]]
    if changed:
        raise DLHubError(f"the recorded command now means {', '.join(changed)}: the script's defaults changed since "
                         "this run, so its card cannot be re-rendered from the command")
    script = Path(module.__file__).stem
    card = module.model_card(args, metrics, *card_facts(script, args), training_command=command)
    return keep_blocks(old, str(card)), interval_gaps(folder, getattr(card, "headline_gaps", []))


def render_spaces(check: bool) -> list[str]:
    """Write each Space's README.md (front matter for Hugging Face) and app.py; with `check`, only list the stale."""
    stale = []
    for name in SPACES:
        for path, text in ((SPACES_DIR / name / "README.md", render_space_card(name)),
                           (SPACES_DIR / name / "app.py", space_app(name))):
            if path.is_file() and path.read_text() == text:
                continue
            if check:
                stale.append(f"spaces/{name}/{path.name}")
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
                print(f"spaces/{name}/{path.name}: re-rendered")
    return stale


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", help="folders of checkpoints/ (default: all with a README.md)")
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 if a card differs")
    p.add_argument("--checkpoints", default=str(ROOT / "checkpoints"))
    args = p.parse_args()
    root = Path(args.checkpoints).resolve()
    os.chdir(ROOT)  # the recorded commands name their data relative to the repository root
    folders = [root / name for name in args.names] or sorted(f.parent for f in root.glob("*/README.md"))
    stale = render_spaces(args.check)
    problems = []
    for folder in folders:
        try:
            text, gaps = render_card(folder)
        except (DLHubError, OSError) as err:
            sys.exit(f"render_cards.py: {folder.name}: {err}")
        problems += gaps
        if text == (folder / "README.md").read_text():
            print(f"{folder.name}: up to date")
        elif args.check:
            stale.append(folder.name)
        else:
            write_card(folder, text)
            print(f"{folder.name}: re-rendered")
    if args.check and not args.names and root == ROOT / "checkpoints":  # the README's screenshots of these models
        problems += [f"render_cards.py: {line}" for line in stale_screenshots(ROOT)]
    for line in problems:
        print(line, file=sys.stderr)
    if stale:
        sys.exit(f"render_cards.py: {', '.join(stale)}: not what hub_cards/ gives: run python scripts/render_cards.py")
    if problems and args.check:
        sys.exit(1)


if __name__ == "__main__":
    main()
