"""Scale-out: the shared stores that let several gateway replicas act as one.

- :mod:`thrifty.stores.config` — the ``redis:`` config section
- :mod:`thrifty.stores.redis` — one Redis client per replica, with a breaker that
  turns an outage into fast, logged, counted failures instead of stalled requests

The stores themselves live with their feature: ``cache/stores/redis.py``,
``cache/redis_semantic.py``, ``governance/budgets/redis.py``, ``ledger/stores/postgres.py``.
See docs/deploy.md.
"""
