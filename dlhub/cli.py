"""What every command-line entry point shares: bad input ends in one line naming the fix, not a traceback."""

from __future__ import annotations

import os
import shlex
import sys
from contextlib import contextmanager
from pathlib import Path

from dlhub.errors import DataError, DLHubError


@contextmanager
def one_line_errors(prog: str):
    try:
        yield
    except DLHubError as err:
        print(f"{Path(prog).name}: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def command_line() -> str:
    """How this script was started, for the model card's 'reproduce' section."""
    launcher = "accelerate launch" if "ACCELERATE_MIXED_PRECISION" in os.environ else "python"
    return f"{launcher} {shlex.join(sys.argv)}"


def setup_logging(main_process: bool = True) -> None:
    """INFO from dlhub (which model source was used) on the main process; HTTP client chatter stays quiet."""
    import logging

    logging.basicConfig(level=logging.INFO if main_process else logging.WARNING, format="%(levelname)s %(message)s")
    for noisy in ("httpx", "httpx2", "httpcore", "urllib3", "matplotlib", "accelerate"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


# The Hub-publishing flags of the Hugging Face example scripts: the repo-id and privacy flags differ by repo kind.
HUB_FLAGS = {"model": ("hub_model_id", "hub_private_repo"), "dataset": ("hub_dataset_id", "private")}


def add_data_arguments(parser, *, output_dir: str, dataset: str | None = None, required: bool = False,
                       dataset_help: str | None = None) -> None:
    """--dataset (what to read) and --output_dir (what to write), spelled the same in every script; the older
    spellings --data-dir, --data and --output-dir still work."""
    parser.add_argument("--dataset", "--data-dir", "--data", dest="dataset", default=dataset, required=required,
                        help=dataset_help or f"default: {dataset}")
    parser.add_argument("--output_dir", "--output-dir", dest="output_dir", default=output_dir,
                        help=f"default: {output_dir}")


def add_run_arguments(parser, *, max_train_samples: bool = True) -> None:
    """The flags every resumable train script shares: where per-epoch checkpoints go and which to resume from, the
    seed, a cap on training samples for quick experiments, and the Hub flags (check them with `check_run_arguments`)."""
    parser.add_argument("--checkpoint_dir", default=None, help="per-epoch checkpoints; default: <output_dir>-checkpoints")
    parser.add_argument("--resume_from_checkpoint", default=None, help="'latest' or a checkpoint folder")
    parser.add_argument("--seed", type=int, default=0)
    if max_train_samples:
        parser.add_argument("--max_train_samples", type=int, default=None, help="for quick experiments")
    add_hub_arguments(parser, "model")


def check_run_arguments(args) -> None:
    """The checks and defaults of `add_run_arguments`' flags."""
    check_hub_arguments(args, "model")
    args.checkpoint_dir = args.checkpoint_dir or f"{args.output_dir.rstrip('/')}-checkpoints"


def add_hub_arguments(parser, kind: str = "model") -> None:
    repo_id, private = HUB_FLAGS[kind]
    parser.add_argument("--push_to_hub", action="store_true", help=f"publish the {kind} on the Hub")
    parser.add_argument(f"--{repo_id}", default=None, help=f"ORG/NAME of the {kind} repo to create or update")
    parser.add_argument(f"--{private}", action="store_true", help="create the repo as private")


def check_hub_arguments(args, kind: str = "model") -> None:
    repo_id = HUB_FLAGS[kind][0]
    if args.push_to_hub and not getattr(args, repo_id):
        raise DataError(f"--push_to_hub needs --{repo_id} ORG/NAME")
