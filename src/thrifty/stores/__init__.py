"""The store kit: one way to open and migrate each kind of database every feature uses.

- :mod:`thrifty.stores.sqlite` — ``connect`` with the house settings, versioned ``migrate``
- :mod:`thrifty.stores.postgres` — ``connect``, ``migrate`` under an advisory lock
- :mod:`thrifty.stores.redis` — one Redis client per replica, with a breaker that
  turns an outage into fast, logged, counted failures instead of stalled requests
- :mod:`thrifty.stores.config` — the ``redis:`` config section

The stores themselves live with their feature, each as ``base`` / ``memory`` / ``sqlite``
/ ``redis`` / ``postgres`` modules where it has them: ``cache/stores/``,
``ledger/stores/``, ``batching/stores/``, ``governance/budgets/``, ``governance/keys/``.
See docs/deploy.md.
"""
