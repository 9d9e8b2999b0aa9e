"""``semcache-proxy``: run the reverse proxy.

Every option is also an environment variable (shown in ``--help``); options win.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence

from semcache import Settings, SettingsError

__all__ = ["main"]

# (flag, settings field) pairs exposed on the command line; the rest stay env-only.
_OPTIONS = [
    ("--upstream", "proxy_upstream"),
    ("--host", "proxy_host"),
    ("--port", "proxy_port"),
    ("--workers", "proxy_workers"),
    ("--timeout", "proxy_timeout"),
    ("--verify", "proxy_verify"),
    ("--threshold", "threshold"),
    ("--ttl", "ttl"),
    ("--data-path", "data_path"),
    ("--embedder-type", "embedder_type"),
    ("--embedder-model", "embedder_model"),
    ("--pg-uri", "pg_uri"),
    ("--redis-uri", "redis_uri"),
    ("--auth-mode", "auth_mode"),
    ("--admin-token", "admin_token"),
]


def build_parser() -> argparse.ArgumentParser:
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    parser = argparse.ArgumentParser(
        prog="semcache-proxy",
        description="A semantic cache in front of any LLM or HTTP API. "
        "Each option can also be set with the environment variable shown; "
        "every SEMANTIC_CACHE_* variable of the README applies.",
    )
    for flag, name in _OPTIONS:
        f = fields[name]
        default = f.default if f.default is not None else "(unset)"
        parser.add_argument(
            flag,
            dest=name,
            metavar=name.split("_")[-1].upper(),
            help=f"{f.metadata['doc']} [env {f.metadata['env']}; default {default}]",
        )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn log level [default info]",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    for _, name in _OPTIONS:
        value = getattr(args, name)
        if value is not None:
            # Through the environment, so every worker process reads the same settings.
            os.environ[fields[name].metadata["env"]] = value
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"semcache-proxy: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    print(
        f"semcache-proxy: {settings.proxy_host}:{settings.proxy_port} -> {settings.proxy_upstream} "
        f"(embedder {settings.embedder_type}, "
        f"{'pgvector' if settings.pg_uri else 'embedded'} vectors, "
        f"{'redis' if settings.redis_uri else 'embedded'} responses)",
        file=sys.stderr,
    )
    uvicorn.run(
        "semcache_proxy.main:app",
        host=settings.proxy_host,
        port=settings.proxy_port,
        workers=settings.proxy_workers,
        log_level=args.log_level,
        lifespan="on",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
