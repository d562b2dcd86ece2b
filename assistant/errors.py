"""The errors a user can act on. Raised inside; turned into messages only at the edges."""


class AssistantError(Exception):
    """Base class: the message says what went wrong and what to do about it."""


class ConfigError(AssistantError):
    """A setting is invalid or names something that does not exist."""


class CorpusError(AssistantError):
    """A policy document could not be read or parsed."""


class ModelError(AssistantError):
    """A model file is missing, incomplete or not the one that was pinned."""


class IndexLoadError(AssistantError):
    """The index is missing, corrupted, or built with other settings."""


class BackendError(AssistantError):
    """The language-model backend failed or timed out."""


class InputError(AssistantError):
    """A question or request is malformed or too large."""
