"""semcache for LangChain: a semantic LLM cache for ``set_llm_cache``.

```python
from langchain_core.globals import set_llm_cache
from semcache import SemanticCache
from semcache_langchain import SemanticLLMCache

set_llm_cache(SemanticLLMCache(SemanticCache()))
```
"""

from semcache_langchain.cache import LANGCHAIN_TAG, CacheKey, SemanticLLMCache

__all__ = ["LANGCHAIN_TAG", "CacheKey", "SemanticLLMCache", "__version__"]

__version__ = "0.1.0"
