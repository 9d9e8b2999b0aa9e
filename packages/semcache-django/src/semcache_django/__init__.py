"""semcache for Django: a middleware that adds a semantic cache to LLM-style endpoints.

```python
MIDDLEWARE = [..., "semcache_django.SemanticCacheMiddleware"]
SEMCACHE = {"path_prefix": "/v1", "threshold": 0.9}
```
"""

from semcache.http import DEFAULT_IGNORED_FIELDS, default_extract_model, default_extract_query
from semcache_django.middleware import SETTING, SemanticCacheMiddleware

__all__ = [
    "DEFAULT_IGNORED_FIELDS",
    "SETTING",
    "SemanticCacheMiddleware",
    "__version__",
    "default_extract_model",
    "default_extract_query",
]

__version__ = "0.1.0"
