"""A chat model as semcache's judge for the grey zone (plugin ``llm``).

:class:`LLMJudge` asks an OpenAI-compatible ``/v1/chat/completions`` or an Ollama
``/api/chat`` server whether two requests need the same answer, and reads a strict "yes"
or "no". Set ``SEMANTIC_CACHE_JUDGE=llm`` (see :mod:`semcache.verify.judge`).
"""

from semcache_judge_llm._judge import LLMJudge
from semcache_judge_llm._prompt import PROMPT, parse_answer, user_message

__all__ = ["PROMPT", "LLMJudge", "__version__", "parse_answer", "user_message"]

__version__ = "0.1.0"
