"""dlhub: the models, preprocessing, metrics and Hub I/O shared by the Space (`dlhub/space/`, deployed from `spaces/`) and `train/`.

    import dlhub
    model = dlhub.load("regression")            # configured Hub repo if reachable, else the bundled checkpoint
    model = dlhub.load("regression", "ORG/NAME")  # a Hub repo, or a local folder in Hub layout
"""

from dlhub.errors import CheckpointError, DataError, DLHubError, ModelNotFoundError, UnknownTaskError
from dlhub.hub import load
from dlhub.tasks import TASKS

__all__ = ["load", "TASKS", "DLHubError", "UnknownTaskError", "ModelNotFoundError", "CheckpointError", "DataError"]
__version__ = "0.1.0"
