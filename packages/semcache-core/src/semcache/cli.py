"""The ``semcache`` command: inspect settings, run a demo; subcommands register here."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence

from semcache.errors import SemcacheError
from semcache.settings import Settings, settings_table

__all__ = ["main"]


def _cmd_settings(args: argparse.Namespace) -> int:
    if args.table:
        print(settings_table())
        return 0
    print(Settings.from_env())
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    """Store one answer, then look up a repeat, a paraphrase and an unrelated question."""
    from semcache.cache import SemanticCache

    async def run() -> None:
        async with SemanticCache() as cache:
            assert cache.embedder is not None
            print(f"embedder: {cache.embedder.model_id}  threshold: {cache.threshold:.2f}")
            stored = "How do I reset my password?"
            await cache.store(stored, b"Open Settings > Account > Reset password.")
            print(f"stored:   {stored!r}")
            for question in (
                "how do I reset my password",
                "What are the steps to reset my password?",
                "How do I delete my account?",
            ):
                t0 = time.perf_counter()
                hit = await cache.lookup(question)
                ms = (time.perf_counter() - t0) * 1000
                result = f"hit ({hit.source}, similarity {hit.similarity:.3f})" if hit else "miss"
                print(f"lookup:   {question!r} -> {result} in {ms:.1f} ms")

    asyncio.run(run())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="semcache", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("settings", help="print the effective settings (or the README table)")
    p.add_argument("--table", action="store_true", help="print every variable as a Markdown table")
    p.set_defaults(func=_cmd_settings)
    p = sub.add_parser("demo", help="store an answer and look up a paraphrase")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SemcacheError as exc:
        print(f"semcache: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
