"""Test doubles shipped with semcache, for semcache's tests and yours.

Nothing here is ever a default: choose it explicitly
(``SEMANTIC_CACHE_EMBEDDER_TYPE=testing-hash`` or ``HashingTestEmbedder()``).
"""

from semcache.testing.doubles import FlakyStore, SlowEmbedder, StalledEmbedder
from semcache.testing.embedders import HashingTestEmbedder

__all__ = ["FlakyStore", "HashingTestEmbedder", "SlowEmbedder", "StalledEmbedder"]
