"""Which event loop and HTTP parser serve the proxy.

uvicorn's ``loop="auto"`` and ``http="auto"`` take uvloop and httptools where they are
installed (``uvicorn[standard]``, a dependency of the proxy) and fall back to asyncio and
h11 where they are not (Windows, PyPy): ``installed_stack`` says what they will pick,
``running_stack`` what actually serves a request.
"""

from __future__ import annotations

import asyncio
import importlib.util
from typing import Any

__all__ = ["installed_stack", "running_stack"]

_UVICORN_HTTP = "uvicorn.protocols.http."


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def installed_stack() -> dict[str, str]:
    """The loop and parser uvicorn's ``auto`` settings choose in this environment."""
    return {
        "loop": "uvloop" if _installed("uvloop") else "asyncio",
        "http": "httptools" if _installed("httptools") else "h11",
    }


def running_stack(send: Any) -> dict[str, str]:
    """The loop running now, and the HTTP implementation behind an ASGI ``send``.

    uvicorn hands each request its protocol's bound ``send``; the protocol's module
    names the parser (``...http.httptools_impl``). Any other server: ``unknown``.
    """
    loop = type(asyncio.get_running_loop()).__module__.partition(".")[0]
    owner = getattr(send, "__self__", None)
    module = type(owner).__module__ if owner is not None else ""
    http = "unknown"
    if module.startswith(_UVICORN_HTTP):
        http = module[len(_UVICORN_HTTP) :].removesuffix("_impl")
    return {"loop": loop, "http": http}
