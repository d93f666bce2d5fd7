"""Errors with one-line messages that name what was looked for and how to fix it."""


class DLHubError(Exception):
    """Base class: its message is meant to be shown to a user as it is, without a traceback."""


class UnknownTaskError(DLHubError, ValueError):
    pass


class ModelNotFoundError(DLHubError, FileNotFoundError):
    pass


class CheckpointError(DLHubError):
    """Weights exist but cannot be used: corrupt, truncated, or not matching the model."""


class DataError(DLHubError, ValueError):
    """Input data is missing, has the wrong layout, or holds values the method cannot use."""


class HubUnreachableError(ModelNotFoundError):
    """The Hub did not answer (refused, timed out, 5xx): the model may exist, it just cannot be had now."""


class HubRepoNotFoundError(ModelNotFoundError):
    """The Hub answered: no such repo (or not visible with this token)."""


class ModelCardError(DLHubError, ValueError):
    """A model card the Hub would misread: metadata that does not parse, a missing field, a broken model-index."""


class WrongTaskError(DLHubError, ValueError):
    """A model of another task (its card's tags say so), or a config.json this task's model class cannot build; raised
    before any weights are read. `task` names the task it belongs to, when that is known."""

    def __init__(self, message: str, task: str | None = None):
        super().__init__(message)
        self.task = task
