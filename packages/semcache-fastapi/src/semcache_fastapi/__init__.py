"""semcache for FastAPI, Starlette and any ASGI app: one line adds a semantic cache.

```python
app.add_middleware(SemanticCacheMiddleware, cache=SemanticCache())
```
"""

from semcache.http import DEFAULT_IGNORED_FIELDS, default_extract_model, default_extract_query
from semcache_fastapi.middleware import SemanticCacheMiddleware

__all__ = [
    "DEFAULT_IGNORED_FIELDS",
    "SemanticCacheMiddleware",
    "__version__",
    "default_extract_model",
    "default_extract_query",
]

__version__ = "0.1.0"
