"""The errors pytest-lmbehave raises: each message names the problem and the fix."""

from __future__ import annotations


class LMBehaveError(Exception):
    """Base class: a problem the user can fix, reported without an internal traceback."""


class SettingsError(LMBehaveError):
    """A bad option, ini value or environment variable."""


class ModelNotFoundError(LMBehaveError):
    """A model spec that names nothing loadable."""


class ModelLoadError(LMBehaveError):
    """A model that was found but could not be loaded."""


class InputError(LMBehaveError, ValueError):
    """A bad argument to the LM API (empty prompt, bad max_new_tokens, ...)."""


class MarkerError(LMBehaveError):
    """A marker used with unknown keywords or bad values."""


class BackendUnavailable(LMBehaveError):
    """A verb the backend cannot answer (a served model has no raw logits), or a server that went away."""


class BackendGone(BackendUnavailable):
    """The engine that computes went away (a server stopped answering): the run ends here, with this message."""


class NotApplicable(BackendUnavailable, InputError):
    """A question that does not apply to this model (a chat turn of a model without a chat template): a spec that
    asks it is skipped with the reason, never failed."""


class NearTieWarning(UserWarning):
    """A change flipped a top-1 whose base margin was within the near-tie threshold: noise, not a failure."""
