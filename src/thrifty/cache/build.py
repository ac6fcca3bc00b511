"""Build the cache stages from config (exact first, then semantic)."""

from __future__ import annotations

from pathlib import Path

from thrifty.config.schema import CacheConfig
from thrifty.pipeline.dispatch import DispatchStage
from thrifty.pipeline.stage import Stage
from thrifty.registry import ModelRegistry


def build_cache_stages(
    config: CacheConfig, registry: ModelRegistry, dispatch: DispatchStage, *, ephemeral: bool
) -> list[Stage]:
    """``ephemeral`` (replay): in-memory stores that start empty."""
    stages: list[Stage] = []
    memory = ephemeral or config.store == "memory"
    if config.exact.enabled:
        from thrifty.cache.exact import ExactCacheStage
        from thrifty.cache.stores.memory import MemoryCacheStore
        from thrifty.cache.stores.sqlite import SqliteCacheStore

        store = (
            MemoryCacheStore(config.max_entries, config.max_bytes)
            if memory
            else SqliteCacheStore(config.path, config.max_entries, config.max_bytes)
        )
        stages.append(ExactCacheStage(config, store, registry))
    if config.semantic.enabled:
        from thrifty.cache.semantic import SemanticCacheStage
        from thrifty.cache.semantic_index import SemanticIndex
        from thrifty.embeddings import get_embedder

        path = None if memory else Path(config.path).with_suffix(".semantic.db")
        index = SemanticIndex(path, config.semantic.max_entries)
        stages.append(
            SemanticCacheStage(config, index, registry, get_embedder().embed_one, dispatch)
        )
    return stages
