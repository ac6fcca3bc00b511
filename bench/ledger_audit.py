"""Audit a Thrifty ledger: recompute every row and attempt from the price catalogue.

    python -m bench.ledger_audit --ledger var/demo/ledger.db [--config var/demo/tuned.yaml]

Independent of Thrifty's own accounting on purpose: it reads the SQLite file with
``sqlite3``, the litellm-format price file with ``json`` and the config with ``yaml``, and
prices tokens with its own arithmetic (no ``thrifty.pricing``, ``thrifty.usage`` or
``thrifty.pipeline`` call). For every request it checks, within 1e-9 relative:

* each attempt's cost = its tokens at its model's prices (batch prices for ``batch_api``
  attempts), $0 without tokens, and no cost where the audit knows no price. Prices as
  docs/pricing.md states them: a catalogue entry at $0 throughout is unknown (only the
  config's ``free: true`` or an explicit price is $0); the prompt's length picks a
  ``*_above_<N>k_tokens`` tier or a ``tiered_pricing`` range (an entry may have only
  ranges), which reprices the whole call; 1-hour cache writes, audio and image tokens have
  their own prices (falling back to the cache-write and text prices); a per-call fee
  (``per_request_usd``, ``input_cost_per_request``) is added to each call with tokens;
* the row's cost = the sum of its attempts; ``unpriced`` and ``estimated`` = any attempt's;
* the baseline (docs/ledger.md): the served tokens, plus what compression removed, at the
  baseline model's prices (cache reads and writes at list price only on a row where
  Thrifty placed the breakpoints, ``prompt_cache``), plus the billed failures of the
  baseline model itself (a row with no answer: those alone);
* the savings: known causes only, adding up to ``baseline - cost``.

Models are resolved as the gateway does it: ``models.<name>.price`` (USD per million) from
``--config`` when given, else the catalogue entry named by ``catalogue_name``, the
upstream model or the name (also under ``<provider>/``, without a ``vendor/`` prefix, and
case-insensitively; a ``vendor/`` prefix is dropped only into that vendor's own entry, and
under another provider only that provider's entry counts: OpenRouter's
``deepseek/deepseek-chat`` is not DeepSeek's price). The catalogue is ``--prices``, else
``$THRIFTY_PRICES_FILE``, else ``~/.thrifty/prices.json``, else the bundled snapshot.
Prints one line per mismatch and a summary; exits 1 when there is any.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import re
import sqlite3
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REL = 1e-9
CAUSES = frozenset({
    "routing", "cascade", "exact_cache", "semantic_cache", "compression", "batching",
    "prompt_cache", "fallback", "default_model",
})  # fmt: skip
OWN = frozenset({"main", "retry", "fallback"})
BUNDLED = Path(__file__).resolve().parents[1] / "src/thrifty/pricing/data/model_prices.json.gz"
TOKENS = ("input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens",
          "reasoning_tokens", "cache_write_1h_tokens", "audio_input_tokens",
          "image_input_tokens", "audio_output_tokens", "image_output_tokens")  # fmt: skip

# The catalogue's key for each price class (USD per token).
KEYS = {
    "input": "input_cost_per_token", "output": "output_cost_per_token",
    "cached": "cache_read_input_token_cost", "write": "cache_creation_input_token_cost",
    "write_1h": "cache_creation_input_token_cost_above_1hr",
    "reasoning": "output_cost_per_reasoning_token",
    "batch_input": "input_cost_per_token_batches", "batch_output": "output_cost_per_token_batches",
    "batch_cached": "cache_read_input_token_cost_batches",
    "audio_input": "input_cost_per_audio_token", "audio_output": "output_cost_per_audio_token",
    "image_input": "input_cost_per_image_token", "image_output": "output_cost_per_image_token",
    "fee": "input_cost_per_request",
}  # fmt: skip
# "<key>_above_<N>k_tokens[_batches]": the classes a long-context tier reprices.
ABOVE = re.compile(r"(?P<key>[a-z_1]+?)_above_(?P<k>\d+)k_tokens(?P<batch>_batches)?")
TIERED = {KEYS[c]: c for c in ("input", "output", "cached", "write", "write_1h", "audio_input")}
TIERED_BATCH = {KEYS[c]: "batch_" + c for c in ("input", "output", "cached")}
RANGED = {KEYS[c]: c for c in ("input", "output", "cached", "write", "reasoning")}


@dataclass(frozen=True)
class Price:
    """USD per token by class (None: not known, so the class falls back as providers
    bill it), a per-call fee, and tiers: (prompt longer than, the classes they reprice)."""

    p: Mapping[str, float | None]
    tiers: tuple[tuple[int, Mapping[str, float]], ...] = ()

    def _at(self, prompt: int) -> dict[str, float | None]:
        prices = dict(self.p)
        longer = [changes for above, changes in sorted(self.tiers, key=lambda t: t[0])
                  if prompt > above]  # fmt: skip
        if longer:  # the longest tier the prompt passes reprices the whole call
            prices.update(longer[-1])
        return prices

    def of(self, tokens: Mapping[str, int], batch: bool = False) -> float:
        """The tokens' cost; unknown class prices fall back as providers bill them."""
        p = self._at(tokens["input_tokens"])

        def known(*names: str, default: float = 0.0) -> float:
            """The first of ``names`` with a known price, else ``default``."""
            return next((float(v) for n in names if (v := p.get(n)) is not None), default)

        both = ("batch_", "") if batch else ("",)  # a batch price where known
        inp = known(*(f"{b}input" for b in both))
        out = known(*(f"{b}output" for b in both))
        cached = known(*(f"{b}cached" for b in both), default=inp)
        write = known("write", default=inp)
        hour = known("write_1h", default=write)
        reasoning = known("reasoning", default=out)
        n = tokens
        fresh = max(0, n["input_tokens"] - n["cached_input_tokens"] - n["cache_write_tokens"])
        audio_in = min(n["audio_input_tokens"], fresh)
        image_in = min(n["image_input_tokens"], fresh - audio_in)
        hours = min(n["cache_write_1h_tokens"], n["cache_write_tokens"])
        thought = min(n["reasoning_tokens"], n["output_tokens"])
        audio_out = min(n["audio_output_tokens"], n["output_tokens"] - thought)
        image_out = min(n["image_output_tokens"], n["output_tokens"] - thought - audio_out)
        text_out = n["output_tokens"] - thought - audio_out - image_out
        own = {k: known(k, default=d) for k, d in
               (("audio_input", inp), ("image_input", inp), ("audio_output", out),
                ("image_output", out))}  # fmt: skip
        return math.fsum([
            (fresh - audio_in - image_in) * inp, audio_in * own["audio_input"],
            image_in * own["image_input"], n["cached_input_tokens"] * cached,
            (n["cache_write_tokens"] - hours) * write, hours * hour,
            text_out * out, audio_out * own["audio_output"], image_out * own["image_output"],
            thought * reasoning, p.get("fee") or 0.0,
        ])  # fmt: skip


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


Tiers = list[tuple[int, dict[str, float]]]


def _ranges(entry: Mapping[str, Any]) -> tuple[dict[str, float], Tiers]:
    """``tiered_pricing``: the range from 0 (base prices), the later ranges (tiers)."""
    base: dict[str, float] = {}
    tiers = []
    for item in entry.get("tiered_pricing") or []:
        start = _number((item.get("range") or [0])[0]) or 0
        prices = {c: v for k, c in RANGED.items() if (v := _number(item.get(k))) is not None}
        if start <= 0:
            base = prices
        else:
            tiers.append((int(start), prices))
    return base, tiers


def catalogue_price(entry: Any) -> Price | None:
    """One catalogue entry's prices; None when unknown: no input or output price, or $0
    for everything (a blank in the catalogue, not a promise that the model is free)."""
    if not isinstance(entry, Mapping):
        return None
    base, tiers = _ranges(entry)
    prices = {c: _number(entry.get(k)) for c, k in KEYS.items()}
    for c, v in base.items():
        prices[c] = v if prices[c] is None else prices[c]
    if prices["input"] is None or prices["output"] is None:
        return None
    above: dict[int, dict[str, float]] = {}
    for key, value in entry.items():
        m = ABOVE.fullmatch(key)
        cls = m and (TIERED_BATCH if m["batch"] else TIERED).get(m["key"])
        if m and cls and (v := _number(value)) is not None:
            above.setdefault(int(m["k"]) * 1000, {})[cls] = v
    tiers += list(above.items())
    if not any(prices.values()) and not any(v for _, t in tiers for v in t.values()):
        return None
    return Price(prices, tuple(tiers))


def config_price(model: Mapping[str, Any]) -> Price:
    """``models.<name>.price`` (USD per million tokens; ``per_request_usd`` in USD) or
    ``free: true`` ($0, on purpose)."""
    if model.get("free"):
        return Price({"input": 0.0, "output": 0.0})
    price = model["price"]
    names = {"input": "input", "output": "output", "cached": "cached_input",
             "write": "cache_write", "write_1h": "cache_write_1h", "reasoning": "reasoning",
             "batch_input": "batch_input", "batch_output": "batch_output"}  # fmt: skip
    prices: dict[str, float | None] = {
        c: None if (v := _number(price.get(k))) is None else v / 1e6 for c, k in names.items()
    }
    prices["fee"] = _number(price.get("per_request_usd"))
    return Price(prices)


def load_catalogue(path: str | None) -> dict[str, Any]:
    candidates = [path, os.environ.get("THRIFTY_PRICES_FILE"),
                  str(Path.home() / ".thrifty" / "prices.json")]  # fmt: skip
    chosen = next((Path(p) for p in candidates if p and Path(p).is_file()), BUNDLED)
    raw = chosen.read_bytes()
    data = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    return data if isinstance(data, dict) else {}


class Prices:
    """Model name → price, resolved once per name."""

    def __init__(self, catalogue: dict[str, Any], config: dict[str, Any]) -> None:
        self._catalogue = catalogue
        self._lower = {k.lower(): k for k in catalogue}
        self._models: dict[str, Any] = config.get("models") or {}
        self._providers: dict[str, Any] = config.get("providers") or {}
        self._passthrough = config.get("passthrough_provider")
        self._cache: dict[tuple[str, str | None], Price | None] = {}
        vendors = {k.split("/", 1)[0] for k in catalogue if "/" in k}
        vendors |= {str(e.get("litellm_provider")) for e in catalogue.values()
                    if isinstance(e, Mapping) and e.get("litellm_provider")}  # fmt: skip
        self._vendors = {v.lower() for v in vendors}

    def _serves(self, key: str, vendor: str) -> bool:
        """The entry is ``vendor``'s own (``vertex_ai`` covers ``vertex_ai-language-models``)."""
        entry = self._catalogue.get(key)
        owner = (
            str(entry.get("litellm_provider") or "").lower() if isinstance(entry, Mapping) else ""
        )
        return owner == vendor or owner.startswith(vendor + "-")

    def _lookup(self, name: str, hint: str | None) -> Price | None:
        """The catalogue's price of ``name`` served by ``hint``. A ``vendor/`` prefix is
        never dropped into another vendor's entry: under another vendor's hint only the
        hint's own entry counts, and the bare tail only when the entry is the vendor's."""
        prefix, slash, tail = name.partition("/")
        vendor = prefix.lower() if slash and prefix.lower() in self._vendors else None
        keys: list[tuple[str, str | None]] = []
        if hint and not name.startswith(f"{hint}/"):
            keys.append((f"{hint}/{name}", None))
        if not (vendor and hint and prefix != hint):
            keys.append((name, None))
            if slash and tail:
                keys.append((tail, None if prefix == hint else vendor))
        for exact in (True, False):
            for key, owner in keys:
                real = key if exact else self._lower.get(key.lower())
                if real is None:
                    continue
                found = catalogue_price(self._catalogue.get(real))
                if found is not None and (owner is None or self._serves(real, owner)):
                    return found
        return None

    def of(self, name: str, upstream: str | None = None) -> Price | None:
        key = (name, upstream)
        if key not in self._cache:
            self._cache[key] = self._resolve(name, upstream)
        return self._cache[key]

    def _hint(self, provider: Any) -> str | None:
        settings = self._providers.get(provider) or {}
        return settings.get("price_prefix") or provider

    def _resolve(self, name: str, upstream: str | None) -> Price | None:
        model = self._models.get(name)
        if isinstance(model, Mapping):
            if model.get("free") or isinstance(model.get("price"), Mapping):
                return config_price(model)
            provider = model.get("provider")
            deployments = model.get("deployments")
            if not provider and isinstance(deployments, list) and deployments:
                provider = deployments[0].get("provider")
                upstream = deployments[0].get("model") or upstream
            if model.get("catalogue_name"):
                return self._lookup(str(model["catalogue_name"]), None)
            return self._lookup(str(model.get("model") or upstream or name), self._hint(provider))
        return self._lookup(name, self._hint(self._passthrough) if self._passthrough else None)


def tokens_of(row: Mapping[str, Any]) -> dict[str, int] | None:
    if row.get("input_tokens") is None:
        return None
    return {k: int(row.get(k) or 0) for k in TOKENS}


def close(a: float, b: float) -> bool:
    return abs(a - b) <= REL * max(abs(a), abs(b), 1e-6)


def read(path: Path) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        attempts: dict[str, list[dict[str, Any]]] = {}
        for a in conn.execute("SELECT * FROM attempts ORDER BY request_id, seq"):
            attempts.setdefault(a["request_id"], []).append(dict(a))
        for r in conn.execute("SELECT * FROM requests ORDER BY ts"):
            yield dict(r), attempts.get(r["request_id"], [])
    finally:
        conn.close()


def audit_attempt(a: Mapping[str, Any], prices: Prices) -> str | None:
    tokens = tokens_of(a)
    stored = a["cost"]
    if tokens is None:
        return None if stored in (0, 0.0) else f"attempt {a['seq']}: cost {stored} without tokens"
    price = prices.of(a["model"], a["upstream_model"])
    if price is None:
        return None if stored is None else f"attempt {a['seq']}: cost {stored}, no price known"
    expected = price.of(tokens, batch=a["purpose"] == "batch_api")
    if stored is None or not close(stored, expected):
        return f"attempt {a['seq']} ({a['model']}, {a['purpose']}): cost {stored} != {expected!r}"
    return None


def list_price(tokens: Mapping[str, int]) -> dict[str, int]:
    """The same tokens with cached reads and cache writes billed as plain input."""
    return {**tokens, "cached_input_tokens": 0, "cache_write_tokens": 0, "cache_write_1h_tokens": 0}


def expected_baseline(
    row: Mapping[str, Any], attempts: list[dict[str, Any]], prices: Prices
) -> float | None:
    """docs/ledger.md's baseline, recomputed; None when a price is unknown."""
    served = tokens_of(row) or dict.fromkeys(TOKENS, 0)
    name = row["baseline_model"] or row["requested_model"]
    upstream = next((a["upstream_model"] for a in attempts if a["model"] == name), None)
    if any(a["purpose"] == "batch_api" for a in attempts):  # a provider batch job's line
        price = prices.of(name, upstream)
        return None if price is None else price.of(served)  # as sent, not batched
    own = [a for a in attempts if a["purpose"] in OWN]
    answered = row.get("model") is not None
    answer = next((a for a in reversed(own) if tokens_of(a) == served), None) if answered else None
    failed = math.fsum(a["cost"] or 0.0 for a in own if a is not answer and a["model"] == name)
    if not answered:
        return failed
    price = prices.of(name, upstream)
    if price is None:
        return None
    techniques = _json(row, "techniques")
    compress = techniques.get("compress") or {}
    removed = max(0, int(compress.get("before", 0)) - int(compress.get("after", 0)))
    sent = {**served, "input_tokens": served["input_tokens"] + removed}
    if "prompt_cache" in techniques:  # Thrifty's own breakpoints: their discount is a saving
        sent = list_price(sent)
    return price.of(sent) + failed


def _json(row: Mapping[str, Any], column: str) -> dict[str, Any]:
    value = row.get(column)
    return json.loads(value) if isinstance(value, str) else dict(value or {})


def audit_row(row: Mapping[str, Any], attempts: list[dict[str, Any]], prices: Prices) -> list[str]:
    """Every mismatch of one request row (empty: it adds up)."""
    out = [m for a in attempts if (m := audit_attempt(a, prices))]
    total = math.fsum(a["cost"] or 0.0 for a in attempts)
    if not close(row["cost"], total):
        out.append(f"cost {row['cost']} != sum of attempts {total!r}")
    unpriced = any(a["cost"] is None and a["input_tokens"] is not None for a in attempts)
    if bool(row["unpriced"]) != unpriced:
        out.append(f"unpriced {bool(row['unpriced'])} but attempts say {unpriced}")
    if "estimated" in row:
        estimated = any(a["tokens_estimated"] for a in attempts) or bool(row["tokens_estimated"])
        if bool(row["estimated"]) != estimated:
            out.append(f"estimated {bool(row['estimated'])} but attempts say {estimated}")
    savings = _json(row, "savings")
    if row["endpoint"] == "shadow":  # evaluation cost: never a baseline nor a saving
        if row["baseline_cost"] is not None or savings:
            out.append("a shadow record with a baseline or savings")
        return out
    if unknown := set(savings) - CAUSES:
        out.append(f"savings booked to unknown causes {sorted(unknown)}")
    baseline = row["baseline_cost"]
    expected = None if unpriced else expected_baseline(row, attempts, prices)
    if baseline is None or expected is None:
        if (baseline is None) != (expected is None):
            out.append(f"baseline {baseline} but the audit computes {expected}")
        return out
    if not close(baseline, expected):
        out.append(f"baseline {baseline} != {expected!r}")
    if not close(math.fsum(savings.values()), baseline - row["cost"]):
        out.append(f"savings {savings} do not add up to baseline - cost {baseline - row['cost']!r}")
    return out


def audit(ledger: Path, prices: Prices) -> tuple[int, list[str]]:
    """(rows audited, one line per mismatch)."""
    rows, lines = 0, []
    for row, attempts in read(ledger):
        rows += 1
        lines += [f"{row['request_id']}: {m}" for m in audit_row(row, attempts, prices)]
    return rows, lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ledger_audit", description=__doc__)
    parser.add_argument("--ledger", required=True, help="the ledger's SQLite file")
    parser.add_argument("--config", help="the gateway's config (model prices, upstream names)")
    parser.add_argument("--prices", help="a litellm-format price file (default: as the gateway)")
    args = parser.parse_args(argv)
    config = yaml.safe_load(Path(args.config).read_text()) if args.config else {}
    prices = Prices(load_catalogue(args.prices), config or {})
    rows, mismatches = audit(Path(args.ledger), prices)
    for line in mismatches:
        print(line)
    print(f"audited {rows} requests: {len(mismatches)} mismatches")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
