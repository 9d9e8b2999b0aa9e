"""Entry point ``judge.llm`` (group ``semcache``)."""

from __future__ import annotations

from semcache.plugins import hookimpl
from semcache.settings import Settings
from semcache_judge_llm._judge import LLMJudge

__all__ = ["semcache_create_judge"]


@hookimpl
def semcache_create_judge(name: str, settings: Settings) -> LLMJudge | None:
    return LLMJudge.from_settings(settings) if name == "llm" else None
