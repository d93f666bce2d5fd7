"""One registry of the course's tasks: which model class serves each, where it lives on the Hub, what is bundled."""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path

from dlhub.errors import UnknownTaskError

BUNDLED_DIR = Path(os.environ.get("DLHUB_CHECKPOINTS", Path(__file__).resolve().parent.parent / "checkpoints"))
# The Hub organisation of the published models: the one setting every default repo is made from. `DLHUB_ORG` changes
# it (`python -m dlhub.publish --org ORG` sets it as a variable of the Space it publishes).
DEFAULT_ORG = "dlhub-course"


def hub_org() -> str:
    return os.environ.get("DLHUB_ORG") or DEFAULT_ORG


@dataclass(frozen=True)
class Task:
    name: str
    model_class_path: str  # "module:Class", imported on first use so one task never pulls in another's dependencies
    hub_name: str  # the published model's name in the organisation (hub_org())

    @property
    def model_class(self):
        module, _, cls = self.model_class_path.partition(":")
        return getattr(importlib.import_module(module), cls)

    @property
    def hub_repo(self) -> str:
        """The published model: ORG/NAME in the configured organisation."""
        return f"{hub_org()}/{self.hub_name}"

    @property
    def repo_id(self) -> str:
        """The repo `dlhub.load(task)` tries first: DLHUB_REPO_<NAME> when set, else `hub_repo`."""
        return os.environ.get(f"DLHUB_REPO_{self.name.upper()}") or self.hub_repo

    @property
    def bundled_dir(self) -> Path:
        return BUNDLED_DIR / self.name


TASKS: dict[str, Task] = {
    t.name: t
    for t in [
        Task("regression", "dlhub.regression:RegressionModel", "task1-regression"),
        Task("denoiser", "dlhub.denoise:Denoiser", "face-denoiser"),
        Task("signs", "dlhub.signs:SignClassifier", "gtsrb-signs"),
        Task("landmarks", "dlhub.landmarks:LandmarkModel", "face-landmarks"),
        Task("commands", "dlhub.commands:CommandClassifier", "speech-commands"),
    ]
}


# Bundled checkpoints besides each task's own `checkpoints/<task>/`: folder name → (task, its repo's name in hub_org())
BASELINES = {"denoiser-mlp": ("denoiser", "face-denoiser-mlp")}  # the course's Table 3 MLP


def bundled_repo_names() -> dict[str, str]:
    """Every bundled folder's name → its model repo's name in the organisation (what `dlhub.publish` creates)."""
    return {**{t.name: t.hub_name for t in TASKS.values()}, **{f: name for f, (_, name) in BASELINES.items()}}


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except (KeyError, TypeError):
        raise UnknownTaskError(f"unknown task {name!r}: choose one of {', '.join(sorted(TASKS))}") from None
