"""HTTP adapter scenarios written once, run against every adapter (ASGI, Django, Flask).

- :mod:`.backend`: the fake LLM backend and the routes each test app exposes.
- :mod:`.harness`: :class:`Harness` (base URL, backend, cache, client, and the
  adapter's hooks: ``client_factory``, ``chunked_requests``), :func:`build_cache`.
- :mod:`.scenarios`: ``SCENARIOS``, each a function of a :class:`Harness`.

The servers the adapters run them on are in :mod:`tests.support.servers`.
"""
