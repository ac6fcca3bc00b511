"""Model prices: one :class:`ModelPrice` per model, found through a :class:`PriceCatalogue`.

The catalogue reads LiteLLM's ``model_prices_and_context_window`` JSON (vendored, see
``data/NOTICE.md``) without importing litellm, which would cost ~5 s and 200 MB. Files are
read lazily, once per process; nothing happens at import.
"""

from __future__ import annotations

import difflib
import functools
import gzip
import json
import logging
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from thrifty.errors import ConfigError

__all__ = ["ModelPrice", "PriceCatalogue", "default_user_prices_path"]

logger = logging.getLogger(__name__)

_PER_MILLION = 1_000_000
# litellm boolean flag -> Thrifty capability name.
_CAPABILITY_FLAGS = {
    "supports_function_calling": "tools",
    "supports_vision": "vision",
    "supports_response_schema": "json_schema",
    "supports_reasoning": "reasoning",
    "supports_prompt_caching": "prompt_caching",
}
_JUNK_KEYS = frozenset({"sample_spec"})


def default_user_prices_path() -> Path:
    """Where ``thrifty prices update`` writes and :meth:`PriceCatalogue.default` looks."""
    return Path.home() / ".thrifty" / "prices.json"


def _price(value: Any, field: str, scale: float = 1.0) -> float | None:
    """A price as float divided by ``scale``; None when absent. Rejects negatives, NaN, bools."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{field} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{field} must be a finite number >= 0, got {value!r}")
    return value / scale


def _required(value: Any, field: str, scale: float = 1.0) -> float:
    """Like :func:`_price`, but a missing price is an error (unknown is not free)."""
    price = _price(value, field, scale)
    if price is None:
        raise ValueError(f"missing {field} price")
    return price


def _tokens(value: Any) -> int | None:
    """A token limit; anything that is not a positive int (e.g. sample_spec's prose) is None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return int(value)


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD prices per token of one model, plus the limits and capabilities routing needs.

    ``None`` in an optional price means "not known", never "free": the cached, cache-write
    and reasoning prices then fall back to the input/output price, and a missing batch
    price makes :func:`thrifty.pricing.cost` use the normal price and set
    ``batch_price_missing`` (no 50 % discount is assumed).
    """

    name: str
    input_per_token: float
    output_per_token: float
    cached_input_per_token: float | None = None
    cache_write_per_token: float | None = None
    reasoning_per_token: float | None = None
    batch_input_per_token: float | None = None
    batch_output_per_token: float | None = None
    batch_cached_input_per_token: float | None = None
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    mode: str | None = None
    provider: str | None = None
    capabilities: frozenset[str] = frozenset()
    source: str = "catalogue"

    @classmethod
    def from_litellm(
        cls, name: str, entry: Mapping[str, Any], *, source: str = "catalogue"
    ) -> ModelPrice:
        """Build from one litellm-format entry; ValueError if input/output price is missing."""
        if not isinstance(entry, Mapping):
            raise ValueError(f"{name}: entry is not an object")
        get = entry.get
        mode, provider = get("mode"), get("litellm_provider")
        return cls(
            name=name,
            input_per_token=_required(get("input_cost_per_token"), "input"),
            output_per_token=_required(get("output_cost_per_token"), "output"),
            cached_input_per_token=_price(get("cache_read_input_token_cost"), "cached_input"),
            cache_write_per_token=_price(get("cache_creation_input_token_cost"), "cache_write"),
            reasoning_per_token=_price(get("output_cost_per_reasoning_token"), "reasoning"),
            batch_input_per_token=_price(get("input_cost_per_token_batches"), "batch_input"),
            batch_output_per_token=_price(get("output_cost_per_token_batches"), "batch_output"),
            batch_cached_input_per_token=_price(
                get("cache_read_input_token_cost_batches"), "batch_cached_input"
            ),
            max_input_tokens=_tokens(get("max_input_tokens")),
            max_output_tokens=_tokens(get("max_output_tokens")),
            mode=mode if isinstance(mode, str) else None,
            provider=provider if isinstance(provider, str) else None,
            capabilities=frozenset(cap for flag, cap in _CAPABILITY_FLAGS.items() if get(flag)),
            source=source,
        )

    @classmethod
    def from_per_million(
        cls,
        name: str,
        *,
        input: float,
        output: float,
        cached_input: float | None = None,
        cache_write: float | None = None,
        batch_input: float | None = None,
        batch_output: float | None = None,
        context_window: int | None = None,
        max_output_tokens: int | None = None,
        batch_cached_input: float | None = None,
        reasoning: float | None = None,
        provider: str | None = None,
        capabilities: frozenset[str] = frozenset(),
    ) -> ModelPrice:
        """Build a config override from USD per million tokens (how price pages quote them).

        >>> ModelPrice.from_per_million("my-model", input=0.28, output=0.42).input_per_token
        2.8e-07
        """
        m = _PER_MILLION
        return cls(
            name=name,
            input_per_token=_required(input, "input", m),
            output_per_token=_required(output, "output", m),
            cached_input_per_token=_price(cached_input, "cached_input", m),
            cache_write_per_token=_price(cache_write, "cache_write", m),
            reasoning_per_token=_price(reasoning, "reasoning", m),
            batch_input_per_token=_price(batch_input, "batch_input", m),
            batch_output_per_token=_price(batch_output, "batch_output", m),
            batch_cached_input_per_token=_price(batch_cached_input, "batch_cached_input", m),
            max_input_tokens=_tokens(context_window),
            max_output_tokens=_tokens(max_output_tokens),
            provider=provider,
            capabilities=frozenset(capabilities),
            source="config",
        )


def _read_json(path: Path) -> dict[str, Any]:
    """Parse a plain or gzipped litellm-format file; ConfigError if it is not a JSON object."""
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        data = json.loads(raw)
    except (OSError, ValueError, EOFError) as exc:
        raise ConfigError(f"cannot read price file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"price file {path} must hold a JSON object keyed by model name")
    return data


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, _mtime_ns: int, _size: int) -> Mapping[str, Any]:
    """Load once per (file, version); the stat fields make an edited file load afresh."""
    started = time.perf_counter()
    data = _read_json(Path(path))
    elapsed = time.perf_counter() - started
    logger.debug("loaded %d price entries from %s in %.3f s", len(data), path, elapsed)
    return data


def _load(path: Path) -> Mapping[str, Any]:
    try:
        stat = path.stat()
    except OSError as exc:
        raise ConfigError(f"cannot read price file {path}: {exc}") from exc
    return _load_cached(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


class PriceCatalogue:
    """Looks up a :class:`ModelPrice` by model name; overrides win over file entries.

    Entries without an input or output price are treated as unknown (never as free);
    entries priced at 0 are free models and are returned as such.
    """

    def __init__(
        self,
        entries: Mapping[str, Any],
        *,
        source: str = "catalogue",
        overrides: Mapping[str, ModelPrice] | None = None,
    ) -> None:
        self._entries = entries  # shared between catalogues; never mutated
        self._source = source
        self._overrides = dict(overrides or {})
        self._built: dict[str, ModelPrice | None] = {}
        self._lower: dict[str, str] | None = None
        self._names: list[str] | None = None

    @classmethod
    def bundled(cls) -> PriceCatalogue:
        """The vendored litellm catalogue shipped in the wheel."""
        ref = resources.files("thrifty.pricing") / "data" / "model_prices.json.gz"
        with resources.as_file(ref) as path:
            return cls(_load(path), source="catalogue")

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> PriceCatalogue:
        """A user file (plain or .gz JSON, litellm format); ConfigError if unreadable."""
        path = Path(path).expanduser()
        return cls(_load(path), source=f"file:{path}")

    @classmethod
    def default(cls) -> PriceCatalogue:
        """``$THRIFTY_PRICES_FILE``, else ``~/.thrifty/prices.json`` if present, else bundled.

        The environment is read here, at call time, never at import.
        """
        env_path = os.environ.get("THRIFTY_PRICES_FILE")
        if env_path:
            return cls.from_file(env_path)
        user_path = default_user_prices_path()
        if user_path.is_file():
            return cls.from_file(user_path)
        return cls.bundled()

    @property
    def source(self) -> str:
        return self._source

    def raw(self) -> Mapping[str, Any]:
        """The file's entries as loaded, litellm format, read-only (overrides not included)."""
        return MappingProxyType(self._entries)

    def with_overrides(self, overrides: Mapping[str, ModelPrice]) -> PriceCatalogue:
        """A new catalogue where these names take precedence (later overrides win)."""
        return PriceCatalogue(
            self._entries, source=self._source, overrides={**self._overrides, **overrides}
        )

    def lookup(self, name: str, provider_hint: str | None = None) -> ModelPrice | None:
        """Price of ``name``, or None if unknown or unpriced.

        Tries, overrides first then the file: the exact key; ``f"{provider_hint}/{name}"``;
        the name without a leading ``provider/``; then each of those case-insensitively.
        """
        candidates = [name]
        if provider_hint and not name.startswith(f"{provider_hint}/"):
            candidates.append(f"{provider_hint}/{name}")
        if "/" in name:
            candidates.append(name.split("/", 1)[1])
        for key in candidates:
            if key in self._overrides:
                return self._overrides[key]
        for key in candidates:
            found = self._build(key)
            if found is not None:
                return found
        lower = self._lower_index()
        for key in candidates:
            real = lower.get(key.lower())
            found = None if real is None else self._overrides.get(real) or self._build(real)
            if found is not None:
                return found
        return None

    def names(self) -> list[str]:
        """Sorted names of every priced model (overrides included)."""
        if self._names is None:
            priced = {key for key in self._entries if self._build(key) is not None}
            self._names = sorted(priced | self._overrides.keys())
        return list(self._names)

    def suggest(self, name: str, n: int = 5) -> list[str]:
        """Priced names close to ``name``, for "did you mean" messages."""
        names = self.names()
        by_lower = {key.lower(): key for key in names}
        queries = [name.lower()]
        if "/" in name:  # "openrouter/gpt-4o-mnii": the tail is the telling part
            queries.insert(0, name.split("/", 1)[1].lower())
        hits: list[str] = []
        for query in queries:
            for hit in difflib.get_close_matches(query, list(by_lower), n=n, cutoff=0.6):
                if hit not in hits:
                    hits.append(hit)
        return [by_lower[hit] for hit in hits[:n]]

    def __len__(self) -> int:
        return len(self.names())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.lookup(name) is not None

    def _build(self, key: str) -> ModelPrice | None:
        if key in self._built:
            return self._built[key]
        entry = self._entries.get(key)
        price = None
        if key not in _JUNK_KEYS and isinstance(entry, Mapping):
            try:
                price = ModelPrice.from_litellm(key, entry, source=self._source)
            except ValueError:
                price = None  # no usable input/output price: unknown, not free
        self._built[key] = price
        return price

    def _lower_index(self) -> dict[str, str]:
        if self._lower is None:
            index = {key.lower(): key for key in self._entries if key not in _JUNK_KEYS}
            index.update({key.lower(): key for key in self._overrides})
            self._lower = index
        return self._lower
