"""Scale-out: the shared stores that let several gateway replicas act as one.

- :mod:`thrifty.scaleout.config` — the ``redis:`` config section
- :mod:`thrifty.scaleout.redis_link` — one Redis client per replica, with a breaker that
  turns an outage into fast, logged, counted failures instead of stalled requests

The stores themselves live with their feature: ``cache/stores/redis.py``,
``cache/redis_semantic.py``, ``budgets/redis_store.py``, ``ledger/stores/postgres.py``.
See docs/deploy.md.
"""
