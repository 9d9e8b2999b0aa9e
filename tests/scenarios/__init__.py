"""HTTP adapter scenarios written once, run against every adapter (ASGI, Django, Flask).

- :mod:`scenarios.backend`: the fake LLM backend and the routes each test app exposes.
- :mod:`scenarios.harness`: :class:`Harness` (base URL, backend, cache, client, and the
  adapter's hooks: ``client_factory``, ``chunked_requests``), :func:`build_cache`.
- :mod:`scenarios.scenarios`: ``SCENARIOS``, each a function of a :class:`Harness`.
- :mod:`scenarios.servers`: :func:`serve_asgi` (uvicorn) and :func:`serve_wsgi` (werkzeug),
  on a loopback port in a thread.

Adapters' ``conftest.py`` append ``tests/`` to ``sys.path`` so ``import scenarios`` works.
"""
