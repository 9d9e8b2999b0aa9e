"""Helpers shared by the test folders; a test folder imports only from here, never from
another test folder.

- :mod:`.ports`: free loopback ports;
- :mod:`.polling`: waiting without fixed sleeps (``wait_until``, ``until``, ``wait_stores``);
- :mod:`.servers`: ASGI and WSGI apps on a loopback port, in a thread;
- :mod:`.redis_servers`, :mod:`.pg_servers`: the shared Redis and PostgreSQL, and private
  servers that fault tests may stop, pause and restart;
- :mod:`.scenarios`: the HTTP scenarios every adapter runs, with their fake backend;
- :mod:`.broken_caches`: caches that fail, for the adapters' failure tests;
- :mod:`.entries`: a stored answer with every field set (``an_entry``);
- :mod:`.caches`: a cache over a response store the test chose (``cache_over``);
- :mod:`.starts`: a cache start that hangs until the test lets it go on (``HeldStart``);
- :mod:`.pausing`, :mod:`.interleaved`: stores that stop once at a chosen point of their
  next call, so that a test can run another operation there (embedded; Redis).

Fixtures several folders use (``shared_redis``, ``redis_prefix``) are in ``tests/conftest.py``.
``tests`` is a package, so pytest puts the repository root on ``sys.path`` and
``tests.support`` imports without any path setting.
"""
