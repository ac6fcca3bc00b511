"""Local text embeddings, shipped with the package (no download, no torch at run time).

:class:`StaticEmbedder` is a model2vec-style static model distilled from all-MiniLM-L6-v2
(256 dims). Used by the learned task classifier (``thrifty.routing.tasks``) and meant for
the semantic cache. Importing this package reads nothing; files load on first ``embed``.
See ``docs/embeddings.md`` for how the data was made and what the vectors can and cannot do.
"""

from __future__ import annotations

from thrifty.embeddings.static import StaticEmbedder, get_embedder

__all__ = ["StaticEmbedder", "get_embedder"]
