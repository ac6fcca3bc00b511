"""Build the cache stages from config (exact first, then semantic)."""

from __future__ import annotations

from thrifty.cache.config import CacheConfig
from thrifty.pipeline.dispatch import DispatchStage
from thrifty.pipeline.stage import Stage
from thrifty.registry import ModelRegistry
from thrifty.stores.config import RedisConfig


def build_cache_stages(
    config: CacheConfig,
    registry: ModelRegistry,
    dispatch: DispatchStage,
    *,
    ephemeral: bool,
    redis: RedisConfig | None = None,
) -> list[Stage]:
    """``ephemeral`` (replay): in-memory stores that start empty; ``redis`` is used when
    ``config.store == "redis"``."""
    stages: list[Stage] = []
    if config.exact.enabled:
        from thrifty.cache.exact import ExactCacheStage
        from thrifty.cache.stores.select import open_cache_store

        store = open_cache_store(config, ephemeral=ephemeral, redis=redis)
        stages.append(ExactCacheStage(config, store, registry))
    if config.semantic.enabled:
        from thrifty.cache.semantic import SemanticCacheStage
        from thrifty.cache.stores.select import open_semantic_index
        from thrifty.embeddings import get_embedder

        index = open_semantic_index(config, ephemeral=ephemeral, redis=redis)
        stages.append(
            SemanticCacheStage(config, index, registry, get_embedder().embed_one, dispatch)
        )
    return stages

