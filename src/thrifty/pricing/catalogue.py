"""Model prices: one :class:`ModelPrice` per model, found through a :class:`PriceCatalogue`.

The catalogue reads LiteLLM's ``model_prices_and_context_window`` JSON (vendored, see
``data/NOTICE.md``) without importing litellm, which would cost ~5 s and 200 MB. Files are
read lazily, once per process; nothing happens at import.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import gzip
import json
import logging
import math
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from thrifty.errors import ConfigError

__all__ = ["ModelPrice", "PriceCatalogue", "PriceTier", "default_user_prices_path"]

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


def _first(*values: Any) -> Any:
    """The first value that is not None."""
    return next((v for v in values if v is not None), None)


def _tokens(value: Any) -> int | None:
    """A token limit; anything that is not a positive int (e.g. sample_spec's prose) is None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return int(value)


@dataclass(frozen=True, slots=True)
class PriceTier:
    """Prices that replace the base ones when the prompt is longer than ``above`` tokens.

    Long-context tiers (Gemini above 200k, GPT above 272k) and Qwen's range pricing bill
    the *whole* call at the tier's rates. A ``None`` keeps the base price of that class.
    """

    above: int
    input_per_token: float | None = None
    output_per_token: float | None = None
    cached_input_per_token: float | None = None
    cache_write_per_token: float | None = None
    cache_write_1h_per_token: float | None = None
    reasoning_per_token: float | None = None
    batch_input_per_token: float | None = None
    batch_output_per_token: float | None = None
    batch_cached_input_per_token: float | None = None
    audio_input_per_token: float | None = None


# litellm's "<class>_above_<N>k_tokens[_batches]" keys -> PriceTier field.
_TIER_KEY = re.compile(
    r"^(input_cost_per_token|output_cost_per_token|cache_read_input_token_cost"
    r"|input_cost_per_audio_token"
    r"|cache_creation_input_token_cost(?:_above_1hr)?)_above_(\d+)k_tokens(_batches)?$"
)
_TIER_FIELD = {
    ("input_cost_per_token", False): "input_per_token",
    ("output_cost_per_token", False): "output_per_token",
    ("cache_read_input_token_cost", False): "cached_input_per_token",
    ("cache_creation_input_token_cost", False): "cache_write_per_token",
    ("cache_creation_input_token_cost_above_1hr", False): "cache_write_1h_per_token",
    ("input_cost_per_audio_token", False): "audio_input_per_token",
    ("input_cost_per_token", True): "batch_input_per_token",
    ("output_cost_per_token", True): "batch_output_per_token",
    ("cache_read_input_token_cost", True): "batch_cached_input_per_token",
}
# litellm "tiered_pricing" range entry key -> PriceTier field.
_RANGE_FIELD = {
    "input_cost_per_token": "input_per_token",
    "output_cost_per_token": "output_per_token",
    "cache_read_input_token_cost": "cached_input_per_token",
    "cache_creation_input_token_cost": "cache_write_per_token",
    "output_cost_per_reasoning_token": "reasoning_per_token",
}


def _threshold_tiers(entry: Mapping[str, Any]) -> list[PriceTier]:
    """Tiers from ``*_above_<N>k_tokens`` keys (service-tier variants such as _flex ignored)."""
    by_above: dict[int, dict[str, float]] = {}
    for key, value in entry.items():
        match = _TIER_KEY.match(key)
        if match is None:
            continue
        field = _TIER_FIELD.get((match.group(1), match.group(3) is not None))
        price = _price(value, key)
        if field is not None and price is not None:
            by_above.setdefault(int(match.group(2)) * 1000, {})[field] = price
    return [PriceTier(above, **fields) for above, fields in by_above.items()]


def _range_tiers(entry: Mapping[str, Any]) -> tuple[dict[str, float], list[PriceTier]]:
    """litellm's ``tiered_pricing`` list: (the base prices of the range from 0, the tiers
    of the later ranges). Raises ValueError when it is malformed."""
    ranges = entry.get("tiered_pricing")
    if not isinstance(ranges, list) or not ranges:
        return {}, []
    base: dict[str, float] = {}
    tiers: list[PriceTier] = []
    for item in ranges:
        span = item.get("range") if isinstance(item, Mapping) else None
        if not isinstance(span, list) or len(span) != 2:
            raise ValueError(f"tiered_pricing entry without a [from, to] range: {item!r}")
        start = _tokens(span[0]) or 0
        fields = {
            field: price
            for key, field in _RANGE_FIELD.items()
            if (price := _price(item.get(key), key)) is not None
        }
        if start == 0:
            base = fields
        else:
            tiers.append(PriceTier(start, **fields))
    return base, tiers


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD prices per token of one model, plus the limits and capabilities routing needs.

    ``None`` in an optional price means "not known", never "free": the cached, cache-write
    and reasoning prices then fall back to the input/output price, and a missing batch
    price makes :func:`thrifty.pricing.cost` use the normal price and set
    ``batch_price_missing`` (no 50 % discount is assumed). Audio and image tokens fall
    back to the text price, 1-hour cache writes to the cache-write price. ``tiers``
    (ascending ``above``) reprice the whole call when its prompt is longer (:meth:`at`);
    ``per_request`` is a fee per call on top of the tokens.
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
    cache_write_1h_per_token: float | None = None
    audio_input_per_token: float | None = None
    audio_output_per_token: float | None = None
    image_input_per_token: float | None = None
    image_output_per_token: float | None = None
    per_request: float | None = None
    tiers: tuple[PriceTier, ...] = ()

    @property
    def all_zero(self) -> bool:
        """Every price is 0: a free model, or (in a catalogue) a price nobody filled in."""
        prices = [getattr(self, f) for f in _PRICE_FIELDS] + [
            getattr(t, f) for t in self.tiers for f in _TIER_FIELDS
        ]
        return not any(prices)

    def at(self, prompt_tokens: int) -> ModelPrice:
        """The prices that apply to a call whose prompt is ``prompt_tokens`` long."""
        tier = None
        for candidate in self.tiers:
            if prompt_tokens > candidate.above:
                tier = candidate
        if tier is None:
            return self
        changes = {f: v for f in _TIER_FIELDS if (v := getattr(tier, f)) is not None}
        return dataclasses.replace(self, **changes, tiers=())

    def views(self) -> tuple[ModelPrice, ...]:
        """The base prices and each tier's: what a worst case must take the dearest of."""
        return (self, *(self.at(t.above + 1) for t in self.tiers))

    @classmethod
    def from_litellm(
        cls, name: str, entry: Mapping[str, Any], *, source: str = "catalogue"
    ) -> ModelPrice:
        """Build from one litellm-format entry; ValueError if input/output price is missing
        (an entry priced only by ``tiered_pricing`` takes its first range as the base)."""
        if not isinstance(entry, Mapping):
            raise ValueError(f"{name}: entry is not an object")
        get = entry.get
        mode, provider = get("mode"), get("litellm_provider")
        base, range_tiers = _range_tiers(entry)
        tiers = sorted([*range_tiers, *_threshold_tiers(entry)], key=lambda t: t.above)
        fee = _price(get("input_cost_per_request"), "per_request")
        return cls(
            name=name,
            input_per_token=_required(
                _first(get("input_cost_per_token"), base.get("input_per_token")), "input"
            ),
            output_per_token=_required(
                _first(get("output_cost_per_token"), base.get("output_per_token")), "output"
            ),
            cached_input_per_token=_price(
                _first(get("cache_read_input_token_cost"), base.get("cached_input_per_token")),
                "cached_input",
            ),
            cache_write_per_token=_price(
                _first(get("cache_creation_input_token_cost"), base.get("cache_write_per_token")),
                "cache_write",
            ),
            reasoning_per_token=_price(
                _first(get("output_cost_per_reasoning_token"), base.get("reasoning_per_token")),
                "reasoning",
            ),
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
            cache_write_1h_per_token=_price(
                get("cache_creation_input_token_cost_above_1hr"), "cache_write_1h"
            ),
            audio_input_per_token=_price(get("input_cost_per_audio_token"), "audio_input"),
            audio_output_per_token=_price(get("output_cost_per_audio_token"), "audio_output"),
            image_input_per_token=_price(get("input_cost_per_image_token"), "image_input"),
            image_output_per_token=_price(get("output_cost_per_image_token"), "image_output"),
            per_request=fee,
            tiers=tuple(tiers),
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
        cache_write_1h: float | None = None,
        per_request_usd: float | None = None,
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
            cache_write_1h_per_token=_price(cache_write_1h, "cache_write_1h", m),
            per_request=_price(per_request_usd, "per_request_usd"),
        )


_TIER_FIELDS = tuple(f.name for f in dataclasses.fields(PriceTier) if f.name != "above")
_PRICE_FIELDS = (
    *_TIER_FIELDS, "audio_output_per_token", "image_input_per_token", "image_output_per_token",
    "per_request",
)  # fmt: skip


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

    Entries without an input or output price are treated as unknown (never as free), and
    so are entries priced at $0 throughout: dozens of paid hosted services are listed at
    $0/$0. A free model is one the config says is free (``models.<name>.free: true``, or
    an explicit ``price: {input: 0, output: 0}``), given here as an override.
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
        self._vendors: frozenset[str] | None = None

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

        Tries, overrides first then the file, each exactly then case-insensitively:
        ``f"{provider_hint}/{name}"``; ``name`` itself; ``name`` without its leading
        ``vendor/``. A vendor prefix is never stripped into another vendor's price: the
        bare name counts only when ``vendor`` is the hint, the entry's own provider, or
        no catalogue vendor at all (a proxy's name);
        and when ``vendor`` is a catalogue vendor other than the hint, only the hint's own
        entry counts (OpenRouter's ``deepseek/deepseek-chat`` is not DeepSeek's price).
        """
        candidates = self._candidates(name, provider_hint)
        for key, _ in candidates:
            if key in self._overrides:
                return self._overrides[key]
        lower = self._lower_index()
        for exact in (True, False):
            for key, vendor in candidates:
                real = key if exact else lower.get(key.lower())
                if real is None:
                    continue
                found = self._overrides.get(real) or self._build(real)
                if found is not None and (vendor is None or _served_by(found, vendor)):
                    return found
        return None

    def _candidates(self, name: str, hint: str | None) -> list[tuple[str, str | None]]:
        """(key to try, vendor its entry must belong to, or None for any)."""
        candidates: list[tuple[str, str | None]] = []
        if hint and not name.startswith(f"{hint}/"):
            candidates.append((f"{hint}/{name}", None))
        prefix, slash, tail = name.partition("/")
        if slash and hint and prefix != hint and prefix.lower() in self._vendor_names():
            return candidates  # another vendor's model, served by the hint's: its price only
        candidates.append((name, None))
        if slash and tail:
            vendor = prefix if prefix.lower() in self._vendor_names() else None
            candidates.append((tail, None if prefix == hint else vendor))
        return candidates

    def zero_priced(self, name: str) -> bool:
        """The file lists ``name`` at $0 (which counts as unknown: see :meth:`_build`)."""
        entry = self._entries.get(name)
        if not isinstance(entry, Mapping):
            return False
        try:
            return ModelPrice.from_litellm(name, entry).all_zero
        except ValueError:
            return False

    def names(self) -> list[str]:
        """Sorted names of every priced model (overrides included)."""
        if self._names is None:
            priced = {key for key in self._entries if self._build(key) is not None}
            self._names = sorted(priced | self._overrides.keys())
        return list(self._names)

    def suggest(self, name: str, n: int = 5) -> list[str]:
        """Priced names close to ``name``, for "did you mean" messages: first the entries
        that are ``name`` under a vendor prefix (``together_ai/mistralai/Mixtral-8x7B...``
        for ``mistralai/Mixtral-8x7B...``), then spelling neighbours."""
        names = self.names()
        wanted = name.lower()
        hits = [key for key in names if key.lower().endswith("/" + wanted)]
        by_lower = {key.lower(): key for key in names}
        queries = [wanted]
        if "/" in name:  # "openrouter/gpt-4o-mnii": the tail is the telling part
            queries.insert(0, name.rsplit("/", 1)[1].lower())
        for query in queries:
            for hit in difflib.get_close_matches(query, list(by_lower), n=n, cutoff=0.6):
                if by_lower[hit] not in hits:
                    hits.append(by_lower[hit])
        return hits[:n]

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
            if price is not None and price.all_zero:
                price = None  # $0 in a catalogue is a blank, not a promise: unknown
        self._built[key] = price
        return price

    def _vendor_names(self) -> frozenset[str]:
        """Lower-cased vendor names: every ``litellm_provider`` and every key's prefix."""
        if self._vendors is None:
            found = {key.split("/", 1)[0].lower() for key in self._entries if "/" in key}
            for entry in self._entries.values():
                provider = entry.get("litellm_provider") if isinstance(entry, Mapping) else None
                if isinstance(provider, str):
                    found.add(provider.lower())
            self._vendors = frozenset(found)
        return self._vendors

    def _lower_index(self) -> dict[str, str]:
        if self._lower is None:
            index = {key.lower(): key for key in self._entries if key not in _JUNK_KEYS}
            index.update({key.lower(): key for key in self._overrides})
            self._lower = index
        return self._lower


def _served_by(price: ModelPrice, vendor: str) -> bool:
    """The entry is ``vendor``'s own price (``vertex_ai`` covers ``vertex_ai-language-models``)."""
    if price.source == "config":
        return True
    provider, vendor = (price.provider or "").lower(), vendor.lower()
    return provider == vendor or provider.startswith(vendor + "-")
