"""The shared errors, worded alike for every provider.

Each helper builds one of the :mod:`semcache.errors` classes with the message every
semcache embedder uses for that situation, so a Cohere, Voyage, Ollama or OpenAI
failure reads (and is caught) the same way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from semcache.errors import EmbeddingAPIError, EmbeddingAuthError, EmbeddingModelError
from semcache_embed_http._keys import key_variables_text

__all__ = ["auth_error", "error_text", "model_error", "no_answer_error", "status_error"]


def error_text(body: bytes) -> str:
    """The provider's own error message from a JSON or plain-text body, shortened."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    for _ in range(3):  # {"error": {"message": ...}} and similar nestings
        if not isinstance(data, dict):
            break
        for key in ("message", "detail", "error", "msg"):
            if key in data:
                data = data[key]
                break
        else:
            break
    if isinstance(data, str):
        text = data
    elif data is not None and not isinstance(data, dict):
        text = json.dumps(data)
    text = " ".join(text.split())
    return text[:300] + ("..." if len(text) > 300 else "")


def auth_error(
    *,
    provider: str,
    display_name: str,
    status: int,
    message: str,
    key_source: str,
    variables: Sequence[str],
) -> EmbeddingAuthError:
    """Credentials refused: names where the key came from (never the key itself) and
    every variable that would supply a valid one."""
    said = f"HTTP {status}: {message or 'no message'}"
    if key_source:
        verb = "refused" if status == 403 else "rejected"
        what = f"{verb} the API key from {key_source} ({said})"
    else:
        what = f"asked for an API key ({said}) and none was set"
    return EmbeddingAuthError(
        f"{display_name} {what}; set {key_variables_text(variables)} to a valid "
        f"{display_name} API key",
        provider=provider,
        status=status,
    )


def status_error(
    *, provider: str, display_name: str, status: int, message: str, note: str = "", hint: str = ""
) -> EmbeddingAPIError:
    """An error status: ``Cohere answered HTTP 422 after 3 attempts: ...; hint``."""
    text = f"{display_name} answered HTTP {status}{note}: {message or '(no message)'}"
    return EmbeddingAPIError(text + (f"; {hint}" if hint else ""), provider=provider, status=status)


def model_error(
    *, provider: str, display_name: str, status: int, message: str, hint: str
) -> EmbeddingModelError:
    """The provider does not serve the model (unknown name, not an embedding model)."""
    text = f"{display_name} answered HTTP {status}: {message or '(no message)'}"
    return EmbeddingModelError(
        text + (f"; {hint}" if hint else ""), provider=provider, status=status
    )


def no_answer_error(
    *, provider: str, display_name: str, base_url: str, detail: str, note: str = ""
) -> EmbeddingAPIError:
    """No HTTP answer (refused, reset, timed out): ``status`` is ``None``."""
    return EmbeddingAPIError(
        f"{display_name} at {base_url} did not answer ({detail}){note}",
        provider=provider,
        status=None,
    )
