"""Build the cache stages from config (exact first, then semantic)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
    memory = ephemeral or config.store == "memory"
    shared = not ephemeral and config.store == "redis"
    if config.exact.enabled:
        from thrifty.cache.exact import ExactCacheStage
        from thrifty.cache.stores.select import open_cache_store

        store = open_cache_store(config, ephemeral=ephemeral, redis=redis)
        stages.append(ExactCacheStage(config, store, registry))
    if config.semantic.enabled:
        from thrifty.cache.semantic import SemanticCacheStage
        from thrifty.embeddings import get_embedder

        index = _semantic_index(config, memory, shared, redis)
        stages.append(
            SemanticCacheStage(config, index, registry, get_embedder().embed_one, dispatch)
        )
    return stages


def _semantic_index(
    config: CacheConfig, memory: bool, shared: bool, redis: RedisConfig | None
) -> Any:
    if shared:
        from thrifty.cache.redis_semantic import RedisSemanticIndex
        from thrifty.stores.redis import RedisLink

        return RedisSemanticIndex(RedisLink(redis or RedisConfig()), config.semantic.max_entries)
    from thrifty.cache.semantic_index import SemanticIndex

    path = None if memory else Path(config.path).with_suffix(".semantic.db")
    return SemanticIndex(path, config.semantic.max_entries)
