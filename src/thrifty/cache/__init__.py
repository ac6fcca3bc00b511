"""Caching: answer a request again without calling a model.

``keys.py`` decides when two requests are the same question (exact) or may be neighbours
(semantic partition); ``stores/`` keeps the answers (in memory or in SQLite) behind one
:class:`~thrifty.cache.stores.base.CacheStore` protocol. The stages that use them live
beside these modules.
"""
