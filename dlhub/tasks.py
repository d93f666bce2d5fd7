"""One registry of the course's tasks: which model class serves each, where it lives on the Hub, what is bundled."""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path

from dlhub.errors import UnknownTaskError

BUNDLED_DIR = Path(os.environ.get("DLHUB_CHECKPOINTS", Path(__file__).resolve().parent.parent / "checkpoints"))


@dataclass(frozen=True)
class Task:
    name: str
    model_class_path: str  # "module:Class", imported on first use so one task never pulls in another's dependencies
    hub_repo: str  # the published model; override with DLHUB_REPO_<NAME>

    @property
    def model_class(self):
        module, _, cls = self.model_class_path.partition(":")
        return getattr(importlib.import_module(module), cls)

    @property
    def repo_id(self) -> str:
        return os.environ.get(f"DLHUB_REPO_{self.name.upper()}", self.hub_repo)

    @property
    def bundled_dir(self) -> Path:
        return BUNDLED_DIR / self.name


TASKS: dict[str, Task] = {
    t.name: t
    for t in [
        Task("regression", "dlhub.regression:RegressionModel", "dlhub-course/task1-regression"),
        Task("denoiser", "dlhub.denoise:Denoiser", "dlhub-course/face-denoiser"),
        Task("signs", "dlhub.signs:SignClassifier", "dlhub-course/gtsrb-signs"),
        Task("landmarks", "dlhub.landmarks:LandmarkModel", "dlhub-course/face-landmarks"),
        Task("commands", "dlhub.commands:CommandClassifier", "dlhub-course/speech-commands"),
    ]
}


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except (KeyError, TypeError):
        raise UnknownTaskError(f"unknown task {name!r}: choose one of {', '.join(sorted(TASKS))}") from None
