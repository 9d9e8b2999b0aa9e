import django
from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="semcache-tests",
        ALLOWED_HOSTS=["*"],
        INSTALLED_APPS=[],
        DATABASES={},
        MIDDLEWARE=["semcache_django.SemanticCacheMiddleware"],
        ROOT_URLCONF="tests.django_adapter.django_test_app.SyncRoutes",
        USE_TZ=True,
    )
    django.setup()
