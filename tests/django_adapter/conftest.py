import django
from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="semcache-tests",
        ALLOWED_HOSTS=["*"],
        # contrib.auth for request.user; sessions in signed cookies: no database needed.
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth"],
        SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
        DATABASES={},
        MIDDLEWARE=["semcache_django.SemanticCacheMiddleware"],
        ROOT_URLCONF="tests.django_adapter.django_test_app.SyncRoutes",
        USE_TZ=True,
    )
    django.setup()
