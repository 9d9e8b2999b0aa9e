"""Every exception semcache raises to its callers, in one place.

A cache problem on a request's path never raises (it becomes a miss); these come from
building, configuring and starting things, from the admin operations (delete, flush,
audit state), and from calling an embedder directly::

    SemcacheError
    ├── SettingsError (ValueError)           a setting is invalid or missing
    ├── PluginNotFoundError (LookupError)    no installed plugin by that name
    ├── StoreSetupError (RuntimeError)       a backend cannot hold the cache yet
    ├── EmbedderNotReadyError (RuntimeError) the vector size is not known yet
    ├── UnsupportedOperationError (NotImplementedError)  a store cannot do what was asked
    ├── CacheUnavailableError (RuntimeError) an admin operation's store failed or ran
    │                                        out of time
    ├── EvaluationError                      ``semcache eval`` input is malformed
    └── EmbeddingError                       an embedder could not embed
        ├── EmbeddingAPIError                the provider refused, failed or never answered
        │   └── EmbeddingAuthError           the API key was rejected or is missing
        │       └── MissingAPIKeyError       no key was set (also a SettingsError)
        └── EmbeddingModelError              the model cannot be loaded or is not served

Every embedder raises these same classes for the same situation, so one ``except``
clause covers them all; a plugin package defines an error of its own only for what
is specific to it (and derives it from one of these).
"""

from __future__ import annotations

__all__ = [
    "CacheUnavailableError",
    "EmbedderNotReadyError",
    "EmbeddingAPIError",
    "EmbeddingAuthError",
    "EmbeddingError",
    "EmbeddingModelError",
    "EmbeddingStalledError",
    "EvaluationError",
    "MissingAPIKeyError",
    "PluginNotFoundError",
    "SemcacheError",
    "SettingsError",
    "StoreSetupError",
    "UnsupportedOperationError",
]


class SemcacheError(Exception):
    """Base class of every semcache error."""


class SettingsError(SemcacheError, ValueError):
    """A setting has an invalid value; the message names the variable and what it accepts."""


class PluginNotFoundError(SemcacheError, LookupError):
    """No installed distribution provides the plugin a setting asks for."""


class StoreSetupError(SemcacheError, RuntimeError):
    """A store's backend cannot hold the cache yet (an extension or a permission is
    missing); the message says what to run."""


class EmbedderNotReadyError(SemcacheError, RuntimeError):
    """The embedder's vector size is not known yet: ``await embedder.probe_dimension()``
    learns it (the cache does so when it starts)."""


class UnsupportedOperationError(SemcacheError, NotImplementedError):
    """The configured store cannot do this (e.g. a response store without
    :class:`~semcache.protocols.PartitionIndex` asked to flush by tags)."""


class CacheUnavailableError(SemcacheError, RuntimeError):
    """An admin operation (:meth:`~semcache.SemanticCache.delete`, ``flush``,
    ``flush_where``, ``audit_state``) did not finish: a store failed or its breaker is
    open, the cache could not start, or one lookup's time budget ran out first. What it
    had done stays done (a flush may be partly done); it may be sent again. The message
    names neither a store's address nor an entry."""


class EvaluationError(SemcacheError):
    """The evaluation input is malformed or the cache failed during a run."""


class EmbeddingError(SemcacheError):
    """An embedder could not turn texts into vectors.

    ``provider`` is the embedder's short name (``openai``, ``huggingface``...); ``status``
    the HTTP status of the provider's answer, or ``None`` when there was none.
    """

    def __init__(self, message: str, *, provider: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.provider = provider
        self.status = status


class EmbeddingAPIError(EmbeddingError):
    """An embedding API failed or refused a request (after any retries), did not answer,
    or answered with something that is not the vectors asked for."""


class EmbeddingAuthError(EmbeddingAPIError):
    """The API rejected the credentials (HTTP 401 or 403), or none were set; the message
    names the variable the key came from, or the variables that would supply one."""


class MissingAPIKeyError(EmbeddingAuthError, SettingsError):
    """The provider needs an API key and none was set; raised when the embedder is built,
    before any request. The message names every variable that would supply the key."""


class EmbeddingModelError(EmbeddingError):
    """The model cannot be loaded (missing files, no such model, a runtime not installed)
    or the provider does not serve it as an embedding model."""


class EmbeddingStalledError(EmbeddingError):
    """The model's current call has run past its budget: the texts queued behind it are
    failed at once rather than waiting on a model that may never answer."""
