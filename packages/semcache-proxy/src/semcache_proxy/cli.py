"""``semcache-proxy``: run the reverse proxy.

Every option is also an environment variable (shown in ``--help``); options win.
``--config semcache.toml`` reads every setting, the routes and the upstreams from a TOML
file (``SEMANTIC_CACHE_CONFIG``); variables and options override its values.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import os
import sys
from collections.abc import Sequence
from typing import Any

from semcache import Settings, SettingsError
from semcache.settings import declared_fields, settings_groups, settings_help
from semcache_proxy._server import installed_stack
from semcache_proxy.settings import ProxySettings

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


def _declared() -> dict[str, dataclasses.Field[Any]]:
    """Every setting of every group this process knows, by field name."""
    return {f.name: f for group in settings_groups().values() for f in declared_fields(group)}


def build_parser() -> argparse.ArgumentParser:
    fields = _declared()
    parser = argparse.ArgumentParser(
        prog="semcache-proxy",
        description="A semantic cache in front of any LLM or HTTP API. "
        "Each option can also be set with the environment variable shown; "
        "every variable below applies.",
        epilog="settings (environment variables), by group:\n\n" + settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config",
        dest="config",
        metavar="FILE",
        help="TOML configuration file: every setting by name, [[routes]], [upstreams], "
        "[prices]; environment variables and options override it "
        f"[env {fields['config'].metadata['env']}]",
    )
    for flag, name in _OPTIONS:
        f = fields.get(name)
        if f is None:  # a store option whose plugin is not installed
            continue
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
    fields = _declared()
    if args.config is not None:
        # Absolute, so every worker finds it whatever its working directory.
        os.environ[fields["config"].metadata["env"]] = os.path.abspath(args.config)
    for _, name in _OPTIONS:
        value = getattr(args, name, None)
        if value is not None:
            # Through the environment, so every worker process reads the same settings.
            os.environ[fields[name].metadata["env"]] = value
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"semcache-proxy: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    from semcache.plugins import response_store_name, vector_store_name

    proxy = settings.group(ProxySettings)
    stack = installed_stack()
    print(
        f"semcache-proxy: {proxy.proxy_host}:{proxy.proxy_port} -> {proxy.proxy_upstream} "
        f"(embedder {settings.embedder_type}, {vector_store_name(settings)} vectors, "
        f"{response_store_name(settings)} responses; {stack['loop']} + {stack['http']})",
        file=sys.stderr,
    )
    uvicorn.run(
        "semcache_proxy.main:app",
        host=proxy.proxy_host,
        port=proxy.proxy_port,
        workers=proxy.proxy_workers,
        log_level=args.log_level,
        log_config=_log_config(args.log_level),
        lifespan="on",
        # uvloop and httptools where installed, asyncio and h11 otherwise.
        loop="auto",
        http="auto",
    )
    return 0


def _log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging, with semcache's own loggers (the embedder's backend and
    calibration, store trouble) shown at the same level on the same stream."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["semcache"] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    return config


if __name__ == "__main__":
    sys.exit(main())
