import sys
from pathlib import Path

import django
from django.conf import settings

# The shared adapter scenarios live in tests/scenarios (imported as ``scenarios``).
# Appended, not prepended: nothing in tests/ may shadow an installed package.
_TESTS = str(Path(__file__).resolve().parents[1])
if _TESTS not in sys.path:
    sys.path.append(_TESTS)

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="semcache-tests",
        ALLOWED_HOSTS=["*"],
        INSTALLED_APPS=[],
        DATABASES={},
        MIDDLEWARE=["semcache_django.SemanticCacheMiddleware"],
        ROOT_URLCONF="django_test_app.SyncRoutes",
        USE_TZ=True,
    )
    django.setup()
