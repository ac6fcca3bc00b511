"""Build the compression stage from config (the embedder is loaded only when weighted)."""

from __future__ import annotations

from thrifty.compression.abstractive import Summariser
from thrifty.compression.config import CompressionConfig
from thrifty.compression.prompt_cache import PrefixTracker
from thrifty.compression.scoring import Embed
from thrifty.compression.stage import CompressionStage
from thrifty.pipeline.dispatch import DispatchStage
from thrifty.registry import ModelRegistry


def build_compression(
    config: CompressionConfig, registry: ModelRegistry, dispatch: DispatchStage
) -> CompressionStage:
    embed: Embed | None = None
    if config.extractive.enabled and config.extractive.embedding_weight > 0:
        from thrifty.embeddings import get_embedder

        embed = get_embedder().embed
    summariser = None
    section = config.abstractive
    if section.enabled and section.model:
        registry.get(section.model)  # an unknown summariser fails at start, not per request
        summariser = Summariser(section.model, section.ratio, section.max_entries)
    cache = config.prompt_cache
    tracker = PrefixTracker(cache.ttl_s, cache.max_entries) if cache.respect else None
    return CompressionStage(config, registry, dispatch, embed, summariser, tracker)
