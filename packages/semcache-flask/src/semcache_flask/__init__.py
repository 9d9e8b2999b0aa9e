"""semcache for Flask: an extension that adds a semantic cache to LLM-style endpoints.

```python
from semcache_flask import FlaskSemanticCache

app = Flask(__name__)
FlaskSemanticCache(app)
```

``SemanticCache`` is an alias of :class:`FlaskSemanticCache` (the Flask extension),
not :class:`semcache.SemanticCache` (the cache engine).
"""

from semcache.http import DEFAULT_IGNORED_FIELDS, default_extract_model, default_extract_query
from semcache_flask.extension import (
    CONFIG_KEY,
    EXTENSION_KEY,
    FlaskSemanticCache,
    SemanticCacheWSGIMiddleware,
)

SemanticCache = FlaskSemanticCache
"""The ``SemanticCache(app)`` / ``init_app(app)`` extension: :class:`FlaskSemanticCache`."""

__all__ = [
    "CONFIG_KEY",
    "DEFAULT_IGNORED_FIELDS",
    "EXTENSION_KEY",
    "FlaskSemanticCache",
    "SemanticCache",
    "SemanticCacheWSGIMiddleware",
    "__version__",
    "default_extract_model",
    "default_extract_query",
]

__version__ = "0.1.0"
