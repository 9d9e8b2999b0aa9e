"""Shared HTTP plumbing for semcache's provider embedders (Ollama, Cohere, Voyage, OpenAI).

:class:`HTTPEmbedder` is the base class a provider package subclasses: it splits batches
at the provider's limits, retries with backoff (honouring ``Retry-After``), raises the
shared :mod:`semcache.errors` classes and learns an unknown model's size with one
explicit probe, and cuts each text to a bound from the model's input limit before it is
sent. :class:`HttpxTransport` is the httpx client behind the small
:class:`Transport` protocol. The helpers are public for third-party embedders too.
"""

from semcache_embed_http._batching import split_batches
from semcache_embed_http._cut import (
    CHARS_PER_TOKEN,
    DEFAULT_MAX_INPUT_TOKENS,
    char_limit,
    cut_texts,
    input_tokens,
)
from semcache_embed_http._embedder import PROBE_TEXT, PROBE_TIMEOUT, HTTPEmbedder
from semcache_embed_http._errors import (
    auth_error,
    error_text,
    model_error,
    no_answer_error,
    status_error,
)
from semcache_embed_http._httpx import HttpxTransport
from semcache_embed_http._keys import (
    key_variables_text,
    require_api_key,
    resolve_api_key,
    strip_suffix_path,
)
from semcache_embed_http._retry import RetryPolicy, is_retryable, parse_retry_after
from semcache_embed_http._transport import HTTPReply, Transport, TransportError

__all__ = [
    "CHARS_PER_TOKEN",
    "DEFAULT_MAX_INPUT_TOKENS",
    "PROBE_TEXT",
    "PROBE_TIMEOUT",
    "HTTPEmbedder",
    "HTTPReply",
    "HttpxTransport",
    "RetryPolicy",
    "Transport",
    "TransportError",
    "__version__",
    "auth_error",
    "char_limit",
    "cut_texts",
    "error_text",
    "input_tokens",
    "is_retryable",
    "key_variables_text",
    "model_error",
    "no_answer_error",
    "parse_retry_after",
    "require_api_key",
    "resolve_api_key",
    "split_batches",
    "status_error",
    "strip_suffix_path",
]

__version__ = "0.1.0"
